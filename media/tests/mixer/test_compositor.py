"""The compositor, checked on decoded pixels: colours inside the announced rects, fit, cards, captions, borders."""

from __future__ import annotations

import av
import numpy as np
import pytest

from media.mixer.captions import CAPTION_BG, card_background
from media.mixer.compositor import BORDER_COLOR, Compositor, Tile
from media.mixer.layouts import LayoutMember, compute_layers

W, H = 1280, 720
COLOURS = [
    (200, 30, 30),
    (30, 180, 40),
    (40, 60, 210),
    (220, 200, 40),
    (200, 40, 200),
    (40, 200, 200),
    (250, 140, 20),
    (120, 120, 250),
    (240, 240, 240),
]
TOLERANCE = 8


def solid(rgb: tuple[int, int, int], width: int = 640, height: int = 360, fmt: str = "yuv420p") -> av.VideoFrame:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=fmt)


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(int)


def close(pixel, rgb, tolerance: int = TOLERANCE) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(rgb, int)) <= tolerance))


def members(n: int) -> list[LayoutMember]:
    return [LayoutMember(id=f"m{i}", name=f"Member {i}", join_order=i) for i in range(n)]


def interior(layer, margin: float = 0.2):
    """Pixel rows/cols well inside a layer, above the caption strip and away from the border."""
    x0 = layer.x + int(layer.width * margin)
    x1 = layer.x + int(layer.width * (1 - margin))
    y0 = layer.y + int(layer.height * margin)
    y1 = layer.y + int(layer.height * 0.6)
    return slice(y0, y1), slice(x0, x1)


@pytest.mark.parametrize(("layout", "count"), [("2x2", 4), ("3x3", 9), ("5up", 6), ("2x1", 2), ("4x4", 9), ("1x1", 1)])
def test_each_member_colour_lands_inside_its_announced_rect(layout, count):
    crowd = members(count)
    layers = compute_layers(layout, crowd, canvas_w=W, canvas_h=H)
    tiles = {m.id: Tile(solid(COLOURS[i]), m.name) for i, m in enumerate(crowd)}

    picture = rgb_of(Compositor(W, H).compose(layers, tiles))

    for layer in layers:
        rows, cols = interior(layer)
        region = picture[rows, cols].reshape(-1, 3)
        if layer.member_id is None:
            assert close(region.min(0), (0x33, 0x33, 0x33)) and close(region.max(0), (0x33, 0x33, 0x33))
            continue
        colour = COLOURS[int(layer.member_id[1:])]
        assert close(region.min(0), colour) and close(region.max(0), colour), (layer, region.min(0), region.max(0))


def test_the_output_is_a_yuv420p_frame_of_the_canvas_size():
    frame = Compositor(640, 360).compose([], {})

    assert (frame.width, frame.height, frame.format.name) == (640, 360, "yuv420p")
    assert close(rgb_of(frame)[180, 320], (0x33, 0x33, 0x33))


def test_the_background_colour_can_be_chosen():
    frame = Compositor(320, 180, background=(10, 20, 200)).compose([], {})

    assert close(rgb_of(frame)[90, 160], (10, 20, 200))


def test_every_call_returns_a_new_frame_object():
    crowd = members(2)
    layers = compute_layers("2x1", crowd, canvas_w=W, canvas_h=H)
    tiles = {m.id: Tile(solid(COLOURS[i]), m.name) for i, m in enumerate(crowd)}
    compositor = Compositor(W, H)

    first = compositor.compose(layers, tiles)
    second = compositor.compose(layers, tiles)
    np.frombuffer(first.planes[0], np.uint8)[:] = 0
    third = compositor.compose(layers, tiles)

    assert first is not second and second is not third
    assert np.array_equal(second.to_ndarray(), third.to_ndarray())
    assert not np.array_equal(first.to_ndarray(), third.to_ndarray())


def test_a_new_decoded_frame_replaces_the_cached_one():
    crowd = members(1)
    layers = compute_layers("1x1", crowd, canvas_w=W, canvas_h=H)
    compositor = Compositor(W, H)

    compositor.compose(layers, {"m0": Tile(solid(COLOURS[0]), "A")})
    picture = rgb_of(compositor.compose(layers, {"m0": Tile(solid(COLOURS[2]), "A")}))

    assert close(picture[300, 640], COLOURS[2])


