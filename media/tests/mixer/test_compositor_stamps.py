"""The frame stamps of the latency benchmark (``bench/stamps.py``) survive what the room does to a member's video:
H.264 at the bots' bitrate, the compositor's down-scale into a 3x3 or 4x4 tile, and the canvas encode."""

from __future__ import annotations

import fractions
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from media.mixer.compositor import Compositor, Tile, _even_rect, _letterbox
from media.mixer.layouts import LayoutMember, compute_layers

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import stamps  # noqa: E402  (bench/stamps.py)

W, H = 1280, 720


def h264_round_trip(frames: list[av.VideoFrame], width: int, height: int, bitrate_bps: int) -> list[av.VideoFrame]:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 90000)
    encoder.framerate = fractions.Fraction(30, 1)  # rate control spreads the bitrate over 30 frames a second
    encoder.bit_rate = bitrate_bps
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    decoder = av.CodecContext.create("h264", "r")
    out = []
    for i, frame in enumerate(frames):
        frame.pts, frame.time_base = i * 3000, encoder.time_base
        for packet in encoder.encode(frame):
            out.extend(decoder.decode(packet))
    return out


def stamped(value: int, seed: int) -> av.VideoFrame:
    """Camera-like content (a gradient with some texture) carrying ``value``."""
    yy, xx = np.mgrid[0 : stamps.SOURCE_H, 0 : stamps.SOURCE_W]
    grey = 128 + 60 * np.sin(xx / (23.0 + seed)) * np.cos(yy / 31.0)
    image = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    stamps.draw_stamp(image, value)
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]


@pytest.mark.parametrize(("layout", "count"), [("3x3", 9), ("4x4", 16)])
def test_every_tile_stamp_reads_back_after_encode_composite_and_encode(layout, count):
    members = [LayoutMember(id=f"m{i}", name=f"Member {i}", join_order=i) for i in range(count)]
    layers = compute_layers(layout, members, canvas_w=W, canvas_h=H)
    values = [(37 * i + 5) % stamps.STAMP_PERIOD for i in range(count)]
    inputs = {
        f"m{i}": h264_round_trip([stamped(values[i], seed=i)] * 3, stamps.SOURCE_W, stamps.SOURCE_H, 600_000)[-1]
        for i in range(count)
    }
    canvas = Compositor(W, H).compose(layers, {m: Tile(f, m) for m, f in inputs.items()})
    received = h264_round_trip([canvas, canvas.reformat(format="yuv420p")], W, H, 1_800_000)[-1]

    read = {}
    for layer in layers:
        x0, y0, x1, y1 = _even_rect(layer)
        ox, oy, w, h = _letterbox(stamps.SOURCE_W, stamps.SOURCE_H, x1 - x0, y1 - y0)
        read[layer.member_id] = stamps.read_stamp(luma(received), (x0 + ox, y0 + oy, w, h))

    assert read == {f"m{i}": values[i] for i in range(count)}


def test_a_card_or_a_corrupted_stamp_reads_as_none():
    image = np.full((stamps.SOURCE_H, stamps.SOURCE_W, 3), 128, np.uint8)
    flat = luma(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    stamps.draw_stamp(image, 0b1011)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    flipped = luma(frame).copy()
    first_bit_x = stamps.STAMP_X + 2 * stamps.BLOCK_PX
    flipped[stamps.STAMP_Y : stamps.STAMP_Y + stamps.BLOCK_PX, first_bit_x : first_bit_x + stamps.BLOCK_PX] = 16
    whole = (0, 0, stamps.SOURCE_W, stamps.SOURCE_H)

    assert stamps.read_stamp(luma(frame), whole) == 0b1011
    assert stamps.read_stamp(flat, whole) is None
    assert stamps.read_stamp(flipped, whole) is None  # parity no longer matches


def test_latencies_match_each_sighting_with_the_latest_send_before_it():
    sent = {0: [(7, 10.000), (8, 10.033), (7, 18.533)], 1: [(3, 10.010)]}
    seen = [(10.050, 0, 7), (10.080, 0, 8), (10.090, 1, 3), (18.600, 0, 7), (11.0, 1, 9)]

    latencies, unmatched = stamps.latencies_ms(seen, sent)

    assert [round(x) for x in latencies] == [50, 47, 80, 67]
    assert unmatched == 1
