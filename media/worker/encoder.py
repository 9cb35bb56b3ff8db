"""The room's canvas encoders: canvas ``av.VideoFrame`` → ``av.Packet`` lists shared by every receiver of a codec.

A room has one **output group** per video codec its members need (``VideoOutputGroup``: ``h264`` or ``vp8``): one
encoder and one ``KeyframeAdapter``. The canvas is composited once and encoded once per group that has receivers;
each member's ``PacketVideoTrack`` (``codec``) takes its group's packets, which aiortc's sender only packetizes.

- ``SharedVideoEncoder`` (``h264``): PyAV libx264, ``preset=ultrafast``, ``tune=zerolatency``, baseline profile
  (Chromium receives it as constrained baseline 42e01f, packetization-mode 1), no B-frames, in-band SPS/PPS before
  every keyframe. About 3 ms per 720p frame on one core (reference/aiortc-mcu.md §3a). Also what egress takes.
- ``SharedVp8Encoder`` (``vp8``): PyAV libvpx, ``deadline=realtime``, ``cpu-used=-10``, ``lag-in-frames=0``, CBR
  at the group's target, one thread. About 2 ms per 360p and 7 ms per 720p frame (docs/PERFORMANCE.md).

Both use a long GOP: keyframes come from ``KeyframeAdapter`` (PLI/FIR, joins) and, with ``keyframe_interval_s``,
periodically. ``keyframe_interval_s``: when set (the room sets ``EGRESS_KEYFRAME_INTERVAL_S`` on the H.264 encoder
while a recording or an RTMP stream subscribes), a keyframe is forced once that much stream time has passed since
the last one, so recordings can be seek-cut and RTMP platforms get the ≤ 2 s GOP they ask for. None (WebRTC
receivers only): keyframes only on request.

Packets carry ``pts`` in 1/90000 s and ``time_base = 1/90000`` (aiortc's ``H264Encoder.pack`` / ``Vp8Encoder.pack``
read both). ``encode()`` is blocking CPU work: call it from the room's executor thread, never from the event loop.
"""

from __future__ import annotations

import fractions
import logging
from dataclasses import dataclass

import av

from media.worker.keyframes import KeyframeAdapter
from media.worker.rtpsend import SharedPacketizer

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
VIDEO_CLOCK_HZ = 90000

H264 = "h264"
VP8 = "vp8"
# Output codecs in order of preference: a member whose offer has both gets H.264 (cheaper to encode, and the
# codec egress records and streams without a transcode).
VIDEO_CODECS = (H264, VP8)

# Target bitrate by room quality (bit/s) and the bounds REMB may move it within.
QUALITY_BITRATE_BPS = {"360p": 800_000, "720p": 1_800_000, "1080p": 3_500_000}
MIN_BITRATE_BPS = 250_000
# Re-open the encoder (which costs a keyframe) only when the target moves by more than this fraction.
BITRATE_CHANGE_RATIO = 0.2
# Longest keyframe distance while egress (recording, RTMP) is active, in seconds.
EGRESS_KEYFRAME_INTERVAL_S = 2.0


def quality_bitrate_bps(quality: str) -> int:
    return QUALITY_BITRATE_BPS.get(quality, QUALITY_BITRATE_BPS["720p"])