def test_letterbox_bars_are_black_and_the_picture_keeps_its_aspect():
    crowd = members(4)
    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)
    tiles = {m.id: Tile(solid(COLOURS[0], 480, 360), "") for m in crowd}

    picture = rgb_of(Compositor(W, H).compose(layers, tiles))

    # A 4:3 picture in a 640x360 cell: 480x360 centred, 80 px black bars left and right.
    assert close(picture[180, 40], (0, 0, 0))
    assert close(picture[180, 600], (0, 0, 0))
    assert close(picture[180, 90], COLOURS[0])
    assert close(picture[180, 550], COLOURS[0])
    assert close(picture[540, 640 + 40], (0, 0, 0))


def test_a_tall_picture_gets_bars_above_and_below():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)
    striped = np.zeros((720, 640, 3), np.uint8)
    striped[:] = COLOURS[1]

    picture = rgb_of(Compositor(W, H).compose(layers, {"m0": Tile(striped, "")}))

    # 640x720 into 1280x720: 360x720 centred.
    assert close(picture[360, 100], (0, 0, 0))
    assert close(picture[360, 640], COLOURS[1])
    assert close(picture[360, 1180], (0, 0, 0))


def wide_stripes() -> np.ndarray:
    """1280x360 (32:9): green left quarter, red middle half, blue right quarter."""
    image = np.zeros((360, 1280, 3), np.uint8)
    image[:, :320] = (30, 180, 40)
    image[:, 320:960] = (200, 30, 30)
    image[:, 960:] = (40, 60, 210)
    return image


def test_zoom_crops_the_centre_to_fill_the_slot():
    custom = {"zoomed": {"slots": [{"x": 0, "y": 0, "width": 360, "height": 360, "zoom": True}]}}
    layers = compute_layers("zoomed", members(1), canvas_w=W, canvas_h=H, custom=custom)

    picture = rgb_of(Compositor(W, H).compose(layers, {"m0": Tile(wide_stripes(), "")}))

    for y in (10, 360, 600):
        for x in (10, 640, 1270):
            assert close(picture[y, x], (200, 30, 30)), (x, y, picture[y, x])


def test_without_zoom_the_same_picture_is_letterboxed_whole():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)

    picture = rgb_of(Compositor(W, H).compose(layers, {"m0": Tile(wide_stripes(), "")}))

    assert close(picture[90, 640], (0, 0, 0))
    assert close(picture[360, 100], (30, 180, 40))
    assert close(picture[360, 640], (200, 30, 30))
    assert close(picture[360, 1180], (40, 60, 210))
    assert close(picture[630, 640], (0, 0, 0))


def test_a_video_muted_member_shows_an_initials_card_not_the_video():
    crowd = members(2)
    layers = compute_layers("2x1", crowd, canvas_w=W, canvas_h=H)
    red = solid(COLOURS[0])
    tiles = {"m0": Tile(red, "Ada Lovelace", video_muted=True), "m1": Tile(red, "Bob")}

    picture = rgb_of(Compositor(W, H).compose(layers, tiles))

    muted = picture[layers[0].y : layers[0].y + layers[0].height, layers[0].x : layers[0].x + layers[0].width]
    reds = np.all(np.abs(muted - np.array(COLOURS[0])) <= TOLERANCE, axis=-1)
    assert not reds.any()
    disc_edge = (layers[0].x + 320 - 80, layers[0].y + 180)
    assert close(picture[disc_edge[1], disc_edge[0]], card_background("Ada Lovelace"))
    assert close(picture[layers[1].y + 100, layers[1].x + 320], COLOURS[0])


def test_a_member_without_video_shows_a_card_and_gets_video_once_it_arrives():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)
    compositor = Compositor(W, H)

    card = rgb_of(compositor.compose(layers, {"m0": Tile(None, "Carol")}))
    video = rgb_of(compositor.compose(layers, {"m0": Tile(solid(COLOURS[3]), "Carol")}))

    assert close(card[360, 640 - 150], card_background("Carol"))
    assert close(video[360, 640 - 150], COLOURS[3])


