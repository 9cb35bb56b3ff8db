"""Compositor benchmark: Parley's compositor against FFmpeg's own filter graph, with and without the encoder.

For 4, 9 and 16 tiles (2x2, 3x3, 4x4 at 1280x720) fed with 640x360 decoded yuv420p frames (synthetic textured,
moving content, a new frame object per input every output frame, as from a decoder):

(a) composite: ``Compositor.compose`` vs an ``av.filter.Graph`` of ``buffer``×N → ``scale`` → ``xstack`` →
    (``pad``) → ``buffersink`` placing the same inputs at the same pixel rects;         goal ≥ 1.5×
(b) composite + encode: both feed their own libx264 (ultrafast, zerolatency, 1.5 Mb/s, threads=1);  goal ≥ 1.1×
(c) compositing time as a share of encoding time in Parley's pipeline;                   goal ≤ 15 %

Parley's compositor runs OpenCV on one thread (its default). Each row is Parley's compositor in one
interpolation mode (``default``: bilinear, box filter for exact integer
down-scales; ``nearest``: ``cv2.INTER_NEAREST``). Times are ms per output frame, median of interleaved runs:
process CPU time (all threads) first, wall-clock in brackets. Ratios are taken on CPU time, which is the cost
that limits rooms per core and is far less disturbed than wall time on a shared machine; wall ratios follow
in brackets.
``--tile-inputs``: every input is already at its tile's drawn size (426x240 in 3x3, 320x180 in 4x4), as members
honouring the media worker's ``webrtc.sender_constraints`` send it; both sides then place pictures without
scaling them (FFmpeg's ``scale`` passes a same-size frame through).
Run: ``.venv/bin/python bench/compositor.py [--quick] [--tile-inputs]`` (about 30 s on an idle box, ``--quick``
about 15 s).
"""

from __future__ import annotations

import argparse
import fractions
import os
import statistics
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.mixer.compositor import Compositor, Tile, drawn_size  # noqa: E402
from media.mixer.layouts import LayoutMember, compute_layers  # noqa: E402

OUT_W, OUT_H = 1280, 720
IN_W, IN_H = 640, 360
FPS = 30
CASES = [(4, "2x2"), (9, "3x3"), (16, "4x4")]
GOALS = {"composite": 1.5, "pipeline": 1.1, "share": 0.15}
# Parley's default (bilinear; box filter for exact integer down-scales) and the cheap nearest-neighbour option.
MODES = {"default": None, "nearest": cv2.INTER_NEAREST}


def textured_frames(count: int, seed: int) -> list[av.VideoFrame]:
    """``count`` camera-like 640x360 yuv420p frames: a textured gradient that pans, a moving disc, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : IN_H + 64, 0 : IN_W + 64].astype(np.float32)
    scene = np.stack(
        [
            128 + 100 * np.sin(xx / 37.0 + seed) * np.cos(yy / 53.0),
            128 + 90 * np.sin((xx + yy) / 71.0 + seed * 2),
            128 + 80 * np.cos(xx / 23.0 - yy / 41.0),
        ],
        axis=-1,
    )
    scene += rng.normal(0, 12, size=((IN_H + 64) // 4, (IN_W + 64) // 4, 3)).repeat(4, 0).repeat(4, 1)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    frames = []
    for i in range(count):
        dx = int(32 + 24 * np.sin(i / 9.0))
        dy = int(32 + 18 * np.cos(i / 13.0))
        image = scene[dy : dy + IN_H, dx : dx + IN_W].copy()
        cv2.circle(image, (int(IN_W / 2 + IN_W / 4 * np.sin(i / 7.0)), int(IN_H / 2)), IN_H // 6, (230, 190, 160), -1)
        image = np.clip(image + rng.normal(0, 4, size=image.shape), 0, 255).astype(np.uint8)
        frames.append(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    return frames


class FfmpegComposite:
    """The same composite with libavfilter: N buffers → scale to each layer's letterboxed size → xstack → pad."""

    def __init__(self, layers, templates: list[av.VideoFrame]) -> None:
        self.graph = graph = av.filter.Graph()
        self.sources = []
        positions = []
        stack = None
        n = len(layers)
        stack = graph.add(
            "xstack", f"inputs={n}:layout=" + "|".join(f"{lay.x}_{lay.y}" for lay in layers) + ":fill=black"
        )
        for i, layer in enumerate(layers):
            source = graph.add_buffer(template=templates[i])
            scale = graph.add("scale", f"{layer.width}:{layer.height}:flags=bilinear")
            source.link_to(scale)
            scale.link_to(stack, 0, i)
            self.sources.append(source)
            positions.append((layer.x, layer.y))
        right = max(lay.x + lay.width for lay in layers)
        bottom = max(lay.y + lay.height for lay in layers)
        last = stack
        if (right, bottom) != (OUT_W, OUT_H):
            last = graph.add("pad", f"{OUT_W}:{OUT_H}:0:0:0x333333")
            stack.link_to(last)
        self.sink = graph.add("buffersink")
        last.link_to(self.sink)
        graph.configure()
        self.pts = 0

    def compose(self, frames: list[av.VideoFrame]) -> av.VideoFrame:
        for source, frame in zip(self.sources, frames, strict=True):
            frame.pts = self.pts
            source.push(frame)
        self.pts += 1
        return self.sink.pull()


