"""Where the media worker's event loop spends its CPU per packet: ``bench/room.py``'s set-up, N bots, with the
aiortc and aioice functions of the receive and send paths timed on the loop's thread during the CPU window.

    .venv/bin/python bench/room_loop.py [--size 9] [--seconds 8] [--warmup 4]

Each function below is wrapped (for this process only) to add its thread CPU time and call count; nested ones
are included in their callers (``_handle_rtp_data`` ⊃ ``RtpPacket.parse`` and the receiver's
``_handle_rtp_packet`` ⊃ REMB estimator and jitter buffer). Only functions that never suspend are timed, so the
figures are the loop's own work. The wrappers cost ≈ 1 µs per call, so the per-call figures are upper bounds.
Prints calls per second, µs of CPU per call and CPU-s/s, then ``bench/room.py``'s own line for the same run.
"""

from __future__ import annotations

import argparse
import functools
import runpy
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import harness  # noqa: E402  (bench/harness.py)

_stats: dict[str, list[float]] = {}  # label -> [calls, CPU seconds], in the order the functions are wrapped
_active = [False]


def _timed(cls, name: str, label: str, *, coroutine: bool) -> None:
    original = getattr(cls, name)
    _stats[label] = [0, 0.0]
    clock = time.thread_time

    if coroutine:

        @functools.wraps(original)
        async def wrapper(*args, **kwargs):
            if not _active[0]:
                return await original(*args, **kwargs)
            started = clock()
            result = await original(*args, **kwargs)
            entry = _stats[label]
            entry[0] += 1
            entry[1] += clock() - started
            return result

    else:

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if not _active[0]:
                return original(*args, **kwargs)
            started = clock()
            result = original(*args, **kwargs)
            entry = _stats[label]
            entry[0] += 1
            entry[1] += clock() - started
            return result

    setattr(cls, name, wrapper)


def instrument() -> None:
    import aioice.ice
    import pylibsrtp
    from aiortc import jitterbuffer, rate, rtcdtlstransport, rtcrtpreceiver, rtp

    dtls = rtcdtlstransport.RTCDtlsTransport
    _timed(aioice.ice.StunProtocol, "datagram_received", "receive: aioice datagram_received", coroutine=False)
    _timed(pylibsrtp.Session, "unprotect", "receive: SRTP unprotect", coroutine=False)
    _timed(dtls, "_handle_rtp_data", "receive: RTP handling (all below)", coroutine=True)
    _timed(rtp.RtpPacket, "parse", "receive:   RtpPacket.parse", coroutine=False)
    _timed(rtcrtpreceiver.RTCRtpReceiver, "_handle_rtp_packet", "receive:   receiver (all below)", coroutine=True)
    _timed(rate.RemoteBitrateEstimator, "add", "receive:     REMB estimator (video)", coroutine=False)
    _timed(jitterbuffer.JitterBuffer, "add", "receive:     jitter buffer", coroutine=False)
    _timed(dtls, "_handle_rtcp_data", "receive: RTCP handling", coroutine=True)
    _timed(dtls, "_send_rtp", "send: RTP/RTCP through the transport", coroutine=True)
    _timed(pylibsrtp.Session, "protect", "send:   SRTP protect", coroutine=False)

    open_window, close_window = harness.CpuWindow.__init__, harness.CpuWindow.close

    def start(self) -> None:
        open_window(self)
        self._loop_started = time.perf_counter()
        _active[0] = True

    def stop(self) -> dict:
        _active[0] = False
        seconds = time.perf_counter() - self._loop_started
        result = close_window(self)
        print(f"event loop, {seconds:.1f} s: calls/s, µs CPU per call, CPU-s/s")
        for label, (calls, cpu) in _stats.items():
            print(
                f"  {label:42s} {calls / seconds:7.0f}/s {cpu / max(calls, 1) * 1e6:7.1f} µs {cpu / seconds:7.4f} s/s"
            )
        print(f"  {'(the loop thread in all)':42s} {'':9s} {'':10s} {result['threads'].get('MainThread', 0):7.4f} s/s")
        return result

    harness.CpuWindow.__init__ = start
    harness.CpuWindow.close = stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=4)
    args = parser.parse_args()
    instrument()
    sys.argv = [
        "room.py",
        *("--sizes", str(args.size), "--seconds", str(args.seconds), "--warmup", str(args.warmup)),
    ]
    runpy.run_path(str(BENCH_DIR / "room.py"), run_name="__main__")
