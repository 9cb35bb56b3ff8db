"""Listeners benchmark: the room audio thread's Opus work per 20 ms tick for a room of S speakers and L listeners
(audience members, or members who send nothing), with ``media.worker.tracks.encode_mixes`` (a mix heard by
several listeners is encoded once) against the reference of one encode per listener (every listener's own
``MixedAudioTrack.encode_pcm``), both on the same ``audio.mix_minus`` output, measured in the same run.

Prints ms of CPU per tick (one thread, as on the room's audio executor) and the ratio. A tick is 20 ms: above
20 ms the room cannot keep up.
Run: ``.venv/bin/python bench/listeners.py [--speakers 3] [--listeners 10,100,1000] [--ticks 50]`` (about 30 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.mixer.audio import mix_minus  # noqa: E402
from media.worker.tracks import AUDIO_SAMPLES, MixedAudioTrack, SharedOpusEncoder, encode_mixes  # noqa: E402


def tick_inputs(speakers: int, tick: int) -> dict[str, np.ndarray]:
    t = (np.arange(AUDIO_SAMPLES) + tick * AUDIO_SAMPLES) / 48000
    return {f"s{i}": (5000 * np.sin(2 * np.pi * (300 + 110 * i) * t)).astype(np.int16) for i in range(speakers)}


def measure(speakers: int, listeners: int, ticks: int, shared_encode: bool) -> float:
    """CPU ms per tick of mix-minus + Opus for every listener."""
    names = [f"s{i}" for i in range(speakers)] + [f"l{i}" for i in range(listeners)]
    tracks = {name: MixedAudioTrack() for name in names}
    shared = {"full": SharedOpusEncoder(), "silence": SharedOpusEncoder()}
    cpu = 0.0
    for tick in range(ticks + 5):  # the first 5 ticks warm the encoders up and are not counted
        inputs = tick_inputs(speakers, tick)
        start = time.process_time()
        mixes, full = mix_minus(inputs, input_gain_db={}, output_gain_db={}, muted=set(), deaf=set(), listeners=names)
        pairs = [(tracks[name], pcm) for name, pcm in mixes.items()]
        if shared_encode:
            encode_mixes(pairs, full, shared)
        else:
            for track, pcm in pairs:
                track.encode_pcm(pcm)
        if tick >= 5:
            cpu += time.process_time() - start
    return cpu / ticks * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--listeners", default="10,100,1000")
    parser.add_argument("--ticks", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.speakers} speakers, {args.ticks} ticks of 20 ms; CPU ms per tick (mix-minus + Opus, one thread)")
    print("| listeners | one encode per listener | shared encode | ratio |")
    print("|---|---|---|---|")
    for listeners in (int(n) for n in args.listeners.split(",")):
        reference = measure(args.speakers, listeners, args.ticks, shared_encode=False)
        shared = measure(args.speakers, listeners, args.ticks, shared_encode=True)
        print(f"| {listeners} | {reference:.2f} | {shared:.2f} | {reference / shared:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
