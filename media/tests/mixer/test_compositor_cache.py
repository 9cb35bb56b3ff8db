"""The compositor's reuse of the previous canvas: a new frame, a moved rect, a mute, a layout change each show up in
the very next canvas, and whatever did not change is copied rather than scaled again."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from media.mixer import compositor as compositor_module
from media.mixer.captions import card_background
from media.mixer.compositor import Compositor, Tile, _uncovered
from media.mixer.layouts import LayoutMember, compute_layers

W, H = 1280, 720
RED, GREEN, BLUE, YELLOW = (200, 30, 30), (30, 180, 40), (40, 60, 210), (220, 200, 40)
GREY = (0x33, 0x33, 0x33)


def solid(rgb, width: int = 640, height: int = 360) -> av.VideoFrame:
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def rgb_at(frame: av.VideoFrame, x: int, y: int) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")[y, x].astype(int)


def close(pixel, rgb, tolerance: int = 8) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(rgb, int)) <= tolerance))


def crowd(n: int) -> list[LayoutMember]:
    return [LayoutMember(id=f"m{i}", name=f"Member {i}", join_order=i) for i in range(n)]


def centre(layer) -> tuple[int, int]:
    return layer.x + layer.width // 2, layer.y + layer.height // 3


@pytest.fixture
def resizes(monkeypatch):
    """Counts ``cv2.resize`` calls made by the compositor (the real function still runs)."""
    calls = []
    real = cv2.resize

    def counting(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("dsize"))
        return real(*args, **kwargs)

    monkeypatch.setattr(compositor_module.cv2, "resize", counting)
    return calls


def test_a_new_frame_of_one_member_shows_in_the_next_canvas_and_only_that_tile_is_scaled(resizes):
    members = crowd(4)
    layers = compute_layers("2x2", members, canvas_w=W, canvas_h=H)
    frames = {"m0": solid(RED, 320, 180), "m1": solid(GREEN, 320, 180), "m2": solid(BLUE, 320, 180)}
    compositor = Compositor(W, H)
    compositor.compose(layers, {m: Tile(f, m) for m, f in frames.items()})
    resizes.clear()

    frames["m1"] = solid(YELLOW, 320, 180)
    canvas = compositor.compose(layers, {m: Tile(f, m) for m, f in frames.items()})

    assert close(rgb_at(canvas, *centre(layers[1])), YELLOW)
    assert close(rgb_at(canvas, *centre(layers[0])), RED)
    assert close(rgb_at(canvas, *centre(layers[2])), BLUE)
    assert len(resizes) == 3  # Y, U and V of the one tile that changed


def test_nothing_changed_gives_the_same_picture_without_scaling(resizes):
    members = crowd(3)
    layers = compute_layers("2x2", members, canvas_w=W, canvas_h=H)
    tiles = {m.id: Tile(solid(c, 320, 180), m.name) for m, c in zip(members, (RED, GREEN, BLUE), strict=True)}
    compositor = Compositor(W, H)
    first = compositor.compose(layers, tiles)
    resizes.clear()

    second = compositor.compose(layers, tiles)

    assert second is not first
    assert np.array_equal(first.to_ndarray(), second.to_ndarray())
    assert resizes == []


def test_a_moved_rect_redraws_the_tile_at_its_new_place_and_clears_the_old_one():
    members = crowd(1)
    custom = {
        "left": {"slots": [{"x": 0, "y": 0, "width": 180, "height": 180}]},
        "right": {"slots": [{"x": 180, "y": 180, "width": 180, "height": 180}]},
    }
    left = compute_layers("left", members, canvas_w=W, canvas_h=H, custom=custom)
    right = compute_layers("right", members, canvas_w=W, canvas_h=H, custom=custom)
    tile = {"m0": Tile(solid(GREEN), "")}
    compositor = Compositor(W, H)
    compositor.compose(left, tile)

    canvas = compositor.compose(right, tile)

    assert close(rgb_at(canvas, *centre(right[0])), GREEN)
    assert close(rgb_at(canvas, *centre(left[0])), GREY)


def test_a_mute_shows_the_card_in_the_next_canvas_and_an_unmute_the_video_again():
    members = crowd(2)
    layers = compute_layers("2x1", members, canvas_w=W, canvas_h=H)
    red, blue = solid(RED), solid(BLUE)
    compositor = Compositor(W, H)
    compositor.compose(layers, {"m0": Tile(red, "Ada"), "m1": Tile(blue, "Bob")})

    muted = compositor.compose(layers, {"m0": Tile(red, "Ada", video_muted=True), "m1": Tile(blue, "Bob")})
    back = compositor.compose(layers, {"m0": Tile(red, "Ada"), "m1": Tile(blue, "Bob")})

    x, y = layers[0].x + layers[0].width // 2 - 80, layers[0].y + layers[0].height // 2
    assert close(rgb_at(muted, x, y), card_background("Ada"))
    assert close(rgb_at(muted, *centre(layers[1])), BLUE)
    assert close(rgb_at(back, x, y), RED)


def test_after_a_join_the_tiles_that_kept_their_rect_are_copied_not_rescaled(resizes):
    custom = {
        "row": {
            "slots": [
                {"x": 0, "y": 0, "width": 120, "height": 120},
                {"x": 120, "y": 0, "width": 120, "height": 120},
                {"x": 240, "y": 0, "width": 120, "height": 120},
            ]
        }
    }
    two, three = crowd(2), crowd(3)
    before = compute_layers("row", two, canvas_w=W, canvas_h=H, custom=custom)
    after = compute_layers("row", three, canvas_w=W, canvas_h=H, custom=custom)
    tiles = {"m0": Tile(solid(RED), "A"), "m1": Tile(solid(GREEN), "B")}
    compositor = Compositor(W, H)
    compositor.compose(before, tiles)
    resizes.clear()

    tiles["m2"] = Tile(solid(BLUE), "C")
    canvas = compositor.compose(after, tiles)

    assert [
        close(rgb_at(canvas, *centre(layer)), rgb) for layer, rgb in zip(after, (RED, GREEN, BLUE), strict=True)
    ] == [True] * 3
    assert len(resizes) == 3  # only the newcomer's planes


def test_a_tile_that_was_covered_before_the_layout_change_is_redrawn_whole():
    big, small = {"x": 0, "y": 0, "width": 360, "z_index": 0}, {"x": 240, "y": 240, "width": 120, "z_index": 1}
    custom = {"pip": {"slots": [big, small]}, "solo": {"slots": [big]}}
    tiles = {"m0": Tile(solid(RED), ""), "m1": Tile(solid(GREEN), "")}
    compositor = Compositor(W, H)
    compositor.compose(compute_layers("pip", crowd(2), canvas_w=W, canvas_h=H, custom=custom), tiles)

    canvas = compositor.compose(compute_layers("solo", crowd(1), canvas_w=W, canvas_h=H, custom=custom), tiles)

    assert close(rgb_at(canvas, 1100, 600), RED)


def test_opencv_runs_single_threaded_by_default_and_the_setting_can_be_left_alone():
    cv2.setNumThreads(2)
    Compositor(64, 36, cv_threads=None)
    assert cv2.getNumThreads() == 2

    Compositor(64, 36)

    assert cv2.getNumThreads() == 1


@pytest.mark.parametrize(
    ("rects", "expected_area"),
    [
        ([], 1280 * 720),
        ([(0, 0, 1280, 720)], 0),
        ([(0, 0, 426, 240), (426, 0, 852, 240)], 1280 * 720 - 852 * 240),
        ([(0, 0, 640, 360), (320, 180, 960, 540)], 1280 * 720 - 2 * 640 * 360 + 320 * 180),
    ],
)
def test_the_background_is_exactly_what_no_layer_covers(rects, expected_area):
    bare = _uncovered(1280, 720, rects)

    mask = np.zeros((720, 1280), bool)
    for x0, y0, x1, y1 in bare:
        assert not mask[y0:y1, x0:x1].any(), "background rects overlap"
        mask[y0:y1, x0:x1] = True
    for x0, y0, x1, y1 in rects:
        assert not mask[y0:y1, x0:x1].any(), "background over a layer"
    assert int(mask.sum()) == expected_area


def luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]


def textured(width: int, height: int, seed: int) -> av.VideoFrame:
    """Noise: any rescale, even by a pixel, changes its values."""
    image = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def test_cells_have_even_edges_so_a_3x3_column_can_be_narrower_than_its_layer():
    layers = compute_layers("3x3", crowd(9), canvas_w=W, canvas_h=H)
    assert [compositor_module.cell_size(layer) for layer in layers[:3]] == [(426, 240), (426, 240), (424, 240)]


def test_pictures_a_few_px_off_their_drawn_size_are_copied_one_to_one_not_rescaled(resizes):
    # What members following ``webrtc.sender_constraints`` send, each rounding its own way: 2 px narrower than its
    # cell, or the layer's 426 px in a 424 px cell (cropped by a pixel each side).
    members = crowd(9)
    layers = compute_layers("3x3", members, canvas_w=W, canvas_h=H)
    sizes = {}
    for i, layer in enumerate(layers):
        cell_w, cell_h = compositor_module.cell_size(layer)
        sizes[layer.member_id] = (cell_w - 2, cell_h - 2) if i % 2 else (layer.width, layer.height)
    frames = {m.id: textured(*sizes[m.id], seed=i) for i, m in enumerate(members)}
    canvas = Compositor(W, H).compose(layers, {m.id: Tile(frames[m.id], m.name) for m in members})
    assert resizes == []
    y = luma(canvas)
    for layer in layers:
        x0, y0, x1, y1 = compositor_module._even_rect(layer)
        source = luma(frames[layer.member_id])
        sw, sh = sizes[layer.member_id]
        w, h = min(sw, x1 - x0) & ~1, min(sh, y1 - y0) & ~1
        sx, sy = ((sw - w) // 4) * 2, ((sh - h) // 4) * 2
        ox, oy = ((x1 - x0 - w) // 4) * 2, ((y1 - y0 - h) // 4) * 2
        rows = slice(0, h // 2)  # above the caption strip
        drawn = y[y0 + oy : y0 + oy + h, x0 + ox : x0 + ox + w][rows]
        assert np.array_equal(drawn, source[sy : sy + h, sx : sx + w][rows]), (layer.member_id, sizes[layer.member_id])


def test_a_picture_well_off_its_drawn_size_is_still_rescaled(resizes):
    members = crowd(9)
    layers = compute_layers("3x3", members, canvas_w=W, canvas_h=H)
    Compositor(W, H).compose(layers, {m.id: Tile(textured(640, 360, seed=1), m.name) for m in members})
    assert len(resizes) == 3 * 9  # Y, U and V of every tile
