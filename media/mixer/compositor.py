"""The compositor: draws the layers of a layout onto one yuv420p canvas per output frame.

Technique (measured in ``reference/aiortc-mcu.md`` §3c/3d and ``docs/PERFORMANCE.md``): each tile is scaled
with ``cv2.resize`` (one OpenCV thread) straight into a view of the canvas plane (no intermediate picture), plane
by plane. Each :meth:`Compositor.compose` returns a **new** ``av.VideoFrame`` (encoders never share a frame
object) and draws into it directly:

- the background is painted only where no occupied layer lies (a few strips, computed once per layout);
- a layer is **dirty** when its input changed since it was drawn (a new decoded frame object, mute, talking,
  name) or it overlaps a dirty layer below it; a dirty layer is scaled and decorated again;
- a dirty layer replays its **tile plan**: what to paint where (letterbox bars, the picture's rect and source
  crop, the caption strip, the talking border), computed once per rect, source size, name and talking state and
  kept as plane index tuples, so a frame costs a few plane assignments per tile and no geometry;
- every other layer is copied from the previous canvas, which therefore acts as the cache of scaled tiles,
  keyed by the layer's rect, fit and member and by the input frame's identity. It survives a layout change for
  every layer whose rect, fit and member stay the same (and that nothing covered before), so a join, a mute or a
  floor change only rescales the tiles that moved.

Fit rules (FreeSWITCH ``conference_video_scale_and_patch``): letterbox by default (aspect kept, centred,
black bars ``#000000``), crop-to-fill (centre crop) when ``layer.zoom``. Empty slots show the canvas
background (``#333333``). A video-muted or frame-less member shows an initials card; every occupied tile gets a
name caption at its bottom-left; the talking member's tile a ``#00ff00`` border. Even pixel coordinates are
used inside each layer so luma and chroma stay aligned (an odd FreeSWITCH edge such as ``x=853`` starts at 854).
A picture within ``NEAR_SIZE_PX`` of its letterboxed size (members send at that size, asked by the media worker's
``webrtc.sender_constraints``) is copied 1:1, centre-cropped by at most a few px, instead of rescaled.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import av
import cv2
import numpy as np

from media.mixer.captions import render_caption, render_initials_card, rgb_to_yuv
from media.mixer.layouts import Layer

logger = logging.getLogger(__name__)

DEFAULT_BACKGROUND = (0x33, 0x33, 0x33)
LETTERBOX_COLOR = (0x00, 0x00, 0x00)
BORDER_COLOR = (0x00, 0xFF, 0x00)
BORDER_PX = 4
# A letterboxed picture within this many px (each side) of its drawn size is placed 1:1, not rescaled.
NEAR_SIZE_PX = 4
# Tile plans kept (one per layer rect × source size × name × talking state); the cache restarts when full.
PLAN_CACHE_SIZE = 256


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_allocator_tuned = False


def keep_frame_buffers_in_heap(max_buffer_bytes: int = 32 << 20) -> bool:
    """Let glibc reuse freed frame buffers instead of mapping fresh pages for every new frame (process-wide).

    By default glibc serves allocations above 128 KiB–32 MiB with ``mmap`` and returns them on ``free``, so each
    new 1.4 MB 720p frame page-faults on first write: measured ≈0.5 ms per frame, more than compositing 4 tiles.
    Raising ``M_MMAP_THRESHOLD`` (and the heap trim threshold with it) keeps such buffers in the heap. Idempotent;
    returns ``False`` where the C library has no ``mallopt`` (not glibc).
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.info("mallopt unavailable; new frames keep their default allocation")
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, max_buffer_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, 4 * max_buffer_bytes))
    _allocator_tuned = ok
    return ok


@dataclass
class Tile:
    """What the compositor knows of one member: the latest decoded video and how to decorate it.

    ``frame``: the latest decoded ``av.VideoFrame`` (any size and pixel format) or an RGB ``(h, w, 3)`` uint8
    array, or ``None`` when nothing was received yet. Pass the same object again when no new frame arrived: its
    conversion to yuv420p and its drawing are cached by object identity.
    """

    frame: av.VideoFrame | np.ndarray | None = None
    name: str = ""
    video_muted: bool = False
    talking: bool = False


