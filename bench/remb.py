"""REMB estimator benchmark: CPU µs per video packet of aiortc's ``RemoteBitrateEstimator`` (the reference) and
Parley's ``LeanRemoteBitrateEstimator`` (``media.worker.remb``) on the same packets, measured in one run.

The stream is the equivalence test's (``media/tests/worker/test_remb.py``: 30 fps, 1-4 packets a frame, jitter,
congestion and recovery, reordering, an outage); both estimators' outputs are checked equal first.
Run: ``.venv/bin/python bench/remb.py [--seconds 120] [--rounds 5]`` (about 10 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc.rate import RemoteBitrateEstimator  # noqa: E402

from media.tests.worker.test_remb import video_packets  # noqa: E402
from media.worker.remb import LeanRemoteBitrateEstimator  # noqa: E402


def run(estimator_class, packets) -> tuple[float, list]:
    estimator = estimator_class()
    add = estimator.add
    out = []
    start = time.process_time()
    for arrival_ms, abs_send_time, size, ssrc in packets:
        out.append(add(arrival_time_ms=arrival_ms, abs_send_time=abs_send_time, payload_size=size, ssrc=ssrc))
    return (time.process_time() - start) / len(packets) * 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    packets = video_packets(1, seconds=args.seconds)
    _, expected = run(RemoteBitrateEstimator, packets)
    _, got = run(LeanRemoteBitrateEstimator, packets)
    assert got == expected, "the estimators disagree"
    reference, lean = [], []
    for _ in range(args.rounds):  # interleaved, so a change of the box's speed hits both
        reference.append(run(RemoteBitrateEstimator, packets)[0])
        lean.append(run(LeanRemoteBitrateEstimator, packets)[0])
    ref_us, lean_us = statistics.median(reference), statistics.median(lean)
    print(f"{len(packets)} packets ({args.seconds:.0f} s of video), {args.rounds} interleaved rounds, medians:")
    print(f"aiortc RemoteBitrateEstimator     {ref_us:6.2f} µs/packet")
    print(f"LeanRemoteBitrateEstimator        {lean_us:6.2f} µs/packet   ({ref_us / lean_us:.2f}x)")


if __name__ == "__main__":
    main()