def test_unmuting_brings_back_the_video():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)
    compositor = Compositor(W, H)
    frame = solid(COLOURS[4])

    compositor.compose(layers, {"m0": Tile(frame, "Dan", video_muted=True)})
    picture = rgb_of(compositor.compose(layers, {"m0": Tile(frame, "Dan")}))

    assert close(picture[200, 200], COLOURS[4])


def test_each_occupied_tile_has_a_name_caption_at_its_bottom_left():
    crowd = members(4)
    layers = compute_layers("2x2", crowd, canvas_w=W, canvas_h=H)
    tiles = {m.id: Tile(solid((255, 255, 255)), m.name) for m in crowd}

    picture = rgb_of(Compositor(W, H).compose(layers, tiles))

    for layer in layers:
        bottom = layer.y + layer.height - 2
        assert close(picture[bottom, layer.x + 2], CAPTION_BG), layer
        assert close(picture[bottom, layer.x + layer.width - 4], (255, 255, 255)), layer
        strip = picture[layer.y + layer.height - 40 : layer.y + layer.height, layer.x : layer.x + 200]
        text = np.all(np.abs(strip - np.array((0xCC, 0xCC, 0xCC))) <= 24, axis=-1)
        assert text.sum() > 20


def test_the_talking_member_gets_a_green_border():
    crowd = members(2)
    layers = compute_layers("2x1", crowd, canvas_w=W, canvas_h=H)
    tiles = {
        "m0": Tile(solid(COLOURS[2]), "", talking=True),
        "m1": Tile(solid(COLOURS[2]), "", talking=False),
    }
    compositor = Compositor(W, H)

    picture = rgb_of(compositor.compose(layers, tiles))

    talking, quiet = layers
    for x, y in [
        (talking.x + 1, talking.y + 200),
        (talking.x + 300, talking.y + 1),
        (talking.x + 637, talking.y + 200),
    ]:
        assert close(picture[y, x], BORDER_COLOR, 12), (x, y, picture[y, x])
    assert close(picture[talking.y + 200, talking.x + 8], COLOURS[2])
    assert close(picture[quiet.y + 1, quiet.x + 300], COLOURS[2])

    tiles["m0"].talking = False
    picture = rgb_of(compositor.compose(layers, tiles))
    assert close(picture[talking.y + 200, talking.x + 1], COLOURS[2])


def test_changing_the_layout_clears_what_was_drawn_before():
    crowd = members(4)
    tiles = {m.id: Tile(solid(COLOURS[i]), "") for i, m in enumerate(crowd)}
    compositor = Compositor(W, H)

    compositor.compose(compute_layers("2x2", crowd, canvas_w=W, canvas_h=H), tiles)
    picture = rgb_of(compositor.compose(compute_layers("2x1", crowd[:2], canvas_w=W, canvas_h=H), tiles))

    assert close(picture[90, 320], (0x33, 0x33, 0x33))
    assert close(picture[650, 960], (0x33, 0x33, 0x33))
    assert close(picture[360, 320], COLOURS[0])


def test_a_higher_layer_stays_on_top_when_the_one_below_changes():
    custom = {
        "pip": {
            "slots": [
                {"x": 0, "y": 0, "width": 360, "z_index": 0},
                {"x": 240, "y": 240, "width": 120, "z_index": 1},
            ]
        }
    }
    layers = compute_layers("pip", members(2), canvas_w=W, canvas_h=H, custom=custom)
    compositor = Compositor(W, H)

    compositor.compose(layers, {"m0": Tile(solid(COLOURS[0]), ""), "m1": Tile(solid(COLOURS[1]), "")})
    picture = rgb_of(compositor.compose(layers, {"m0": Tile(solid(COLOURS[2]), ""), "m1": Tile(solid(COLOURS[1]), "")}))

    assert close(picture[600, 1100], COLOURS[1])
    assert close(picture[200, 200], COLOURS[2])


