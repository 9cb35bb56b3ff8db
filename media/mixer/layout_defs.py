"""Built-in layout definitions: pure data, in FreeSWITCH's units (each canvas axis is 0..360).

Source: ``conf/vanilla/autoload_configs/conference_layouts.conf.xml`` of FreeSWITCH as summarised in
``reference/signalwire-freeswitch.md`` §2.4 (``1x1``, ``2x1``, ``1x1+2x1``, the NxN grids, ``1up_top_left+N``),
with SignalWire's names mapped to them (§2.1): ``5up`` = ``1up_top_left+5``, ``grid-responsive`` = the
``grid`` group, ``highlight-1-responsive`` = the ``1up_top_left_plus`` family headed by ``1x1``.
``10x10`` (100 slots) goes past FreeSWITCH's 64-layer limit; Parley's compositor has no such limit.
``screen-share`` is Parley's: the ``screen`` reservation takes the large slot of ``1up_top_left+9``.

A slot is ``{"x", "y", "width", "height", "z_index", "reservation", "floor", "zoom"}`` (x/y/width/height in
1/360 of the canvas width or height). A group layout has no slots, only ``group``: the ordered layout names
from which the first one with enough slots for the members is chosen (FreeSWITCH ``find_best_layout``).
"""

from __future__ import annotations

UNITS = 360


def slot(x, y, width, height=None, *, floor=False, reservation=None, zoom=False, z_index=0) -> dict:
    return {
        "x": x,
        "y": y,
        "width": width,
        "height": width if height is None else height,
        "z_index": z_index,
        "reservation": reservation,
        "floor": floor,
        "zoom": zoom,
    }


def grid(n: int) -> list[dict]:
    """An n×n grid, row-major fill order. Cells of ``360/n`` units (FreeSWITCH: 3x3 scale 120, 4x4 scale 90…)."""
    step = UNITS / n
    return [slot(round(c * step, 4), round(r * step, 4), round(step, 4)) for r in range(n) for c in range(n)]


def one_up_top_left(floor_units: int, side: int) -> list[dict]:
    """FreeSWITCH ``1up_top_left+N``: a floor slot of ``floor_units`` top-left, then the right column top to
    bottom, then the bottom row left to right, each cell ``360 - floor_units`` units."""
    cell = UNITS - floor_units
    slots = [slot(0, 0, floor_units, floor=True)]
    slots += [slot(floor_units, r * cell, cell) for r in range(side)]
    slots += [slot(c * cell, floor_units, cell) for c in range(side + 1)]
    return slots


BUILTIN_LAYOUTS: dict[str, dict] = {
    "1x1": {"description": "One member, full canvas.", "slots": [slot(0, 0, 360, floor=True)]},
    "2x1": {"description": "Two side by side, letterboxed.", "slots": [slot(0, 90, 180), slot(180, 90, 180)]},
    "1x1+2x1": {
        "description": "One centred on top, two below.",
        "slots": [slot(90, 0, 180), slot(0, 180, 180), slot(180, 180, 180)],
    },
    "2x2": {"description": "Four in a 2×2 grid.", "slots": grid(2)},
    "3x3": {"description": "Nine in a 3×3 grid.", "slots": grid(3)},
    "4x4": {"description": "Sixteen in a 4×4 grid.", "slots": grid(4)},
    "5x5": {"description": "25 in a 5×5 grid.", "slots": grid(5)},
    "6x6": {"description": "36 in a 6×6 grid.", "slots": grid(6)},
    "8x8": {"description": "64 in an 8×8 grid.", "slots": grid(8)},
    "10x10": {"description": "100 in a 10×10 grid.", "slots": grid(10)},
    "5up": {"description": "Active speaker large top-left, five around.", "slots": one_up_top_left(240, 2)},
    "1up_top_left+7": {"description": "Active speaker large, seven around.", "slots": one_up_top_left(270, 3)},
    "1up_top_left+9": {"description": "Active speaker large, nine around.", "slots": one_up_top_left(288, 4)},
    "screen-share": {
        "description": "Screen share large top-left, members around it.",
        "slots": [slot(0, 0, 288, reservation="screen")] + one_up_top_left(288, 4)[1:],
    },
    "grid-responsive": {
        "description": "A grid chosen by member count (1x1, 2x1, 1x1+2x1, 2x2, 3x3 … 10x10).",
        "group": ["1x1", "2x1", "1x1+2x1", "2x2", "3x3", "4x4", "5x5", "6x6", "8x8", "10x10"],
    },
    "grid-responsive-mobile": {
        "description": "A grid chosen by member count, without the 3-member pyramid.",
        "group": ["1x1", "2x1", "2x2", "3x3", "4x4", "5x5", "6x6", "8x8", "10x10"],
    },
    "highlight-1-responsive": {
        "description": "The active speaker large top-left; more small slots as members join.",
        "group": ["1x1", "5up", "1up_top_left+7", "1up_top_left+9"],
    },
}

# Names offered by ``room.list_available_layouts`` and the REST ``layouts`` list (helpers like ``1x1+2x1`` are
# group members, usable by name too).
PUBLIC_LAYOUT_NAMES = (
    "grid-responsive",
    "grid-responsive-mobile",
    "highlight-1-responsive",
    "1x1",
    "2x1",
    "2x2",
    "5up",
    "3x3",
    "4x4",
    "5x5",
    "6x6",
    "8x8",
    "10x10",
    "screen-share",
)
