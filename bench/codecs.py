"""Codec groups benchmark: what a room's second output codec (VP8 beside H.264) costs per canvas frame.

For a 2x2 canvas at 360p and 720p (``Compositor.compose`` of four moving, textured 640x360 camera-like inputs),
the room's own encoders (``media.worker.encoder``: ``SharedVideoEncoder`` libx264, ``SharedVp8Encoder`` libvpx) at
the room quality's bitrate, one thread each, as in the room's executor:

- ``h264``: composite + the H.264 encode (a room whose members all receive H.264);
- ``vp8``: composite + the VP8 encode alone;
- ``h264+vp8``: composite once + both encodes, one after the other (a room with members in both groups).

Times are process CPU ms per canvas frame (all threads), median of interleaved runs, wall ms in brackets; "kbps"
is the bitrate each encoder produced. A room's render cost does not depend on how many members share a group.
Run: ``.venv/bin/python bench/codecs.py [--frames 150] [--runs 3]`` (about a minute on an idle box).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compositor import textured_frames  # noqa: E402
from media.mixer.compositor import Compositor, Tile  # noqa: E402
from media.mixer.layouts import CANVAS_SIZES, LayoutMember, compute_layers  # noqa: E402
from media.worker.encoder import (  # noqa: E402
    H264,
    VIDEO_CLOCK_HZ,
    VP8,
    SharedVideoEncoder,
    SharedVp8Encoder,
    quality_bitrate_bps,
)

FPS = 30
CONFIGS = {"h264": (H264,), "vp8": (VP8,), "h264+vp8": (H264, VP8)}
ENCODERS = {H264: SharedVideoEncoder, VP8: SharedVp8Encoder}


def run(quality: str, codecs: tuple[str, ...], inputs: list[list], frames: int) -> tuple[float, float, dict]:
    """One run: ``frames`` canvases composited and encoded by ``codecs``. Returns (cpu ms, wall ms, kbps)."""
    width, height = CANVAS_SIZES[quality]
    members = [LayoutMember(id=f"m{i}", name=f"Member {i}", join_order=i) for i in range(len(inputs))]
    layers = compute_layers("2x2", members, canvas_w=width, canvas_h=height)
    compositor = Compositor(width, height)
    bitrate_bps = quality_bitrate_bps(quality)
    encoders = {codec: ENCODERS[codec](width, height, fps=FPS, bitrate_bps=bitrate_bps) for codec in codecs}
    sizes = dict.fromkeys(codecs, 0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n in range(frames):
        tiles = {m.id: Tile(frame=inputs[i][n % len(inputs[i])], name=m.name) for i, m in enumerate(members)}
        canvas = compositor.compose(layers, tiles)
        pts = n * VIDEO_CLOCK_HZ // FPS
        for codec, encoder in encoders.items():
            sizes[codec] += sum(packet.size for packet in encoder.encode(canvas, pts=pts, keyframe=False))
    cpu_ms = (time.process_time() - cpu0) * 1000.0 / frames
    wall_ms = (time.perf_counter() - wall0) * 1000.0 / frames
    for encoder in encoders.values():
        encoder.close()
    return cpu_ms, wall_ms, {codec: round(size * 8 * FPS / frames / 1000) for codec, size in sizes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    inputs = [textured_frames(30, seed) for seed in range(4)]
    print("| canvas | groups | CPU ms/frame (wall) | kbps | cost of the VP8 group |")
    print("|---|---|---|---|---|")
    for quality in ("360p", "720p"):
        samples: dict[str, list] = {name: [] for name in CONFIGS}
        for _ in range(args.runs):  # interleaved, so load changes hit every configuration alike
            for name, codecs in CONFIGS.items():
                samples[name].append(run(quality, codecs, inputs, args.frames))
        cpu = {name: statistics.median(s[0] for s in runs) for name, runs in samples.items()}
        wall = {name: statistics.median(s[1] for s in runs) for name, runs in samples.items()}
        for name in CONFIGS:
            kbps = ", ".join(f"{codec} {rate}" for codec, rate in samples[name][-1][2].items())
            extra = ""
            if name == "h264+vp8":
                extra = f"+{cpu[name] - cpu['h264']:.2f} ms (×{cpu[name] / cpu['h264']:.2f} of H.264 only)"
            print(f"| {quality} | {name} | {cpu[name]:.2f} ({wall[name]:.2f}) | {kbps} | {extra} |")


if __name__ == "__main__":
    main()