def make_encoder() -> av.VideoCodecContext:
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = OUT_W, OUT_H, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.bit_rate = 1_500_000
    encoder.thread_count = 1
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    encoder.open()
    return encoder


class Timer:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timer:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def run_case(n: int, layout: str, reps: int, runs: int, tile_inputs: bool = False) -> dict:
    """Median ms per frame ``(wall, cpu)`` of each stage for one tile count, pipelines interleaved run by run."""
    members = [LayoutMember(id=f"m{i}", name=f"Member {i}", join_order=i) for i in range(n)]
    layers = compute_layers(layout, members, canvas_w=OUT_W, canvas_h=OUT_H)
    if [layer.member_id for layer in layers] != [m.id for m in members]:
        raise RuntimeError(f"{layout}: layers are not in member order")
    streams = [textured_frames(30, seed) for seed in range(n)]
    if tile_inputs:
        sizes = [drawn_size(IN_W, IN_H, layer.width, layer.height, zoom=False) for layer in layers]
        streams = [
            [f.reformat(width=w, height=h) for f in frames] for frames, (w, h) in zip(streams, sizes, strict=True)
        ]
    for frames in streams:
        for frame in frames:
            frame.time_base = fractions.Fraction(1, FPS)
    compositors = {label: Compositor(OUT_W, OUT_H, interpolation=interp) for label, interp in MODES.items()}
    ffmpeg = FfmpegComposite(layers, [frames[0] for frames in streams])
    encoders = {label: make_encoder() for label in (*MODES, "ffmpeg")}
    tick = 0

    def composer(label: str):
        if label == "ffmpeg":
            return lambda: ffmpeg.compose([streams[i][tick % 30] for i in range(n)])
        compositor = compositors[label]
        return lambda: compositor.compose(
            layers, {m.id: Tile(streams[i][tick % 30], m.name) for i, m in enumerate(members)}
        )

    samples: dict[str, list[tuple[float, float]]] = {}
    for run in range(runs + 1):  # the first run warms caches and encoders up and is not counted
        for label in (*MODES, "ffmpeg"):
            make = composer(label)
            composite, encode = Timer(), Timer()
            for _ in range(reps):
                with composite:
                    frame = make()
                frame.pts = tick
                frame.time_base = fractions.Fraction(1, FPS)
                with encode:
                    encoders[label].encode(frame)
                tick += 1
            if run:
                samples.setdefault(label, []).append((composite.wall * 1000 / reps, composite.cpu * 1000 / reps))
                samples.setdefault(label + "+enc", []).append((encode.wall * 1000 / reps, encode.cpu * 1000 / reps))
    return {key: tuple(statistics.median(s[i] for s in values) for i in (0, 1)) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames per run")
    parser.add_argument("--tile-inputs", action="store_true", help="inputs at their tiles' drawn sizes")
    args = parser.parse_args()
    reps, runs = (20, 2) if args.quick else (30, 4)
    Compositor(2, 2)  # applies the compositor's OpenCV thread setting before it is printed
    print(
        f"PyAV {av.__version__}, libavfilter {'.'.join(map(str, av.library_versions['libavfilter']))}, "
        f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), load average {os.getloadavg()[0]:.1f}; "
        f"{reps} frames x {runs} runs, median ms per output frame: CPU [wall]; ratios on CPU time [wall]; "
        f"inputs {'at their tiles drawn sizes' if args.tile_inputs else f'{IN_W}x{IN_H}'}"
    )
    header = (
        f"{'tiles':>5} {'compositor':>10} | {'composite':>14} {'ffmpeg graph':>14} {'(a) x':>12} | "
        f"{'encode':>14} {'(b) x':>12} | {'(c) share':>9}"
    )
    print(header)
    print("-" * len(header))
    met = {mode: True for mode in MODES}
    for n, layout in CASES:
        r = run_case(n, layout, reps, runs, args.tile_inputs)
        ff, ff_enc = r["ffmpeg"], r["ffmpeg+enc"]
        for mode in MODES:
            own, enc = r[mode], r[mode + "+enc"]
            a = [ff[i] / own[i] for i in (1, 0)]
            b = [(ff[i] + ff_enc[i]) / (own[i] + enc[i]) for i in (1, 0)]
            share = own[1] / enc[1]
            print(
                f"{n:>5} {mode:>10} | {own[1]:5.2f} [{own[0]:5.2f}] {ff[1]:6.2f} [{ff[0]:5.2f}] {a[0]:5.2f} [{a[1]:4.2f}] | "
                f"{enc[1]:5.2f} [{enc[0]:5.2f}] {b[0]:5.2f} [{b[1]:4.2f}] | {100 * share:8.1f}%",
                flush=True,
            )
            met[mode] &= a[0] >= GOALS["composite"] and b[0] >= GOALS["pipeline"] and share <= GOALS["share"]
    print(f"goals: (a) >= {GOALS['composite']}x, (b) >= {GOALS['pipeline']}x, (c) <= {100 * GOALS['share']:.0f} %")
    for mode, ok in met.items():
        print(f"  {mode}: {'all met' if ok else 'not all met'}")


if __name__ == "__main__":
    main()
