"""Audio-level benchmark: what the RFC 6464 ``ssrc-audio-level`` measurement costs the room's audio thread.

``MixedAudioTrack.encode_pcm`` measures each member's 20 ms mix-minus (960 int16 samples) with
``media.worker.tracks.audio_level_dbov`` before the Opus encode; this times both on the same mixes (a tone and
silence), one thread, as on the room's audio executor. Prints µs per member per 20 ms tick, median of the runs.
Run: ``.venv/bin/python bench/audio_level.py [--calls 20000] [--runs 5]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media.worker.tracks import AUDIO_SAMPLES, MixedAudioTrack, audio_level_dbov  # noqa: E402


def per_call_us(fn, pcm: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(pcm)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tone = (np.sin(np.arange(AUDIO_SAMPLES) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
    silence = np.zeros(AUDIO_SAMPLES, np.int16)
    track = MixedAudioTrack()
    for name, pcm in (("tone", tone), ("silence", silence)):
        level = statistics.median(per_call_us(audio_level_dbov, pcm, args.calls) for _ in range(args.runs))
        encode = statistics.median(per_call_us(track.encode_pcm, pcm, args.calls // 10) for _ in range(args.runs))
        print(
            f"{name:8s} level {level:6.2f} us   encode_pcm (Opus + level) {encode:7.2f} us   ({audio_level_dbov(pcm)} dBov)"
        )


if __name__ == "__main__":
    main()
