"""Layout previews: a layout's slots as rectangles for an SVG drawing of the 16:9 canvas.

Slots are in FreeSWITCH units (each canvas axis 0..360, ``media.mixer.layout_defs``); the SVG uses
``viewBox="0 0 360 360"`` stretched to 16:9, so slot units are drawn as they are.
"""

from __future__ import annotations

from rooms.models import Layout

PREVIEW_MEMBERS = 4


def preview_slots(layout: Layout, *, by_name: dict[str, Layout], members: int = PREVIEW_MEMBERS) -> list[dict]:
    """The slots to draw for ``layout``: its own, or for a responsive group the first member layout with room
    for ``members`` (the last one otherwise), as FreeSWITCH's ``find_best_layout`` picks.

    Each slot: ``{"x", "y", "width", "height", "floor", "reservation", "index"}`` in units of 360.
    """
    slots = layout.slots
    if not slots and layout.group:
        candidates = [by_name[name] for name in layout.group if name in by_name and by_name[name].slots]
        chosen = next((c for c in candidates if len(c.slots) >= members), candidates[-1] if candidates else None)
        slots = chosen.slots if chosen else []
    rects = [
        {
            "x": float(s.get("x", 0)),
            "y": float(s.get("y", 0)),
            "width": float(s.get("width", 0)),
            "height": float(s.get("height", 0)),
            "floor": bool(s.get("floor")),
            "reservation": s.get("reservation") or "",
            "index": i + 1,
            "z_index": s.get("z_index", 0) or 0,
        }
        for i, s in enumerate(slots)
    ]
    return sorted(rects, key=lambda r: r["z_index"])
