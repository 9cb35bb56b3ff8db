"""Rate-limit the REMB feedback a video receiver sends to its member (libwebrtc's ``RembThrottler`` rule).

aiortc 1.16's ``RTCRtpReceiver`` runs a ``RemoteBitrateEstimator`` (``aiortc/rate.py``) on every video packet and
sends a REMB (RTCP PSFB APP, draft-alvestrand-rmcat-remb) every 500 ms, but on **every packet** while its overuse
detector reports OVERUSING: with a jittery sender that is hundreds of RTCP packets a second per member, each
built, SRTCP-protected and sent on the worker's event loop (8 % of the loop's samples at 9 members,
``docs/PERFORMANCE.md``). libwebrtc sends a new estimate at once only when it is at least 3 % lower than the last
one sent, otherwise at most every 200 ms; :func:`throttle_remb` applies that rule to a receiver's REMB and lets
every other RTCP packet (NACK, PLI, RR) through unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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
