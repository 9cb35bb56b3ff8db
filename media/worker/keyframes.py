"""Keyframe requests and REMB for one shared encoder of a room (DESIGN §6, reference/aiortc-mcu.md §2).

A room has one adapter per video output group (``media.worker.encoder.VideoOutputGroup``: H.264, VP8): a member's
sender is installed on its own group's adapter, so its PLI/FIR reaches the encoder of the codec it receives and
its REMB bounds that encoder's bitrate only.

aiortc's ``RTCRtpSender`` maps PLI/FIR to ``self._send_keyframe()``, which only matters when the sender encodes
itself; on the pre-encoded ``av.Packet`` path the request is dropped, and REMB only retunes the sender's unused
encoder. ``KeyframeAdapter.install(sender, member_id)`` overrides both per sender instance (private aiortc API,
1.16):

- ``sender._send_keyframe`` → ``adapter.request(member_id)``;
- ``sender._handle_rtcp_packet`` is wrapped to record REMB (``bitrate`` in bit/s) per receiving member before
  aiortc handles the packet as usual;
- with a ``packetizer`` (``media.worker.rtpsend.SharedPacketizer``, the group's), the sender's RTP loop and NACK
  retransmission are replaced too (``media.worker.rtpsend.install``): it stamps its own RTP header on payloads
  packetized once for the whole group instead of packetizing every frame itself.

The encoder polls ``adapter.take(now_s)`` once per frame: True means "force a keyframe now". Requests are
coalesced and rate-limited to one keyframe per ``min_interval_ms`` (default 500 ms); a request that arrives
inside the window is kept and served when the window ends, so the receiver that asked still gets its keyframe.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from media.worker import rtpsend

logger = logging.getLogger(__name__)

REMB_MAX_AGE_S = 10.0


class KeyframeAdapter:
    """Coalesces keyframe requests of every receiver of one encoded stream and collects their REMB.

    ``clock``: a monotonic clock in seconds (injectable for tests). ``packetizer``: the group's
    ``SharedPacketizer``, installed on every sender by ``install`` (None: aiortc packetizes per sender).
    Counters: ``requests`` (PLI/FIR/joins received), ``requests_by_member`` (``{member_id: n}``, requests that
    named a member), ``keyframes`` (forced keyframes handed out by ``take``).
    """

    def __init__(
        self,
        *,
        min_interval_ms: float = 500.0,
        clock: Callable[[], float] = time.monotonic,
        packetizer: rtpsend.SharedPacketizer | None = None,
    ) -> None:
        self.min_interval_s = min_interval_ms / 1000.0
        self.packetizer = packetizer
        self._clock = clock
        self._pending = False
        self._last_forced_s: float | None = None
        self._remb_bps: dict[str, tuple[int, float]] = {}
        self.requests = 0
        self.requests_by_member: collections.Counter[str] = collections.Counter()
        self.keyframes = 0

    # -- keyframes -----------------------------------------------------------------------------------------
    def request(self, member_id: str | None = None, reason: str = "pli") -> None:
        """Ask for a keyframe (a PLI/FIR from ``member_id``'s receiver, or ``reason="join"``)."""
        self.requests += 1
        if member_id is not None:
            self.requests_by_member[member_id] += 1
        self._pending = True
        logger.debug("keyframe requested member_id=%s reason=%s", member_id, reason)

    def take(self, now_s: float | None = None) -> bool:
        """True when a keyframe is due now; then the request is consumed and the rate-limit window restarts."""
        if not self._pending:
            return False
        now_s = self._clock() if now_s is None else now_s
        if self._last_forced_s is not None and now_s - self._last_forced_s < self.min_interval_s:
            return False
        self._pending = False
        self._last_forced_s = now_s
        self.keyframes += 1
        return True

    @property
    def pending(self) -> bool:
        return self._pending

    # -- REMB ----------------------------------------------------------------------------------------------
    def remb_update(self, member_id: str, bitrate_bps: int, now_s: float | None = None) -> None:
        self._remb_bps[member_id] = (int(bitrate_bps), self._clock() if now_s is None else now_s)

    def remb_forget(self, member_id: str) -> None:
        self._remb_bps.pop(member_id, None)

    def remb_min_bps(self, now_s: float | None = None) -> int | None:
        """The lowest fresh (≤ 10 s old) REMB across receivers in bit/s, or None when none is known."""
        now_s = self._clock() if now_s is None else now_s
        fresh = [bps for bps, at in self._remb_bps.values() if now_s - at <= REMB_MAX_AGE_S]
        return min(fresh) if fresh else None

    # -- aiortc --------------------------------------------------------------------------------------------
    def install(self, sender, member_id: str) -> None:
        """Route ``sender``'s PLI/FIR to this adapter, record REMB addressed to its SSRC and, with a packetizer,
        send through it (before the sender starts: later, aiortc's own packetization stays)."""
        original = sender._handle_rtcp_packet

        def send_keyframe() -> None:
            self.request(member_id, reason="pli")

        async def handle_rtcp_packet(packet) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    pass
                else:
                    if sender._ssrc in ssrcs:
                        self.remb_update(member_id, bitrate)
            await original(packet)

        sender._send_keyframe = send_keyframe
        sender._handle_rtcp_packet = handle_rtcp_packet
        if self.packetizer is not None:
            rtpsend.install(sender, self.packetizer)