@dataclass
class _Source:
    frame: object
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]


def _plane(plane, width: int, height: int) -> np.ndarray:
    """A ``height``×``width`` view of a PyAV plane's buffer (rows ``line_size`` bytes apart)."""
    return np.ndarray((height, width), np.uint8, plane, 0, (plane.line_size, 1))


def _planes(frame: av.VideoFrame, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views ``(Y, U, V)`` of a yuv420p frame's planes, ``width``×``height`` luma px (even)."""
    y, u, v = frame.planes  # PyAV builds the plane objects on every access
    return _plane(y, width, height), _plane(u, width // 2, height // 2), _plane(v, width // 2, height // 2)


def _indices(x0: int, y0: int, x1: int, y1: int) -> tuple[tuple[slice, slice], ...]:
    """Index tuples of the even luma rect ``(x0, y0, x1, y1)`` into the Y, U and V planes."""
    chroma = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    return (slice(y0, y1), slice(x0, x1)), chroma, chroma


def _fill_ops(x0: int, y0: int, x1: int, y1: int, yuv: tuple[int, int, int]) -> list[tuple[int, tuple, int]]:
    """``(plane, index, value)`` painting the even luma rect ``(x0, y0, x1, y1)`` in colour ``yuv``; none if empty."""
    if x1 <= x0 or y1 <= y0:
        return []
    return list(zip(range(3), _indices(x0, y0, x1, y1), yuv, strict=True))


class _TilePlan(NamedTuple):
    """How one layer is drawn for one source size, name and talking state, as plane index tuples of the canvas.

    ``under``: ``(plane, index, value)`` fills before the picture (letterbox bars); ``interpolation``: the
    ``cv2.INTER_*`` scaling the picture, ``None`` for a 1:1 copy; ``dst``/``src``: per plane, where the picture
    goes and the (cropped) part of the source it comes from; ``over``: ``(plane, index, value or array)`` painted
    on top (caption strip, talking border). Computed once per distinct key and reused every frame.
    """

    under: tuple[tuple[int, tuple, int], ...]
    interpolation: int | None
    dst: tuple[tuple[slice, slice], ...]
    src: tuple[tuple[slice, slice], ...]
    over: tuple[tuple[int, tuple, object], ...]


def _to_source(frame: av.VideoFrame | np.ndarray) -> _Source | None:
    """yuv420p planes of a decoded frame (views when it already is yuv420p; even-cropped); ``None`` if empty."""
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"an ndarray tile must be RGB (h, w, 3) uint8, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[0] & ~1, frame.shape[1] & ~1
        if not w or not h:
            return None
        i420 = cv2.cvtColor(np.ascontiguousarray(frame[:h, :w]), cv2.COLOR_RGB2YUV_I420)
        chroma = i420[h:].reshape(2, h // 2, w // 2)
        return _Source(frame, i420[:h], chroma[0], chroma[1])
    picture = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    w, h = picture.width & ~1, picture.height & ~1
    if not w or not h:
        return None
    return _Source(frame, *_planes(picture, w, h))


def _even_rect(layer: Layer) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the layer shrunk to even coordinates (luma px)."""
    x0, y0 = (layer.x + 1) & ~1, (layer.y + 1) & ~1
    x1, y1 = (layer.x + layer.width) & ~1, (layer.y + layer.height) & ~1
    return x0, y0, max(x0, x1), max(y0, y1)


def cell_size(layer: Layer) -> tuple[int, int]:
    """``(width, height)`` px of the cell the compositor draws a layer into: its rect shrunk to even edges (a
    FreeSWITCH 3x3 column at ``x=853`` is 424 px wide on a 1280 px canvas, not 426)."""
    x0, y0, x1, y1 = _even_rect(layer)
    return x1 - x0, y1 - y0


def _draw_key(layer: Layer) -> tuple:
    """What a layer's pixels depend on besides its tile: member, even rect and fit."""
    return (layer.member_id, _even_rect(layer), layer.zoom)


def _uncovered(width: int, height: int, rects: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The part of a ``width``×``height`` canvas outside every ``(x0, y0, x1, y1)`` rect, as disjoint rects.

    Horizontal bands split at every rect edge; within a band the gaps between the merged covering spans are
    emitted, and a gap continuing the same span of the band above extends that rect instead.
    """
    edges = sorted({0, height, *(y for r in rects for y in (r[1], r[3]) if 0 <= y <= height)})
    open_rects: dict[tuple[int, int], int] = {}  # (x0, x1) -> y0 of the rect still growing downwards
    result: list[tuple[int, int, int, int]] = []
    for top, bottom in zip(edges, edges[1:], strict=False):
        spans = sorted((r[0], r[2]) for r in rects if r[1] <= top and r[3] >= bottom and r[0] < r[2])
        gaps, x = [], 0
        for x0, x1 in spans:
            if x0 > x:
                gaps.append((x, min(x0, width)))
            x = max(x, x1)
        if x < width:
            gaps.append((x, width))
        still_open: dict[tuple[int, int], int] = {}
        for gap in gaps:
            still_open[gap] = open_rects.pop(gap, top)
        for (x0, x1), y0 in open_rects.items():
            result.append((x0, y0, x1, top))
        open_rects = still_open
    result.extend((x0, y0, x1, height) for (x0, x1), y0 in open_rects.items())
    return sorted(result, key=lambda r: (r[1], r[0]))


def _letterbox(src_w: int, src_h: int, cell_w: int, cell_h: int) -> tuple[int, int, int, int]:
    """Content ``(ox, oy, w, h)`` inside a cell, aspect kept and centred; all even (luma px)."""
    scale = min(cell_w / src_w, cell_h / src_h)
    w = min(cell_w, max(2, int(round(src_w * scale / 2)) * 2))
    h = min(cell_h, max(2, int(round(src_h * scale / 2)) * 2))
    return ((cell_w - w) // 4) * 2, ((cell_h - h) // 4) * 2, w, h


def _crop(src_w: int, src_h: int, cell_w: int, cell_h: int) -> tuple[int, int, int, int]:
    """Source ``(sx, sy, w, h)`` of the centred crop that fills a cell (zoom); all even (luma px)."""
    scale = max(cell_w / src_w, cell_h / src_h)
    w = min(src_w, max(2, int(round(cell_w / scale / 2)) * 2))
    h = min(src_h, max(2, int(round(cell_h / scale / 2)) * 2))
    return ((src_w - w) // 4) * 2, ((src_h - h) // 4) * 2, w, h


def drawn_size(src_w: int, src_h: int, cell_w: int, cell_h: int, *, zoom: bool) -> tuple[int, int]:
    """The size, px (even), at which a ``src_w``×``src_h`` picture is drawn into a ``cell_w``×``cell_h`` cell
    (:func:`cell_size`):
    the letterboxed content, or with ``zoom`` the whole picture scaled to cover the cell (before the centre crop).

    A sender sending more than this wastes its uplink and the worker's decode and scale: the worker asks each
    member for it (``webrtc.sender_constraints``, ``media.worker.room.RoomMixer``). The aspect is the source's.
    """
    if zoom:
        scale = max(cell_w / src_w, cell_h / src_h)
        return max(2, int(round(src_w * scale / 2)) * 2), max(2, int(round(src_h * scale / 2)) * 2)
    _, _, w, h = _letterbox(src_w, src_h, cell_w, cell_h)
    return w, h


class Compositor:
    """Draws layers onto a ``width_px``×``height_px`` yuv420p canvas (both even).

    ``background``: RGB of the canvas where no layer is drawn (FreeSWITCH ``video-canvas-bgcolor``).
    ``interpolation``: a ``cv2.INTER_*`` for scaled tiles; by default ``INTER_AREA`` for exact integer
    down-scales (fast and sharp there) and ``INTER_LINEAR`` otherwise.
    ``tune_allocator``: call :func:`keep_frame_buffers_in_heap` (process-wide glibc setting) so the new frame
    returned by every :meth:`compose` costs no page faults.
    ``cv_threads``: ``cv2.setNumThreads`` (process-wide); 1 by default. OpenCV's threads split each small tile
    resize in two, which costs more CPU than it saves wall time on a busy 2-core box (9 live tiles at 720p:
    3.21 ms CPU per canvas with two threads, 2.1–2.5 ms with one; ``docs/PERFORMANCE.md``). ``None`` leaves OpenCV's
    setting alone.
    Not thread-safe: one compositor per room canvas, called from one thread.
    """

    def __init__(
        self,
        width_px: int,
        height_px: int,
        *,
        background: tuple[int, int, int] = DEFAULT_BACKGROUND,
        interpolation: int | None = None,
        tune_allocator: bool = True,
        cv_threads: int | None = 1,
    ) -> None:
        if width_px <= 0 or height_px <= 0 or width_px % 2 or height_px % 2:
            raise ValueError(f"canvas size must be positive and even, got {width_px}x{height_px}")
        if tune_allocator:
            keep_frame_buffers_in_heap()
        if cv_threads is not None and cv2.getNumThreads() != cv_threads:
            cv2.setNumThreads(cv_threads)
        self.width_px = width_px
        self.height_px = height_px
        self.background_yuv = rgb_to_yuv(background)
        self._letterbox_yuv = rgb_to_yuv(LETTERBOX_COLOR)
        self._border_yuv = rgb_to_yuv(BORDER_COLOR)
        self._interpolation = interpolation
        self._layers: tuple[Layer, ...] | None = None
        self._order: list[int] = []
        self._above: dict[int, list[int]] = {}
        self._rects: list[tuple[int, int, int, int]] = []
        self._cells: list[tuple[tuple[slice, slice], ...]] = []
        self._plans: dict[tuple, _TilePlan] = {}
        self._occupied: list[int] = []
        self._drawable: frozenset[int] = frozenset()
        self._bare: list[tuple[int, int, int, int]] = [(0, 0, width_px, height_px)]
        # Per layer index: the signature it was last drawn with and the input object it was drawn from (kept
        # alive so that its id() cannot be reused by a newer frame while the signature refers to it).
        self._drawn: dict[int, tuple[tuple, object]] = {}
        self._sources: dict[str, _Source] = {}
        self._previous: av.VideoFrame | None = None
        self._target(av.VideoFrame(width_px, height_px, "yuv420p"))
        self._fill_background()

    # ------------------------------------------------------------------ public

    def compose(self, layers: Sequence[Layer], tiles: Mapping[str, Tile]) -> av.VideoFrame:
        """Draw ``layers`` with the members' ``tiles`` (keyed by member id) and return a new yuv420p frame.

        The frame has no ``pts``; the caller stamps it. A layer whose member has no tile is drawn as a card
        without a name. Don't write into a returned frame's planes: unchanged layers of the next frame are
        copied from it.
        """
        layers = tuple(layers)
        if layers != self._layers:
            self._set_layers(layers)
        self._forget_sources(tiles)
        previous = self._previous
        dirty: set[int] = set()
        for i in self._occupied:
            drawn = self._drawn.get(i)
            if previous is None or drawn is None or drawn[0] != self._signature(tiles.get(layers[i].member_id)):
                dirty.add(i)
                dirty.update(self._above.get(i, ()))
        frame = av.VideoFrame(self.width_px, self.height_px, "yuv420p")
        self._target(frame)
        for rect in self._bare:
            self._fill(*rect, self.background_yuv)
        if previous is not None:
            # Layers whose input did not change: their pixels (scaled tile, caption, border) from the last canvas.
            before = _planes(previous, self.width_px, self.height_px)
            for i in self._occupied:
                if i not in dirty:
                    self._copy_from(before, i)
        for i in self._order:
            if i in dirty and i in self._drawable:
                tile = tiles.get(layers[i].member_id)
                self._draw_layer(i, tile)
                self._drawn[i] = (self._signature(tile), self._input_of(tile))
        self._previous = frame
        return frame

    def reset(self) -> None:
        """Forget everything drawn and cached; the next :meth:`compose` redraws the whole canvas."""
        self._layers = None
        self._drawn.clear()
        self._sources.clear()
        self._plans.clear()
        self._previous = None
        self._bare = [(0, 0, self.width_px, self.height_px)]

    @property
    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of the last composed frame's planes ``(Y (h, w), U (h/2, w/2), V (h/2, w/2))``, read-only use."""
        return self._y, self._u, self._v

    def _target(self, frame: av.VideoFrame) -> None:
        self._y, self._u, self._v = _planes(frame, self.width_px, self.height_px)

    # ----------------------------------------------------------------- drawing

    def _fill_background(self) -> None:
        y, u, v = self.background_yuv
        self._y.fill(y)
        self._u.fill(u)
        self._v.fill(v)

    def _set_layers(self, layers: tuple[Layer, ...]) -> None:
        old_keys = [_draw_key(layer) for layer in self._layers or ()]
        old_above, old_drawn = self._above, self._drawn
        self._layers = layers
        self._order = sorted(range(len(layers)), key=lambda i: (layers[i].z_index, i))
        self._rects = rects = [_even_rect(layer) for layer in layers]
        self._cells = [_indices(*rect) for rect in rects]
        rank = {i: r for r, i in enumerate(self._order)}
        self._above = {}
        for i, a in enumerate(rects):
            for j, b in enumerate(rects):
                if rank[j] > rank[i] and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    self._above.setdefault(i, []).append(j)
        self._occupied = [
            i
            for i, (layer, (x0, y0, x1, y1)) in enumerate(zip(layers, rects, strict=True))
            if layer.member_id is not None and x1 - x0 >= 2 and y1 - y0 >= 2
        ]
        self._drawable = frozenset(self._occupied)
        self._bare = _uncovered(self.width_px, self.height_px, [rects[i] for i in self._occupied])
        # A layer drawn with the same rect, fit and member that nothing covered keeps its pixels in the previous
        # canvas: carry its signature over so it is copied, not rescaled, unless its input changed too.
        reusable = {key: o for o, key in enumerate(old_keys) if o in old_drawn and o not in old_above}
        self._drawn = {}
        for i in self._occupied:
            o = reusable.pop(_draw_key(layers[i]), None)
            if o is not None:
                self._drawn[i] = old_drawn[o]

    @staticmethod
    def _input_of(tile: Tile | None) -> object:
        return None if tile is None or tile.video_muted else tile.frame

    def _signature(self, tile: Tile | None) -> tuple:
        if tile is None:
            return (None,)
        frame = self._input_of(tile)
        return (id(frame), frame is None, tile.video_muted, tile.talking, tile.name)

    def _forget_sources(self, tiles: Mapping[str, Tile]) -> None:
        for member_id in [m for m in self._sources if m not in tiles]:
            del self._sources[member_id]

    def _source(self, member_id: str, frame: av.VideoFrame | np.ndarray) -> _Source | None:
        cached = self._sources.get(member_id)
        if cached is not None and cached.frame is frame:
            return cached
        source = _to_source(frame)
        if source is None:
            self._sources.pop(member_id, None)
        else:
            self._sources[member_id] = source
        return source

    def _fill(self, x0: int, y0: int, x1: int, y1: int, yuv: tuple[int, int, int]) -> None:
        canvas = (self._y, self._u, self._v)
        for k, index, value in _fill_ops(x0, y0, x1, y1, yuv):
            canvas[k][index] = value

    def _copy_from(self, before: tuple[np.ndarray, np.ndarray, np.ndarray], i: int) -> None:
        canvas = (self._y, self._u, self._v)
        for k, index in enumerate(self._cells[i]):
            canvas[k][index] = before[k][index]

    def _interpolation_for(self, sw: int, sh: int, w: int, h: int) -> int | None:
        if (sw, sh) == (w, h):
            return None
        if self._interpolation is not None:
            return self._interpolation
        if sw % w == 0 and sh % h == 0 and sw // w == sh // h:
            return cv2.INTER_AREA
        return cv2.INTER_LINEAR

    def _plan(self, i: int, size: tuple[int, int] | None, name: str, talking: bool) -> _TilePlan:
        key = (self._rects[i], self._layers[i].zoom, size, name, talking)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            plan = self._plans[key] = self._make_plan(*key)
        return plan

    def _make_plan(
        self, rect: tuple[int, int, int, int], zoom: bool, size: tuple[int, int] | None, name: str, talking: bool
    ) -> _TilePlan:
        """The drawing of one layer in canvas coordinates; ``size`` is the source's, ``None`` for the card."""
        x0, y0, x1, y1 = rect
        cell_w, cell_h = x1 - x0, y1 - y0
        under: list[tuple[int, tuple[slice, slice], int]] = []
        if size is None:  # the initials card, drawn at the cell's size
            crop, (ox, oy, w, h) = (0, 0, cell_w, cell_h), (0, 0, cell_w, cell_h)
        elif zoom:
            crop, (ox, oy, w, h) = _crop(*size, cell_w, cell_h), (0, 0, cell_w, cell_h)
        else:
            ox, oy, w, h = _letterbox(*size, cell_w, cell_h)
            sw, sh = size
            crop = (0, 0, sw, sh)
            if (sw, sh) != (w, h) and abs(sw - w) <= NEAR_SIZE_PX and abs(sh - h) <= NEAR_SIZE_PX:
                # Within a few px of its drawn size (a sender following ``webrtc.sender_constraints`` rounds the
                # size its own way): placed 1:1, centre-cropped to the cell where larger, not rescaled.
                w, h = min(sw, cell_w) & ~1, min(sh, cell_h) & ~1
                crop = (((sw - w) // 4) * 2, ((sh - h) // 4) * 2, w, h)
                ox, oy = ((cell_w - w) // 4) * 2, ((cell_h - h) // 4) * 2
            black = self._letterbox_yuv
            for bar in (
                (x0, y0, x1, y0 + oy),
                (x0, y0 + oy + h, x1, y1),
                (x0, y0 + oy, x0 + ox, y0 + oy + h),
                (x0 + ox + w, y0 + oy, x1, y0 + oy + h),
            ):
                under.extend(_fill_ops(*bar, black))
        sx, sy, sw, sh = crop
        over: list[tuple[int, tuple[slice, slice], np.ndarray | int]] = []
        caption = render_caption(name, cell_w, cell_h)
        if caption is not None:
            strip = _indices(x0, y1 - caption.height, x0 + caption.width, y1)
            over.extend(zip(range(3), strip, (caption.y, caption.u, caption.v), strict=True))
        if talking:
            b = min(BORDER_PX, cell_w // 4 * 2, cell_h // 4 * 2)
            green = self._border_yuv
            for edge in (
                (x0, y0, x1, y0 + b),
                (x0, y1 - b, x1, y1),
                (x0, y0 + b, x0 + b, y1 - b),
                (x1 - b, y0 + b, x1, y1 - b),
            ):
                over.extend(_fill_ops(*edge, green))
        return _TilePlan(
            tuple(under),
            self._interpolation_for(sw, sh, w, h),
            _indices(x0 + ox, y0 + oy, x0 + ox + w, y0 + oy + h),
            _indices(sx, sy, sx + sw, sy + sh),
            tuple(over),
        )

    def _draw_layer(self, i: int, tile: Tile | None) -> None:
        """Letterbox bars, the scaled (or 1:1) picture or the initials card, the caption and the talking border
        of layer ``i``, straight into the canvas planes."""
        name = tile.name if tile else ""
        source = None
        if tile is not None and not tile.video_muted and tile.frame is not None:
            source = self._source(self._layers[i].member_id, tile.frame)
        if source is None:
            x0, y0, x1, y1 = self._rects[i]
            card = render_initials_card(name, x1 - x0, y1 - y0)
            pictures, size = (card.y, card.u, card.v), None
        else:
            pictures, size = (source.y, source.u, source.v), source.size
        plan = self._plan(i, size, name, tile is not None and tile.talking)
        canvas = (self._y, self._u, self._v)
        for k, index, value in plan.under:
            canvas[k][index] = value
        interpolation = plan.interpolation
        for k in range(3):
            picture = pictures[k][plan.src[k]]
            if interpolation is None:
                canvas[k][plan.dst[k]] = picture
            else:
                dst = canvas[k][plan.dst[k]]
                out = cv2.resize(picture, (dst.shape[1], dst.shape[0]), dst=dst, interpolation=interpolation)
                if out is not dst and not np.shares_memory(out, dst):
                    np.copyto(dst, out)
        for k, index, value in plan.over:
            canvas[k][index] = value
