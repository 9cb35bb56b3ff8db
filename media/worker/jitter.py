"""Release a received video frame to the decoder as soon as its last RTP packet is in, not one frame later.

aiortc 1.16's ``JitterBuffer`` (``aiortc/jitterbuffer.py``) hands a video frame to the decoder only when the first
packet of the *next* frame arrives (a timestamp change), which adds one frame interval (33 ms at 30 fps) to every
member's glass-to-glass latency through the mixer. H.264 (RFC 6184 §5.1) and VP8 (RFC 7741 §4.1) senders set the
RTP marker bit on the last packet of a frame, as Chromium does; :class:`MarkerJitterBuffer` completes a frame on it
when every packet from the buffer's origin up to the marker is present (same timestamp, no gap), and otherwise
keeps aiortc's rule, so loss, reordering, NACK and PLI behave as before.

:func:`release_frames_on_marker` swaps it into a video ``RTCRtpReceiver`` (a private attribute of aiortc 1.16,
checked: it returns ``False`` and leaves the receiver alone if the attribute is not there).

The buffer is also the member's **decode gate**: the room pauses it while the member's video is not on the canvas
(off-canvas, hidden, beyond the layout's slots, or video-muted), so the receiver's decoder thread gets no frames
and costs nothing; on resume it drops frames until a keyframe and makes the receiver send one PLI (RFC 4585
§6.3.1) to the member, so decoding restarts at a clean picture. :func:`decode_gate` finds a received track's
buffer (None for a track that does not come from a receiver set up here, such as a playback).
"""

from __future__ import annotations

import logging
import weakref

from aiortc.jitterbuffer import JitterBuffer, JitterFrame

logger = logging.getLogger(__name__)

VIDEO_CAPACITY = 512  # what aiortc's receiver uses for video


# Every buffer installed by release_frames_on_marker, by receiver (the room looks a track's buffer up).
_BUFFERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_keyframe(data: bytes) -> bool:
    """Whether a depayloaded frame starts a picture: H.264 Annex-B (aiortc's ``h264_depayload`` output) with an
    IDR slice or SPS NAL unit, or a VP8 key frame (RFC 6386 §9.1: frame-tag bit 0 clear, start code 9d 01 2a)."""
    if data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01"):
        position = data.find(b"\x00\x00\x01")
        while position != -1 and position + 3 < len(data):
            if data[position + 3] & 0x1F in (5, 7):
                return True
            position = data.find(b"\x00\x00\x01", position + 3)
        return False
    return len(data) >= 6 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, completing a frame at its marker-bit packet, with a decode gate.

    ``paused``: frames are dropped instead of decoded (``pause()``/``resume()``, event loop only).
    Counters: ``frames_dropped`` (complete frames not handed to the decoder), ``keyframe_requests`` (PLIs asked
    for on resume).
    """

    def __init__(self, capacity: int = VIDEO_CAPACITY) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self.paused = False
        self._waiting_keyframe = False
        self._request_keyframe = False
        self.frames_dropped = 0
        self.keyframe_requests = 0

    def pause(self) -> None:
        """Stop handing frames to the decoder (the member's video is not shown)."""
        self.paused = True

    def resume(self) -> None:
        """Decode again from the next keyframe, asking the member for one with the next packet's PLI."""
        if self.paused:
            self.paused = False
            self._waiting_keyframe = True
            self._request_keyframe = True

    def add(self, packet) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if self._request_keyframe:
            self._request_keyframe = False
            self.keyframe_requests += 1
            pli_flag = True
        if frame is not None:
            if self.paused or (self._waiting_keyframe and not is_keyframe(frame.data)):
                self.frames_dropped += 1
                return pli_flag, None
            self._waiting_keyframe = False
        return pli_flag, frame

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
    buffer = MarkerJitterBuffer(current.capacity)
    setattr(receiver, attribute, buffer)
    _BUFFERS[receiver] = buffer
    return True


def decode_gate(track) -> MarkerJitterBuffer | None:
    """The :class:`MarkerJitterBuffer` feeding the decoder of a received video ``track``, or None."""
    for receiver, buffer in list(_BUFFERS.items()):
        if getattr(receiver, "_track", None) is track:
            return buffer
    return None
