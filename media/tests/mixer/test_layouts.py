"""The layout engine: geometry against FreeSWITCH's pixels and SignalWire's percentages, and the fill rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.mixer.layout_defs import BUILTIN_LAYOUTS
from media.mixer.layouts import (
    Layer,
    LayoutMember,
    UnknownLayout,
    canvas_size,
    compute_layers,
    concrete_layout_name,
    resolve_layout,
)

W, H = 1280, 720
CONCRETE = sorted(name for name, d in BUILTIN_LAYOUTS.items() if not d.get("group"))
GROUPS = sorted(name for name, d in BUILTIN_LAYOUTS.items() if d.get("group"))


def members(n: int, **kwargs) -> list[LayoutMember]:
    return [LayoutMember(id=f"m{i:03d}", name=f"Member {i}", join_order=i, **kwargs) for i in range(n)]


def rect(layer: Layer) -> tuple[int, int, int, int]:
    return layer.x, layer.y, layer.width, layer.height


def overlaps(a: Layer, b: Layer) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height


def layout_cases():
    for name in CONCRETE:
        slots = len(BUILTIN_LAYOUTS[name]["slots"])
        for count in range(slots + 3):
            yield name, count


@pytest.mark.parametrize(("name", "count"), list(layout_cases()))
@pytest.mark.parametrize(("canvas_w", "canvas_h"), [(1280, 720), (640, 360), (1920, 1080)])
def test_every_builtin_layout_places_members_in_slot_order_inside_the_canvas(name, count, canvas_w, canvas_h):
    slots = BUILTIN_LAYOUTS[name]["slots"]
    layers = compute_layers(name, members(count), canvas_w=canvas_w, canvas_h=canvas_h)

    assert len(layers) == len(slots)
    assert [layer.layer_index for layer in layers] == list(range(len(slots)))
    for layer in layers:
        assert layer.x >= 0 and layer.y >= 0 and layer.width > 0 and layer.height > 0
        assert layer.x + layer.width <= canvas_w and layer.y + layer.height <= canvas_h
    for i, a in enumerate(layers):
        for b in layers[i + 1 :]:
            if a.z_index == b.z_index:
                assert not overlaps(a, b), (name, rect(a), rect(b))

    standard = [layer for layer in layers if layer.reservation is None]
    expected = [f"m{i:03d}" for i in range(min(count, len(standard)))]
    assert [layer.member_id for layer in standard if layer.member_id] == expected
    assert all(layer.member_id is None for layer in standard[len(expected) :])
    assert all(layer.member_id is None for layer in layers if layer.reservation)
    assert all(layer.visible == (layer.member_id is not None) for layer in layers)


@pytest.mark.parametrize(
    ("name", "expected_px"),
    [
        ("1x1", [(0, 0, 1280, 720)]),
        ("2x1", [(0, 180, 640, 360), (640, 180, 640, 360)]),
        ("2x2", [(0, 0, 640, 360), (640, 0, 640, 360), (0, 360, 640, 360), (640, 360, 640, 360)]),
        ("3x3", [(x, y, 426, 240) for y in (0, 240, 480) for x in (0, 426, 853)]),
        ("4x4", [(x, y, 320, 180) for y in (0, 180, 360, 540) for x in (0, 320, 640, 960)]),
        (
            "5up",
            [
                (0, 0, 853, 480),
                (853, 0, 426, 240),
                (853, 240, 426, 240),
                (0, 480, 426, 240),
                (426, 480, 426, 240),
                (853, 480, 426, 240),
            ],
        ),
    ],
)
def test_pixels_match_freeswitch_truncation_at_720p(name, expected_px):
    layers = compute_layers(name, [], canvas_w=W, canvas_h=H)

    assert [rect(layer) for layer in layers] == expected_px


@pytest.mark.parametrize(
    ("name", "expected_percent"),
    [
        ("2x1", [(0, 25, 50, 50), (50, 25, 50, 50)]),
        ("1x1+2x1", [(25, 0, 50, 50), (0, 50, 50, 50), (50, 50, 50, 50)]),
        ("3x3", [(x, y, 33.33, 33.33) for y in (0, 33.33, 66.67) for x in (0, 33.33, 66.67)]),
        ("4x4", [(x, y, 25, 25) for y in (0, 25, 50, 75) for x in (0, 25, 50, 75)]),
        ("6x6", [(x, 0, 16.67, 16.67) for x in (0, 16.67, 33.33, 50, 66.67, 83.33)]),
        (
            "5up",
            [
                (0, 0, 66.67, 66.67),
                (66.67, 0, 33.33, 33.33),
                (66.67, 33.33, 33.33, 33.33),
                (0, 66.67, 33.33, 33.33),
                (33.33, 66.67, 33.33, 33.33),
                (66.67, 66.67, 33.33, 33.33),
            ],
        ),
        (
            "1up_top_left+7",
            [(0, 0, 75, 75), (75, 0, 25, 25), (75, 25, 25, 25), (75, 50, 25, 25)]
            + [(x, 75, 25, 25) for x in (0, 25, 50, 75)],
        ),
        (
            "1up_top_left+9",
            [(0, 0, 80, 80)]
            + [(80, y, 20, 20) for y in (0, 20, 40, 60)]
            + [(x, 80, 20, 20) for x in (0, 20, 40, 60, 80)],
        ),
    ],
)
def test_event_percentages_match_signalwire(name, expected_percent):
    layers = compute_layers(name, [], canvas_w=W, canvas_h=H)
    events = [layer.to_event(W, H) for layer in layers]

    got = [(e["x"], e["y"], e["width"], e["height"]) for e in events][: len(expected_percent)]
    assert got == [tuple(float(v) for v in row) for row in expected_percent]


def test_the_event_carries_signalwire_layer_fields():
    layer = compute_layers("2x2", members(1), canvas_w=W, canvas_h=H)[0]

    assert layer.to_event(W, H) == {
        "member_id": "m000",
        "x": 0.0,
        "y": 0.0,
        "width": 50.0,
        "height": 50.0,
        "layer_index": 0,
        "z_index": 0,
        "reservation": None,
        "position": "standard-1",
        "visible": True,
        "playing_file": False,
    }


def test_a_layer_without_units_reports_percent_of_its_pixels():
    layer = Layer("a", 320, 180, 640, 360, 0, 0, None, "standard-1", True, False, False)

    event = layer.to_event(1280, 720)

    assert (event["x"], event["y"], event["width"], event["height"]) == (25.0, 25.0, 50.0, 50.0)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "1x1"),
        (1, "1x1"),
        (2, "2x1"),
        (3, "1x1+2x1"),
        (4, "2x2"),
        (5, "3x3"),
        (9, "3x3"),
        (10, "4x4"),
        (16, "4x4"),
        (17, "5x5"),
        (26, "6x6"),
        (37, "8x8"),
        (64, "8x8"),
        (65, "10x10"),
        (150, "10x10"),
    ],
)
def test_grid_responsive_picks_the_first_grid_with_enough_slots(count, expected):
    name, slots = resolve_layout("grid-responsive", member_count=count)

    assert name == expected
    assert slots == BUILTIN_LAYOUTS[expected]["slots"]
    assert concrete_layout_name("grid-responsive", members(count)) == expected


def test_grid_responsive_mobile_skips_the_three_member_pyramid():
    assert resolve_layout("grid-responsive-mobile", member_count=3)[0] == "2x2"


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, "1x1"), (2, "5up"), (6, "5up"), (7, "1up_top_left+7"), (10, "1up_top_left+9"), (30, "1up_top_left+9")],
)
def test_highlight_responsive_grows_with_members(count, expected):
    assert resolve_layout("highlight-1-responsive", member_count=count)[0] == expected


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 9, 10, 11, 17, 37, 65, 101])
def test_a_group_layout_places_as_many_members_as_fit(name, count):
    layers = compute_layers(name, members(count), canvas_w=W, canvas_h=H)

    placed = [layer.member_id for layer in layers if layer.member_id]
    assert len(placed) == min(count, len(layers))
    assert placed == sorted(placed)
    assert len(set(placed)) == len(placed)


def test_the_group_is_chosen_by_the_members_that_may_go_on_the_canvas():
    crowd = members(6)
    for m in crowd[:2]:
        m.position = "off-canvas"

    layers = compute_layers("grid-responsive", crowd, canvas_w=W, canvas_h=H)

    assert len(layers) == 4
    assert [layer.member_id for layer in layers] == ["m002", "m003", "m004", "m005"]


def test_standard_positions_take_the_numbered_slot_and_others_fill_around_them():
    crowd = members(4)
    crowd[3].position = "standard-1"
    crowd[0].position = "standard-4"

    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["m003", "m001", "m002", "m000"]
    assert [layer.position for layer in layers] == ["standard-1", "standard-2", "standard-3", "standard-4"]


def test_a_taken_or_missing_position_falls_back_to_automatic_placement():
    crowd = members(3)
    crowd[1].position = "standard-1"
    crowd[2].position = "standard-1"
    crowd[0].position = "standard-9"

    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["m001", "m000", "m002", None]


def test_reserved_positions_count_only_slots_with_a_reservation():
    crowd = members(3)
    crowd[2].position = "reserved-1"

    layers = compute_layers("screen-share", crowd, canvas_w=W, canvas_h=H)

    assert layers[0].reservation == "screen" and layers[0].position == "reserved-1"
    assert layers[0].member_id == "m002"
    assert [layer.position for layer in layers[1:3]] == ["standard-1", "standard-2"]
    assert [layer.member_id for layer in layers[1:3]] == ["m000", "m001"]


def test_a_reserved_position_in_a_layout_without_reservations_is_placed_automatically():
    crowd = members(2)
    crowd[1].position = "reserved-1"

    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["m000", "m001", None, None]


def test_off_canvas_and_invisible_members_are_not_placed():
    crowd = members(4)
    crowd[0].position = "off-canvas"
    crowd[2].visible = False

    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["m001", "m003", None, None]


def test_the_floor_holder_goes_into_the_floor_slot():
    crowd = members(6)

    layers = compute_layers("5up", crowd, canvas_w=W, canvas_h=H, floor_member_id="m004")

    assert layers[0].floor and layers[0].member_id == "m004"
    assert [layer.member_id for layer in layers[1:]] == ["m000", "m001", "m002", "m003", "m005"]
    assert (layers[0].width, layers[0].height) == (853, 480)


def test_a_floor_holder_with_an_explicit_position_stays_there():
    crowd = members(3)
    crowd[2].position = "standard-3"

    layers = compute_layers("5up", crowd, canvas_w=W, canvas_h=H, floor_member_id="m002")

    assert [layer.member_id for layer in layers[:3]] == ["m000", "m001", "m002"]


def test_an_absent_floor_holder_changes_nothing():
    layers = compute_layers("5up", members(2), canvas_w=W, canvas_h=H, floor_member_id="gone")

    assert [layer.member_id for layer in layers[:2]] == ["m000", "m001"]


def test_a_screen_share_takes_the_screen_reservation():
    crowd = members(3)
    screen = LayoutMember(id="s1", name="Screen of Member 1", kind="screen", join_order=10)

    layers = compute_layers("screen-share", [*crowd, screen], canvas_w=W, canvas_h=H)

    assert layers[0].member_id == "s1" and layers[0].reservation == "screen"
    assert (layers[0].width, layers[0].height) == (1024, 576)
    assert [layer.member_id for layer in layers[1:4]] == ["m000", "m001", "m002"]


def test_a_screen_share_in_a_layout_without_a_screen_slot_is_placed_like_a_member():
    screen = LayoutMember(id="s1", name="Screen", kind="screen", join_order=-1)

    layers = compute_layers("2x2", [screen, *members(1)], canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["s1", "m000", None, None]


def test_only_screen_shares_use_the_screen_slot():
    layers = compute_layers("screen-share", members(2), canvas_w=W, canvas_h=H)

    assert layers[0].member_id is None and not layers[0].visible


def test_hide_video_muted_leaves_video_muted_members_out():
    crowd = members(3)
    crowd[1].video_muted = True

    shown = compute_layers("grid-responsive", crowd, canvas_w=W, canvas_h=H)
    hidden = compute_layers("grid-responsive", crowd, canvas_w=W, canvas_h=H, hide_video_muted=True)

    assert [layer.member_id for layer in shown] == ["m000", "m001", "m002"]
    assert [layer.member_id for layer in hidden] == ["m000", "m002"]


def test_members_beyond_the_slots_are_not_placed():
    layers = compute_layers("2x2", members(7), canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers] == ["m000", "m001", "m002", "m003"]


def test_a_playback_layer_is_reported_as_playing_a_file():
    playback = LayoutMember(id="p1", name="intro.mp4", kind="playback", join_order=5)

    layers = compute_layers("2x1", [*members(1), playback], canvas_w=W, canvas_h=H)

    assert [(layer.member_id, layer.playing_file) for layer in layers] == [("m000", False), ("p1", True)]


def test_placement_does_not_depend_on_the_input_order():
    crowd = members(9)
    crowd[4].position = "standard-1"
    crowd[7].position = "off-canvas"
    shuffled = crowd[:]
    random.Random(4).shuffle(shuffled)

    assert compute_layers("4x4", crowd, canvas_w=W, canvas_h=H) == compute_layers(
        "4x4", shuffled, canvas_w=W, canvas_h=H
    )


def test_equal_join_orders_are_broken_by_member_id():
    crowd = [LayoutMember(id=i, name=i) for i in ("c", "a", "b")]

    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)

    assert [layer.member_id for layer in layers[:3]] == ["a", "b", "c"]


CUSTOM = {
    "pip": {
        "slots": [
            {
                "x": 0,
                "y": 0,
                "width": 360,
                "height": 360,
                "z_index": 0,
                "reservation": None,
                "floor": True,
                "zoom": False,
            },
            {
                "x": 270,
                "y": 270,
                "width": 90,
                "height": 90,
                "z_index": 1,
                "reservation": "presenter",
                "floor": False,
                "zoom": True,
            },
        ]
    },
    "tall-pair": {
        "slots": [
            {"x": 0, "y": 0, "width": 180, "height": 360, "zoom": True},
            {"x": 180, "y": 0, "width": 180, "height": 360, "zoom": True},
        ]
    },
    "pip-or-grid": {"group": ["pip", "3x3"]},
    "2x2": {"slots": [{"x": 0, "y": 0, "width": 360, "height": 360}]},
}


def test_a_custom_layout_uses_its_own_slots_reservations_and_zoom():
    crowd = members(2)
    crowd[1].position = "reserved-1"

    layers = compute_layers("pip", crowd, canvas_w=W, canvas_h=H, custom=CUSTOM)

    assert [rect(layer) for layer in layers] == [(0, 0, 1280, 720), (960, 540, 320, 180)]
    assert [layer.member_id for layer in layers] == ["m000", "m001"]
    assert [(layer.z_index, layer.reservation, layer.zoom) for layer in layers] == [
        (0, None, False),
        (1, "presenter", True),
    ]
    assert layers[1].to_event(W, H)["position"] == "reserved-1"


def test_a_custom_slot_height_differs_from_its_width():
    layers = compute_layers("tall-pair", members(2), canvas_w=W, canvas_h=H, custom=CUSTOM)

    assert [rect(layer) for layer in layers] == [(0, 0, 640, 720), (640, 0, 640, 720)]


def test_a_custom_group_can_name_built_in_layouts():
    assert resolve_layout("pip-or-grid", member_count=1, custom=CUSTOM)[0] == "pip"
    assert resolve_layout("pip-or-grid", member_count=2, custom=CUSTOM)[0] == "pip"
    assert resolve_layout("pip-or-grid", member_count=3, custom=CUSTOM)[0] == "3x3"


def test_a_custom_layout_shadows_a_built_in_of_the_same_name():
    assert len(compute_layers("2x2", members(2), canvas_w=W, canvas_h=H, custom=CUSTOM)) == 1
    assert len(compute_layers("2x2", members(2), canvas_w=W, canvas_h=H)) == 4


def test_an_unknown_layout_is_an_error():
    with pytest.raises(UnknownLayout):
        compute_layers("7x7", members(1), canvas_w=W, canvas_h=H)
    with pytest.raises(UnknownLayout):
        resolve_layout("broken", member_count=1, custom={"broken": {"group": ["nope"]}})
    with pytest.raises(UnknownLayout):
        resolve_layout("nested", member_count=1, custom={"nested": {"group": ["grid-responsive"]}})


def test_a_slot_running_past_the_canvas_edge_is_clipped():
    custom = {"wide": {"slots": [{"x": 300, "y": 300, "width": 120, "height": 120}]}}

    layer = compute_layers("wide", members(1), canvas_w=W, canvas_h=H, custom=custom)[0]

    assert (layer.x + layer.width, layer.y + layer.height) == (W, H)


@pytest.mark.parametrize(("quality", "size"), [("360p", (640, 360)), ("720p", (1280, 720)), ("1080p", (1920, 1080))])
def test_canvas_size_follows_the_room_quality(quality, size):
    assert canvas_size(quality) == size


def test_an_unknown_quality_is_rejected():
    with pytest.raises(ValueError):
        canvas_size("4k")


positions = st.sampled_from(
    ["auto", "auto", "auto", "off-canvas", "standard-1", "standard-3", "reserved-1", "reserved-2"]
)
member_strategy = st.builds(
    LayoutMember,
    id=st.text("abcdef", min_size=1, max_size=4),
    name=st.just("x"),
    position=positions,
    kind=st.sampled_from(["member", "member", "screen", "playback"]),
    video_muted=st.booleans(),
    visible=st.booleans(),
    join_order=st.integers(0, 20),
)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(CONCRETE + GROUPS),
    crowd=st.lists(member_strategy, max_size=30, unique_by=lambda m: m.id),
    hide=st.booleans(),
    floor=st.sampled_from([None, "a", "b", "ab"]),
)
def test_any_room_places_each_eligible_member_at_most_once(name, crowd, hide, floor):
    layers = compute_layers(name, crowd, canvas_w=W, canvas_h=H, floor_member_id=floor, hide_video_muted=hide)

    placed = [layer.member_id for layer in layers if layer.member_id]
    assert len(placed) == len(set(placed))
    by_id = {m.id: m for m in crowd}
    for member_id in placed:
        m = by_id[member_id]
        assert m.visible and m.position != "off-canvas" and not (hide and m.video_muted)
    eligible = [m for m in crowd if m.visible and m.position != "off-canvas" and not (hide and m.video_muted)]
    free_standard = [layer for layer in layers if layer.member_id is None and layer.reservation is None]
    assert not (free_standard and len(placed) < len(eligible))


def test_invalid_custom_slots_are_skipped_like_freeswitch_does():
    custom = {
        "messy": {
            "slots": [
                {"x": 0, "y": 0, "width": 180},
                {"x": -10, "y": 0, "width": 90},
                {"y": 0, "width": 90},
                {"x": "left", "y": 0, "width": 90},
                {"x": 180, "y": 0, "width": 0},
                {"x": 400, "y": 0, "width": 90},
                {"x": 180, "y": 180, "width": 180},
            ]
        }
    }

    layers = compute_layers("messy", members(3), canvas_w=W, canvas_h=H, custom=custom)

    assert [rect(layer) for layer in layers] == [(0, 0, 640, 360), (640, 360, 640, 360)]
    assert [layer.member_id for layer in layers] == ["m000", "m001"]
