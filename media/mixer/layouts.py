"""The layout engine: a pure function from a layout, a canvas size and the room's members to positioned layers.

Geometry and fill rules follow FreeSWITCH's ``mod_conference`` (``reference/signalwire-freeswitch.md`` §2):
slots are in 1/360 of each canvas axis and become pixels with integer truncation
(``x_px = int(canvas_w * x / 360)``); a group layout (``grid-responsive``…) picks, like
``conference_video_find_best_layout``, the first listed layout with at least as many slots as members, else the
last one. Layers are reported to clients as SignalWire's ``VideoLayoutLayer`` (percent of the canvas).

Only stdlib here: the media worker calls :func:`compute_layers` whenever members, positions, the floor or the
layout change, and hands the layers to :class:`media.mixer.compositor.Compositor`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from media.mixer.layout_defs import BUILTIN_LAYOUTS, UNITS

logger = logging.getLogger(__name__)

MEMBER_KINDS = ("member", "screen", "device", "playback")
AUTO = "auto"
OFF_CANVAS = "off-canvas"
SCREEN_RESERVATION = "screen"

CANVAS_SIZES: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
}

_POSITION_RE = re.compile(r"^(reserved|standard)-([1-9][0-9]*)$")


class UnknownLayout(LookupError):
    """The layout name is neither built in nor among the custom layouts given (or a group names one)."""


@dataclass
class LayoutMember:
    """A member (or a screen share, device or playback shown like one) as the layout engine sees it.

    ``position``: ``auto``, ``reserved-N``, ``standard-N`` (1-based) or ``off-canvas``.
    ``kind``: ``member|screen|device|playback``; a ``screen`` takes the layout's ``screen`` reservation slot,
    a ``playback`` layer is reported with ``playing_file``. ``join_order`` orders automatic filling (lower first).
    ``has_video`` is informational here: members without video are placed too and drawn as an initials card
    (FreeSWITCH counts avatar members unless ``video-required-for-canvas``).
    """

    id: str
    name: str
    position: str = AUTO
    kind: str = "member"
    video_muted: bool = False
    visible: bool = True
    has_video: bool = True
    join_order: int = 0


@dataclass(frozen=True)
class Layer:
    """One slot of a layout placed on the canvas.

    ``x``/``y``/``width``/``height``: pixels on the canvas (FreeSWITCH truncation). ``member_id`` is ``None`` for
    an empty slot. ``position``: the slot's own position name (``reserved-N`` for the N-th slot with a
    reservation, ``standard-N`` for the N-th other slot), the value a member sets to move into it.
    ``layer_index``: the slot's index in the layout; ``z_index``: drawing order (higher on top). ``floor``: the
    slot is the layout's floor slot. ``units``: the slot's ``(x, y, width, height)`` in 1/360 of the canvas.
    """

    member_id: str | None
    x: int
    y: int
    width: int
    height: int
    layer_index: int
    z_index: int
    reservation: str | None
    position: str
    visible: bool
    playing_file: bool
    zoom: bool
    floor: bool = False
    units: tuple[float, float, float, float] | None = None

    def to_event(self, canvas_w: int, canvas_h: int) -> dict:
        """SignalWire's ``VideoLayoutLayer``: x/y/width/height in percent of the canvas, 2 decimals.

        Percentages come from the slot's 360-units when known (``units``; 3x3 cells are 33.33 % as SignalWire
        reports, not the 33.28 % of their truncated 426 px), else from the pixels.
        """
        if self.units is not None:
            x, y, width, height = (round(100.0 * u / UNITS, 2) for u in self.units)
        else:
            x, y = round(100.0 * self.x / canvas_w, 2), round(100.0 * self.y / canvas_h, 2)
            width, height = round(100.0 * self.width / canvas_w, 2), round(100.0 * self.height / canvas_h, 2)
        return {
            "member_id": self.member_id,
            "x": x,
            "y": y,
            "width": width,
            "height": height,
            "layer_index": self.layer_index,
            "z_index": self.z_index,
            "reservation": self.reservation,
            "position": self.position,
            "visible": self.visible,
            "playing_file": self.playing_file,
        }


def canvas_size(quality: str) -> tuple[int, int]:
    """Canvas ``(width_px, height_px)`` for a room quality (``360p``, ``720p``, ``1080p``); ``ValueError`` else."""
    try:
        return CANVAS_SIZES[quality]
    except KeyError:
        raise ValueError(f"unknown quality {quality!r}; expected one of {sorted(CANVAS_SIZES)}") from None


def _definition(name: str, custom: Mapping[str, dict] | None) -> dict:
    if custom and name in custom:
        return custom[name]
    if name in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[name]
    raise UnknownLayout(name)


def _valid_slots(name: str, slots: Sequence[dict]) -> list[dict]:
    """The slots with numeric, non-negative ``x``/``y`` and positive size; others are skipped with a warning,
    as FreeSWITCH skips an "invalid image" (``conference_video_parse_layouts``)."""
    valid = []
    for index, s in enumerate(slots):
        try:
            x, y, width = float(s["x"]), float(s["y"]), float(s["width"])
            height = float(s.get("height", width))
        except (KeyError, TypeError, ValueError):
            logger.warning("layout %s: slot %d skipped, it lacks numeric x/y/width", name, index)
            continue
        if x < 0 or y < 0 or width <= 0 or height <= 0 or x >= UNITS or y >= UNITS:
            logger.warning("layout %s: slot %d skipped, it lies outside the canvas", name, index)
            continue
        valid.append(s)
    return valid


def resolve_layout(name: str, *, member_count: int, custom: Mapping[str, dict] | None = None) -> tuple[str, list[dict]]:
    """The concrete layout for ``name`` and ``member_count`` members: ``(layout_name, slots)``.

    ``custom``: ``{name: {"slots": [...], "group": [...]}}`` (a ``Layout`` row's fields); it shadows a built-in
    of the same name. A group picks the first listed layout whose slot count is ≥ ``member_count``, else the last
    (FreeSWITCH ``find_best_layout``). Raises :class:`UnknownLayout` for an unknown name or a group that names
    an unknown layout or another group.
    """
    definition = _definition(name, custom)
    group = definition.get("group") or []
    if not group:
        return name, _valid_slots(name, definition.get("slots") or [])
    chosen: tuple[str, list[dict]] | None = None
    for candidate in group:
        candidate_def = _definition(candidate, custom)
        if candidate_def.get("group"):
            raise UnknownLayout(f"{name}: group member {candidate!r} is itself a group")
        chosen = (candidate, _valid_slots(candidate, candidate_def.get("slots") or []))
        if len(chosen[1]) >= member_count:
            return chosen
    if chosen is None:
        raise UnknownLayout(f"{name}: empty group")
    return chosen


def _on_canvas(member: LayoutMember, hide_video_muted: bool) -> bool:
    if not member.visible or member.position == OFF_CANVAS:
        return False
    return not (hide_video_muted and member.video_muted)


def _px(units: float, canvas_px: int) -> int:
    # FreeSWITCH conference_video_init_canvas_layers: integer truncation of canvas * units / 360.
    return int(canvas_px * units / UNITS)


def compute_layers(
    layout_name: str,
    members: Sequence[LayoutMember],
    *,
    canvas_w: int,
    canvas_h: int,
    floor_member_id: str | None = None,
    hide_video_muted: bool = False,
    custom: Mapping[str, dict] | None = None,
) -> list[Layer]:
    """Place ``members`` into the slots of ``layout_name`` on a ``canvas_w``×``canvas_h`` px canvas.

    Returns one :class:`Layer` per slot, in slot order (empty slots have ``member_id=None``). Members that are
    invisible, ``off-canvas``, video-muted with ``hide_video_muted``, or beyond the slots are not placed.
    A group layout is resolved with the number of members that may go on the canvas.

    Order of placement (each step takes only free slots):
    1. explicit positions, in join order: ``reserved-N`` → the N-th slot with a reservation, ``standard-N`` →
       the N-th slot without one (an unknown or taken position falls back to automatic placement);
    2. ``screen`` kind members → the slot reserved ``screen``;
    3. the floor holder (``floor_member_id``) → the layout's ``floor`` slot;
    4. everyone else in join order → the free slots without a reservation, in slot order.

    Raises :class:`UnknownLayout`. Pure and deterministic (ties in ``join_order`` are broken by ``id``).
    """
    candidates = sorted(
        (m for m in members if _on_canvas(m, hide_video_muted)),
        key=lambda m: (m.join_order, m.id),
    )
    concrete_name, slots = resolve_layout(layout_name, member_count=len(candidates), custom=custom)

    reserved_idx = [i for i, s in enumerate(slots) if s.get("reservation")]
    standard_idx = [i for i, s in enumerate(slots) if not s.get("reservation")]
    slot_position: dict[int, str] = {}
    for n, i in enumerate(reserved_idx, start=1):
        slot_position[i] = f"reserved-{n}"
    for n, i in enumerate(standard_idx, start=1):
        slot_position[i] = f"standard-{n}"

    assigned: dict[int, LayoutMember] = {}
    placed: set[str] = set()

    def take(index: int | None, member: LayoutMember) -> bool:
        if index is None or index in assigned or member.id in placed:
            return False
        assigned[index] = member
        placed.add(member.id)
        return True

    for member in candidates:
        match = _POSITION_RE.match(member.position)
        if not match:
            continue
        pool = reserved_idx if match.group(1) == "reserved" else standard_idx
        n = int(match.group(2))
        if n <= len(pool) and take(pool[n - 1], member):
            continue
        logger.debug(
            "layout %s: position %s of member %s unavailable, placing automatically",
            concrete_name,
            member.position,
            member.id,
        )

    screen_idx = next((i for i in reserved_idx if slots[i].get("reservation") == SCREEN_RESERVATION), None)
    if screen_idx is not None:
        for member in candidates:
            if member.kind == "screen" and take(screen_idx, member):
                break

    if floor_member_id is not None:
        floor_idx = next((i for i in standard_idx if slots[i].get("floor")), None)
        holder = next((m for m in candidates if m.id == floor_member_id), None)
        if holder is not None and holder.position == AUTO:
            take(floor_idx, holder)

    free = iter([i for i in standard_idx if i not in assigned])
    for member in candidates:
        if member.id in placed:
            continue
        index = next(free, None)
        if index is None:
            break
        take(index, member)

    layers: list[Layer] = []
    for i, s in enumerate(slots):
        member = assigned.get(i)
        x = _px(s["x"], canvas_w)
        y = _px(s["y"], canvas_h)
        width = min(_px(s["width"], canvas_w), canvas_w - x)
        height = min(_px(s.get("height", s["width"]), canvas_h), canvas_h - y)
        layers.append(
            Layer(
                member_id=member.id if member else None,
                x=x,
                y=y,
                width=width,
                height=height,
                layer_index=i,
                z_index=int(s.get("z_index") or 0),
                reservation=s.get("reservation") or None,
                position=slot_position[i],
                visible=member is not None,
                playing_file=bool(member and member.kind == "playback"),
                zoom=bool(s.get("zoom")),
                floor=bool(s.get("floor")),
                units=(float(s["x"]), float(s["y"]), float(s["width"]), float(s.get("height", s["width"]))),
            )
        )
    return layers


def concrete_layout_name(
    layout_name: str,
    members: Sequence[LayoutMember],
    *,
    hide_video_muted: bool = False,
    custom: Mapping[str, dict] | None = None,
) -> str:
    """The layout a group resolves to for these members (what ``layout.changed`` reports as ``name``)."""
    count = sum(1 for m in members if _on_canvas(m, hide_video_muted))
    return resolve_layout(layout_name, member_count=count, custom=custom)[0]