class _CanvasEncoder:
    """One encoder for a room's canvas. Not thread-safe: one caller thread at a time.

    ``width_px``/``height_px``: canvas size (even). ``fps``: nominal frame rate. ``bitrate_bps``: target.
    Counters: ``frames`` (canvases encoded), ``keyframes`` (keyframe packets produced), ``opens`` (codec contexts
    opened: the first frame, each large retarget and each restart after ``close()``).
    """

    codec = ""
    library = ""

    def __init__(self, width_px: int, height_px: int, *, fps: int, bitrate_bps: int) -> None:
        self.width_px = width_px
        self.height_px = height_px
        self.fps = fps
        self.bitrate_bps = int(bitrate_bps)
        self._codec: av.CodecContext | None = None
        self.frames = 0
        self.keyframes = 0
        self.opens = 0
        self.keyframe_interval_s: float | None = None
        self._last_keyframe_pts: int | None = None

    @property
    def is_open(self) -> bool:
        return self._codec is not None

    def _open(self) -> av.CodecContext:
        codec = av.CodecContext.create(self.library, "w")
        codec.width = self.width_px
        codec.height = self.height_px
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = fractions.Fraction(self.fps, 1)
        codec.bit_rate = self.bitrate_bps
        codec.gop_size = 10 * 60 * self.fps  # keyframes are forced (requests, egress interval)
        codec.thread_count = 1  # the room's one executor thread
        self._configure(codec)
        codec.open()
        return codec

    def _configure(self, codec: av.CodecContext) -> None:
        """Set the codec's own options on the not yet opened context."""
        raise NotImplementedError

    def set_bitrate(self, bitrate_bps: int) -> bool:
        """Retarget the bitrate; re-opens the encoder (next frame is a keyframe) only on a large change.

        Returns True when the encoder will be re-opened.
        """
        bitrate_bps = int(bitrate_bps)
        if abs(bitrate_bps - self.bitrate_bps) <= BITRATE_CHANGE_RATIO * self.bitrate_bps:
            return False
        logger.info("%s encoder bitrate %d -> %d bit/s", self.codec, self.bitrate_bps, bitrate_bps)
        self.bitrate_bps = bitrate_bps
        if self._codec is not None:
            self._close()
        return True

    def encode(self, frame: av.VideoFrame, *, pts: int, keyframe: bool) -> list[av.Packet]:
        """Encode ``frame`` (yuv420p, canvas size) at ``pts`` (1/90000 s). ``keyframe`` forces a keyframe.

        The frame's ``pts``/``time_base``/``pict_type`` are overwritten (PyAV rescales them in place), so encoders
        of several groups may take the same frame one after another, never at the same time.
        """
        if self._codec is None:
            self._codec = self._open()
            self.opens += 1
            keyframe = True
        interval_s = self.keyframe_interval_s
        if (
            interval_s is not None
            and self._last_keyframe_pts is not None
            and pts - self._last_keyframe_pts >= interval_s * VIDEO_CLOCK_HZ
        ):
            keyframe = True
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        packets = self._codec.encode(frame)
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
            if packet.is_keyframe:
                self.keyframes += 1
                self._last_keyframe_pts = pts
        self.frames += 1
        return packets

    def _close(self) -> None:
        codec, self._codec = self._codec, None
        try:
            codec.encode(None)
        except Exception:  # flushing a zero-latency encoder yields nothing useful; never fail a retarget
            logger.debug("encoder flush failed", exc_info=True)

    def close(self) -> None:
        """Release the codec context; the next ``encode()`` opens a new one and starts with a keyframe."""
        if self._codec is not None:
            self._close()


class SharedVideoEncoder(_CanvasEncoder):
    """The H.264 group's libx264 encoder (see the module docstring)."""

    codec = H264
    library = "libx264"

    def _configure(self, codec: av.CodecContext) -> None:
        codec.max_b_frames = 0
        level = "31" if self.width_px * self.height_px <= 1280 * 720 else "40"
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "level": level,
            "bf": "0",
            "maxrate": str(self.bitrate_bps),
            "bufsize": str(self.bitrate_bps),
            # Only forced keyframes: x264 would otherwise insert them on scene cuts.
            "x264-params": "scenecut=0:repeat-headers=1:keyint=infinite",
        }


class SharedVp8Encoder(_CanvasEncoder):
    """The VP8 group's libvpx encoder: aiortc's own realtime VP8 settings (reference/aiortc-mcu.md §2), a faster
    ``cpu-used``, one thread (the room's executor), CBR at the room quality's bitrate (aiortc clamps its own
    encoder to 1.5 Mbit/s; a 1080p canvas needs more)."""

    codec = VP8
    library = "libvpx"

    def _configure(self, codec: av.CodecContext) -> None:
        codec.qmin = 2
        codec.qmax = 56
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "-10",
            "lag-in-frames": "0",
            # minrate = maxrate = bit_rate makes libvpx run CBR; bufsize = 1 s of the target.
            "minrate": str(self.bitrate_bps),
            "maxrate": str(self.bitrate_bps),
            "bufsize": str(self.bitrate_bps),
            "undershoot-pct": "100",
            "overshoot-pct": "15",
            "static-thresh": "1",
            "partitions": "0",
        }


ENCODERS: dict[str, type[_CanvasEncoder]] = {H264: SharedVideoEncoder, VP8: SharedVp8Encoder}


@dataclass
class VideoOutputGroup:
    """The receivers of one output codec in a room: the encoder they share, their keyframe/REMB adapter and the
    RTP packetizer their senders share (``media.worker.rtpsend``; installed on each sender with the adapter).

    ``packets_out``: packets handed to the group's receivers since the room started.
    """

    codec: str
    encoder: _CanvasEncoder
    keyframes: KeyframeAdapter
    packetizer: SharedPacketizer
    packets_out: int = 0


def video_output_groups(width_px: int, height_px: int, *, fps: int, bitrate_bps: int) -> dict[str, VideoOutputGroup]:
    """One ``VideoOutputGroup`` per codec of ``VIDEO_CODECS`` (encoders open lazily, on their first frame)."""
    groups = {}
    for codec in VIDEO_CODECS:
        packetizer = SharedPacketizer(codec)
        groups[codec] = VideoOutputGroup(
            codec=codec,
            encoder=ENCODERS[codec](width_px, height_px, fps=fps, bitrate_bps=bitrate_bps),
            keyframes=KeyframeAdapter(packetizer=packetizer),
            packetizer=packetizer,
        )
    return groups