@pytest.mark.parametrize(
    "make",
    [
        lambda: solid(COLOURS[5], 641, 361),
        lambda: solid(COLOURS[5], 320, 240, fmt="rgb24"),
        lambda: solid(COLOURS[5], 1920, 1080, fmt="nv12"),
        lambda: np.full((240, 427, 3), COLOURS[5], np.uint8),
    ],
    ids=["odd-yuv420p", "rgb24-frame", "nv12-1080p", "odd-ndarray"],
)
def test_any_input_size_and_pixel_format_is_drawn(make):
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)

    picture = rgb_of(Compositor(W, H).compose(layers, {"m0": Tile(make(), "")}))

    assert close(picture[360, 640], COLOURS[5])


def test_a_layer_whose_member_has_no_tile_is_drawn_as_a_card():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)

    picture = rgb_of(Compositor(W, H).compose(layers, {}))

    assert close(picture[360, 640 - 150], card_background(""))


@pytest.mark.parametrize(("quality_w", "quality_h"), [(640, 360), (1920, 1080)])
def test_other_canvas_sizes_keep_colours_in_place(quality_w, quality_h):
    crowd = members(5)
    layers = compute_layers("3x3", crowd, canvas_w=quality_w, canvas_h=quality_h)
    tiles = {m.id: Tile(solid(COLOURS[i]), m.name) for i, m in enumerate(crowd)}

    picture = rgb_of(Compositor(quality_w, quality_h).compose(layers, tiles))

    for layer in layers[:5]:
        rows, cols = interior(layer, 0.3)
        assert close(picture[rows, cols].reshape(-1, 3).mean(0), COLOURS[int(layer.member_id[1:])])


def test_an_odd_canvas_size_is_rejected():
    with pytest.raises(ValueError):
        Compositor(641, 360)


def test_an_ndarray_that_is_not_rgb_is_rejected():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)

    with pytest.raises(ValueError):
        Compositor(W, H).compose(layers, {"m0": Tile(np.zeros((10, 10), np.uint8), "")})


def test_an_unchanged_tile_keeps_its_pixels_while_another_one_changes():
    crowd = members(2)
    layers = compute_layers("2x1", crowd, canvas_w=W, canvas_h=H)
    still = solid(COLOURS[1])
    compositor = Compositor(W, H)

    compositor.compose(layers, {"m0": Tile(still, "A"), "m1": Tile(solid(COLOURS[0]), "B")})
    picture = rgb_of(compositor.compose(layers, {"m0": Tile(still, "A"), "m1": Tile(solid(COLOURS[3]), "B")}))

    assert close(picture[300, 320], COLOURS[1])
    assert close(picture[300, 960], COLOURS[3])
    assert close(picture[90, 320], (0x33, 0x33, 0x33))


def test_an_empty_slot_above_a_member_does_not_hide_it():
    custom = {
        "pip": {
            "slots": [
                {"x": 0, "y": 0, "width": 360, "z_index": 0},
                {"x": 240, "y": 240, "width": 120, "z_index": 1, "reservation": "presenter"},
            ]
        }
    }
    layers = compute_layers("pip", members(1), canvas_w=W, canvas_h=H, custom=custom)
    compositor = Compositor(W, H)

    compositor.compose(layers, {"m0": Tile(solid(COLOURS[0]), "")})
    picture = rgb_of(compositor.compose(layers, {"m0": Tile(solid(COLOURS[2]), "")}))

    assert close(picture[600, 1100], COLOURS[2])


def test_an_input_frame_object_is_converted_and_drawn_once():
    layers = compute_layers("1x1", members(1), canvas_w=W, canvas_h=H)
    image = np.full((360, 640, 3), COLOURS[0], np.uint8)
    compositor = Compositor(W, H)

    compositor.compose(layers, {"m0": Tile(image, "")})
    image[:] = COLOURS[2]  # the same object: the compositor keeps what it drew from it
    same = rgb_of(compositor.compose(layers, {"m0": Tile(image, "")}))
    fresh = rgb_of(compositor.compose(layers, {"m0": Tile(image.copy(), "")}))

    assert close(same[360, 640], COLOURS[0])
    assert close(fresh[360, 640], COLOURS[2])
