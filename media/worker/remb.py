"""Rate-limit the REMB feedback a video receiver sends to its member (libwebrtc's ``RembThrottler`` rule).

aiortc 1.16's ``RTCRtpReceiver`` runs a ``RemoteBitrateEstimator`` (``aiortc/rate.py``) on every video packet and
sends a REMB (RTCP PSFB APP, draft-alvestrand-rmcat-remb) every 500 ms, but on **every packet** while its overuse
detector reports OVERUSING: with a jittery sender that is hundreds of RTCP packets a second per member, each
built, SRTCP-protected and sent on the worker's event loop (8 % of the loop's samples at 9 members,
``docs/PERFORMANCE.md``). libwebrtc sends a new estimate at once only when it is at least 3 % lower than the last
one sent, otherwise at most every 200 ms; :func:`throttle_remb` applies that rule to a receiver's REMB and lets
every other RTCP packet (NACK, PLI, RR) through unchanged.

:func:`lean_bitrate_estimator` gives a video receiver a :class:`LeanRemoteBitrateEstimator`: aiortc's estimator
(inter-arrival groups of 5 ms, the Kalman overuse estimator and detector, AIMD rate control, adapted from
libwebrtc's ``RemoteBitrateEstimatorAbsSendTime``) with the same output for the same packets, at about half its
cost per packet (≈ 50 µs per video packet on the worker's event loop, ``bench/room_loop.py``). aiortc's incoming
bitrate counter keeps 1,000 one-millisecond buckets and walks them one millisecond at a time on every packet, and
its minimum frame period takes ``min()`` pairwise over 60 values in Python; here the window is a deque of the
packets it holds and the minimum a builtin ``min`` over a bounded deque.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from aiortc.rate import MIN_FRAME_PERIOD_HISTORY_LENGTH, OveruseEstimator, RemoteBitrateEstimator
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

REMB_INTERVAL_S = 0.2
REMB_DECREASE = 0.97  # an estimate below 97 % of the last one sent goes out at once


class RembThrottle:
    """The send/skip decision for one receiver's REMB. ``clock``: monotonic seconds (injectable for tests).

    Counters: ``sent`` and ``skipped`` REMB packets.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_s: float | None = None
        self._last_bps: int | None = None
        self.sent = 0
        self.skipped = 0

    def allow(self, bitrate_bps: int) -> bool:
        """True when a REMB of ``bitrate_bps`` should be sent now (and it is then counted as the last one sent)."""
        now_s = self._clock()
        if (
            self._last_s is not None
            and now_s - self._last_s < REMB_INTERVAL_S
            and bitrate_bps >= self._last_bps * REMB_DECREASE
        ):
            self.skipped += 1
            return False
        self._last_s, self._last_bps = now_s, bitrate_bps
        self.sent += 1
        return True


def throttle_remb(receiver, *, clock: Callable[[], float] = time.monotonic) -> RembThrottle | None:
    """Wrap a video ``RTCRtpReceiver``'s ``_send_rtcp`` (private aiortc API, 1.16) with a :class:`RembThrottle`.

    Returns the throttle, or None (receiver unchanged) for an audio receiver or one without that method.
    """
    original = getattr(receiver, "_send_rtcp", None)
    if original is None or getattr(receiver, "_RTCRtpReceiver__kind", None) != "video":
        return None
    throttle = RembThrottle(clock=clock)

    async def send_rtcp(packet) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate_bps, _ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate_bps = None
            if bitrate_bps is not None and not throttle.allow(bitrate_bps):
                return
        await original(packet)

    receiver._send_rtcp = send_rtcp
    receiver.remb_throttle = throttle
    return throttle


class WindowRate:
    """Bitrate of what arrived in the last ``window_ms`` (aiortc's ``RateCounter`` interface and results).

    ``add(size, now_ms)``: bytes arrived at ``now_ms`` (ms, non-decreasing). ``rate(now_ms)``: ``scale`` ×
    bytes / ms over the active window (bits/s for the default scale 8000), None before two milliseconds of history
    or with nothing in the window. The window starts at the first packet and slides to the last ``window_ms``.
    """

    def __init__(self, window_ms: int, scale: int = 8000) -> None:
        self._window_ms = window_ms
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._packets: collections.deque[tuple[int, int]] = collections.deque()
        self._origin_ms: int | None = None
        self._bytes = 0

    def _erase_old(self, now_ms: int) -> None:
        origin_ms = now_ms - self._window_ms + 1
        if self._origin_ms < origin_ms:
            self._origin_ms = origin_ms
            packets = self._packets
            while packets and packets[0][0] < origin_ms:
                self._bytes -= packets.popleft()[1]

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        self._packets.append((now_ms, value))
        self._bytes += value

    def rate(self, now_ms: int) -> int | None:
        if self._origin_ms is None:
            return None
        self._erase_old(now_ms)
        active_ms = now_ms - self._origin_ms + 1
        if self._packets and active_ms > 1:
            return round(self._scale * self._bytes / active_ms)
        return None


class _LeanOveruseEstimator(OveruseEstimator):
    """aiortc's Kalman overuse estimator with its minimum frame period over a bounded deque."""

    def __init__(self) -> None:
        super().__init__()
        self.ts_delta_hist = collections.deque()

    def update_min_frame_period(self, ts_delta: float) -> float:
        history = self.ts_delta_hist
        if len(history) >= MIN_FRAME_PERIOD_HISTORY_LENGTH:
            history.popleft()
        min_frame_period = min(ts_delta, min(history)) if history else ts_delta
        history.append(ts_delta)
        return min_frame_period


class LeanRemoteBitrateEstimator(RemoteBitrateEstimator):
    """aiortc's ``RemoteBitrateEstimator`` (``add(arrival_time_ms, abs_send_time, payload_size, ssrc)`` →
    ``(bitrate bits/s, [ssrc])`` when a REMB is due, else None) with :class:`WindowRate` and a cheaper minimum
    frame period: the same estimates for the same packets (``media/tests/worker/test_remb.py`` compares both)."""

    def __init__(self) -> None:
        super().__init__()
        self.incoming_bitrate = WindowRate(1000, 8000)
        self.estimator = _LeanOveruseEstimator()


def lean_bitrate_estimator(receiver) -> LeanRemoteBitrateEstimator | None:
    """Swap a video ``RTCRtpReceiver``'s bitrate estimator (private aiortc API, 1.16) for a
    :class:`LeanRemoteBitrateEstimator`; call before it receives any packet.

    Returns the new estimator, or None (receiver unchanged) for an audio receiver or an aiortc without that
    attribute or with an estimator of another type.
    """
    attribute = "_RTCRtpReceiver__remote_bitrate_estimator"
    if type(getattr(receiver, attribute, None)) is not RemoteBitrateEstimator:
        return None
    estimator = LeanRemoteBitrateEstimator()
    setattr(receiver, attribute, estimator)
    return estimator
