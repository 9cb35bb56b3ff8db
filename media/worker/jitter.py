"""Release a received video frame to the decoder as soon as its last RTP packet is in, not one frame later.

aiortc 1.16's ``JitterBuffer`` (``aiortc/jitterbuffer.py``) hands a video frame to the decoder only when the first
packet of the *next* frame arrives (a timestamp change), which adds one frame interval (33 ms at 30 fps) to every
member's glass-to-glass latency through the mixer. H.264 (RFC 6184 §5.1) and VP8 (RFC 7741 §4.1) senders set the
RTP marker bit on the last packet of a frame, as Chromium does; :class:`MarkerJitterBuffer` completes a frame on it
when every packet from the buffer's origin up to the marker is present (same timestamp, no gap), and otherwise
keeps aiortc's rule, so loss, reordering, NACK and PLI behave as before.

:func:`release_frames_on_marker` swaps it into a video ``RTCRtpReceiver`` (a private attribute of aiortc 1.16,
checked: it returns ``False`` and leaves the receiver alone if the attribute is not there).
"""

from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

logger = logging.getLogger(__name__)

VIDEO_CAPACITY = 512  # what aiortc's receiver uses for video


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, completing a frame at its marker-bit packet."""

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, is_video=True)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._origin is not None:
            packets = []
            for count in range(self.capacity):
                packet = self._packets[(self._origin + count) % self._capacity]
                if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                    break  # a gap, or a frame ended without a marker: aiortc's timestamp rule decides
                packets.append(packet)
                if packet.marker:
                    self.remove(count + 1)
                    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packets[0].timestamp)
        return super()._remove_frame(sequence_number)


def release_frames_on_marker(receiver) -> bool:
    """Give a video ``RTCRtpReceiver`` a :class:`MarkerJitterBuffer`; call before it receives any packet.

    Returns ``False`` (receiver unchanged) for an audio receiver or an aiortc without that private attribute.
    """
    attribute = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(receiver, attribute, None)
    if not isinstance(current, JitterBuffer) or not current._is_video:
        return False
    setattr(receiver, attribute, MarkerJitterBuffer(current.capacity))
    return True
