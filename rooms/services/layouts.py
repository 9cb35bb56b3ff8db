"""Writes for a project's own layouts (DESIGN §2 "Layout"). Built-in layouts (``project`` null) are read-only.

A slot is ``{x, y, width, height, z_index, reservation, floor, zoom}`` in FreeSWITCH units: each canvas axis
is 0..360 (``media.mixer.layout_defs.UNITS``), so ``x + width <= 360`` and ``y + height <= 360``.
"""

from __future__ import annotations

import logging
import re

from django.db import IntegrityError, transaction

from rooms.actors import Actor
from rooms.events import audit_record
from rooms.exceptions import Conflict, InvalidParameter, ParleyError
from rooms.models import ROOM_NAME_RE, Layout, Project, Room

logger = logging.getLogger(__name__)

UNITS = 360
MAX_SLOTS = 100
RESERVATION_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class LayoutReadOnly(ParleyError):
    """A built-in layout cannot be changed or deleted."""

    code = "layout_read_only"
    http_status = 403
    rpc_code = -32003
    default_message = "Built-in layouts are read-only; create a layout of your own under another name."


def _number(value, attribute: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter("Must be a number.", attribute=attribute)
    if not 0 <= value <= UNITS:
        raise InvalidParameter(f"Must be within 0..{UNITS}.", attribute=attribute)
    return value


def validate_slots(slots) -> list[dict]:
    """Validate and normalise ``slots`` (1..100 slot objects). Returns the slots with defaults filled in
    (``z_index`` 0, ``reservation`` null, ``floor``/``zoom`` false). Raises ``InvalidParameter`` naming the
    offending attribute (``slots.3.width``)."""
    if not isinstance(slots, list) or not 1 <= len(slots) <= MAX_SLOTS:
        raise InvalidParameter(f"A layout has 1..{MAX_SLOTS} slots.", attribute="slots")
    out = []
    for index, item in enumerate(slots):
        at = f"slots.{index}"
        if not isinstance(item, dict):
            raise InvalidParameter("A slot is an object.", attribute=at)
        for key in ("x", "y", "width", "height"):
            if key not in item:
                raise InvalidParameter("Required.", attribute=f"{at}.{key}")
        x, y = _number(item["x"], f"{at}.x"), _number(item["y"], f"{at}.y")
        width, height = _number(item["width"], f"{at}.width"), _number(item["height"], f"{at}.height")
        if width <= 0 or height <= 0:
            raise InvalidParameter("width and height must be positive.", attribute=f"{at}.width")
        if x + width > UNITS:
            raise InvalidParameter(f"x + width must be at most {UNITS}.", attribute=f"{at}.width")
        if y + height > UNITS:
            raise InvalidParameter(f"y + height must be at most {UNITS}.", attribute=f"{at}.height")
        z_index = item.get("z_index", 0)
        if isinstance(z_index, bool) or not isinstance(z_index, int) or not -1000 <= z_index <= 1000:
            raise InvalidParameter("Must be an integer within -1000..1000.", attribute=f"{at}.z_index")
        reservation = item.get("reservation")
        if reservation is not None and (not isinstance(reservation, str) or not RESERVATION_RE.match(reservation)):
            raise InvalidParameter(
                "Must be null or a short slug (lowercase letters, digits, '_' or '-', at most 32).",
                attribute=f"{at}.reservation",
            )
        flags = {}
        for key in ("floor", "zoom"):
            value = item.get(key, False)
            if not isinstance(value, bool):
                raise InvalidParameter("Must be a boolean.", attribute=f"{at}.{key}")
            flags[key] = value
        out.append(
            {"x": x, "y": y, "width": width, "height": height, "z_index": z_index, "reservation": reservation, **flags}
        )
    return out


def _audit(actor: Actor, action: str, layout: Layout) -> None:
    audit_record(
        project_id=actor.project_id,
        action=action,
        target_type="layout",
        target_id=str(layout.id),
        target_name=layout.name,
        **actor.audit_fields(),
    )


@transaction.atomic
def layout_create(*, actor: Actor, project: Project, name: str, slots: list, description: str = "") -> Layout:
    """Create the project layout ``name``. Raises ``Conflict`` if the name is taken by a built-in or by
    another layout of the project, ``InvalidParameter`` for bad slots."""
    if not isinstance(name, str) or not re.match(ROOM_NAME_RE, name):
        raise InvalidParameter("Use 1–100 letters, digits, '_' or '-'.", attribute="name")
    slots = validate_slots(slots)
    if Layout.objects.filter(project__isnull=True, name=name).exists():
        raise Conflict(f"'{name}' is a built-in layout; choose another name.", attribute="name")
    if Layout.objects.filter(project=project, name=name).exists():
        raise Conflict(f"A layout named '{name}' already exists.", attribute="name")
    try:
        with transaction.atomic():
            layout = Layout.objects.create(project=project, name=name, description=description, slots=slots)
    except IntegrityError as e:
        raise Conflict(f"A layout named '{name}' already exists.", attribute="name") from e
    _audit(actor, "layout.create", layout)
    return layout


@transaction.atomic
def layout_update(*, actor: Actor, layout: Layout, slots: list | None = None, description: str | None = None) -> Layout:
    """Replace the slots and/or description of a project layout. Built-ins raise ``LayoutReadOnly`` (403)."""
    if layout.is_builtin:
        raise LayoutReadOnly()
    if slots is not None:
        layout.slots = validate_slots(slots)
    if description is not None:
        layout.description = description
    layout.save()
    _audit(actor, "layout.update", layout)
    return layout


@transaction.atomic
def layout_delete(*, actor: Actor, layout: Layout) -> None:
    """Delete a project layout. Built-ins raise ``LayoutReadOnly``; a layout still used as a room's default
    raises ``Conflict`` naming the rooms."""
    if layout.is_builtin:
        raise LayoutReadOnly()
    used_by = list(
        Room.objects.filter(project_id=layout.project_id, layout=layout.name).values_list("name", flat=True)[:5]
    )
    if used_by:
        raise Conflict(f"The layout is the default of rooms: {', '.join(used_by)}.")
    _audit(actor, "layout.delete", layout)
    layout.delete()
