"""Send one shared encoded canvas to many members: packetize each frame once, stamp a header per member.

aiortc 1.16's ``RTCRtpSender._run_rtp`` (``aiortc/rtcrtpsender.py``) handles a pre-encoded ``av.Packet`` by
packetizing it itself (``H264Encoder.pack``: Annex-B split, FU-A/STAP-A, RFC 6184; ``Vp8Encoder.pack``: payload
descriptor, RFC 7741), then builds an ``RtpPacket`` object per payload, serializes it through its header-extension
map and awaits the DTLS transport per packet. In a room every member of an output group receives the same packets,
so all of that but the RTP header is the same work repeated per member.

- :class:`SharedPacketizer` (one per ``VideoOutputGroup``): ``pack(av.Packet)`` → :class:`PacketizedFrame`
  (payloads, 90 kHz timestamp), computed once per packet and cached by packet identity for the last
  ``CACHE_FRAMES`` packets. The room packs on its render thread right after encoding, so the event loop normally
  only looks it up. Thread-safe.
- :func:`install` replaces one video sender's ``_run_rtp`` (per instance, before ``send()`` starts it) with a loop
  that takes the track's packets, looks up their payloads and writes, per payload, the member's own 12-byte RTP
  header (its payload type, sequence number, timestamp origin and SSRC, marker on the frame's last payload) and
  its header extensions (``sdes:mid`` and ``abs-send-time`` with the sender's negotiated ids, RFC 8285 one-byte
  form, one ``abs-send-time`` per frame) in front of the shared payload, then SRTP-protects and sends it through
  the sender's DTLS transport. The bytes on the wire are those aiortc would send.

What stays aiortc's: RTCP (SR from the counters this loop keeps up to date: packets, octets, the last RTP/NTP
timestamp pair), REMB and PLI/FIR routing (``media.worker.keyframes``), ``replaceTrack`` and ``stop()``.
NACK: the loop keeps the sent (unprotected) packets in a history of ``RTP_HISTORY_SIZE`` like aiortc, and the
sender's ``_retransmit`` is replaced to resend from it, wrapped as RTX (RFC 4588) when RTX was negotiated.
Private aiortc attributes used (checked by ``install``, which leaves a sender that lacks them alone):
``_RTCRtpSender__{started,rtp_started,rtp_exited,mid,rtp_header_extensions_map,rtx_payload_type,
rtx_sequence_number,packet_count,octet_count,ntp_timestamp,rtp_timestamp,track}``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import threading
import traceback
from typing import NamedTuple

import av
from aiortc import clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket, pack_header_extensions, wrap_rtx
from aiortc.utils import random32, uint16_add, uint32_add

logger = logging.getLogger(__name__)

# Packets whose payloads stay cached: a member's track queues 2, so 16 covers every sender that is not half a
# second behind; a sender further behind packs the packet again (same payloads for H.264).
CACHE_FRAMES = 16

_HEADER = struct.Struct("!BBHLL")
_EXTENSION_HEADER = struct.Struct("!HH")
_SEQUENCE = struct.Struct("!H")
_RTP_V2 = 0x80
_RTP_V2_EXTENSION = 0x90
_MIME_TYPES = {"h264": "video/h264", "vp8": "video/vp8"}
_PRIVATE = (
    "started",
    "rtp_started",
    "rtp_exited",
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "rtx_sequence_number",
    "packet_count",
    "octet_count",
    "ntp_timestamp",
    "rtp_timestamp",
    "track",
)


class PacketizedFrame(NamedTuple):
    """One encoded frame's RTP payloads (each ≤ 1300 bytes, aiortc's ``PACKET_MAX``) and its RTP timestamp in
    90 kHz units from the stream origin (the packet's pts converted), before any sender's random offset."""

    payloads: tuple[bytes, ...]
    timestamp: int
    size: int


class SharedPacketizer:
    """Packetizes the shared ``av.Packet``s of one output codec once for all its senders.

    ``codec``: ``"h264"`` or ``"vp8"`` (``media.worker.encoder``). Counter ``packed``: packets packetized (a
    cache miss or the room's render thread); every other ``pack`` of the same packet is a lookup.
    VP8's ``picture_id`` is therefore one sequence per output group, the same for every member.
    """

    def __init__(self, codec: str) -> None:
        if codec not in _MIME_TYPES:
            raise ValueError(f"no RTP packetizer for {codec!r}")
        self.codec = codec
        self.mime_type = _MIME_TYPES[codec]
        self._packer = H264Encoder() if codec == "h264" else Vp8Encoder()
        self._frames: collections.OrderedDict[int, tuple[av.Packet, PacketizedFrame]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.packed = 0

    def pack(self, packet: av.Packet) -> PacketizedFrame:
        """The payloads of ``packet`` (pts/time_base set, as the room's encoders emit them)."""
        key = id(packet)
        with self._lock:
            entry = self._frames.get(key)
            if entry is not None and entry[0] is packet:
                return entry[1]
            payloads, timestamp = self._packer.pack(packet)
            frame = PacketizedFrame(tuple(payloads), timestamp, sum(len(p) for p in payloads))
            self._frames[key] = (packet, frame)  # the packet is held, so its id is not reused while cached
            while len(self._frames) > CACHE_FRAMES:
                self._frames.popitem(last=False)
            self.packed += 1
            return frame


def _private(sender, name: str):
    return getattr(sender, "_RTCRtpSender__" + name)


def _set_private(sender, name: str, value) -> None:
    setattr(sender, "_RTCRtpSender__" + name, value)


class SharedPacketStream:
    """The RTP loop of one member's canvas sender over a :class:`SharedPacketizer` (see the module docstring).

    Counters: ``frames`` and ``packets`` sent, ``retransmits`` (NACKed packets resent).
    """

    def __init__(self, sender, packetizer: SharedPacketizer) -> None:
        self.sender = sender
        self.packetizer = packetizer
        self._original_run_rtp = sender._run_rtp
        self._history: dict[int, bytes] = {}
        self.frames = 0
        self.packets = 0
        self.retransmits = 0

    def _extensions(self, mid: str | None) -> bytes:
        """The header-extension block (profile, length, elements) of the next frame's packets, or b""."""
        ids = _private(self.sender, "rtp_header_extensions_map")._HeaderExtensionsMap__ids
        elements = []
        if mid is not None and ids.mid:
            elements.append((ids.mid, mid.encode("utf8")))
        if ids.abs_send_time:
            abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
            elements.append((ids.abs_send_time, struct.pack("!L", abs_send_time)[1:]))
        profile, value = pack_header_extensions(elements)
        if not value:
            return b""
        return _EXTENSION_HEADER.pack(profile, len(value) >> 2) + value

    async def run_rtp(self, codec) -> None:
        """Replaces ``RTCRtpSender._run_rtp(codec)``; same start/exit protocol (events, track stop)."""
        sender = self.sender
        if codec.mimeType.lower() != self.packetizer.mime_type:
            logger.warning("shared RTP path: negotiated %s, group %s; using aiortc's", codec.mimeType, self.packetizer)
            return await self._original_run_rtp(codec)
        _private(sender, "rtp_started").set()
        payload_type = codec.payloadType
        sequence_number = random_sequence_number()
        timestamp_origin = random32()
        history = self._history
        pack_header = _HEADER.pack
        try:
            while True:
                track = sender.track
                if not track:
                    await asyncio.sleep(0.02)
                    continue
                data = await track.recv()
                if not sender._enabled:
                    continue
                frame = self.packetizer.pack(data)
                payloads = frame.payloads
                if not payloads:
                    continue
                timestamp = uint32_add(timestamp_origin, frame.timestamp)
                extensions = self._extensions(_private(sender, "mid"))
                first = _RTP_V2_EXTENSION if extensions else _RTP_V2
                ssrc = sender._ssrc
                send_rtp = sender.transport._send_rtp
                last = len(payloads) - 1
                for i, payload in enumerate(payloads):
                    marker = 0x80 if i == last else 0
                    packet = pack_header(first, marker | payload_type, sequence_number, timestamp, ssrc)
                    packet = b"".join((packet, extensions, payload))
                    history[sequence_number % RTP_HISTORY_SIZE] = packet
                    await send_rtp(packet)
                    sequence_number = uint16_add(sequence_number, 1)
                _set_private(sender, "ntp_timestamp", clock.current_ntp_time())
                _set_private(sender, "rtp_timestamp", timestamp)
                _set_private(sender, "octet_count", _private(sender, "octet_count") + frame.size)
                _set_private(sender, "packet_count", _private(sender, "packet_count") + len(payloads))
                self.frames += 1
                self.packets += len(payloads)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # The exit event must be set or RTCRtpSender.stop() waits forever.
            logger.warning("shared RTP loop failed: %s", traceback.format_exc())
        track = sender.track
        if track:
            track.stop()
            _set_private(sender, "track", None)
        _private(sender, "rtp_exited").set()

    async def retransmit(self, sequence_number: int) -> None:
        """Replaces ``RTCRtpSender._retransmit``: resend a NACKed packet from the history (as RTX if negotiated)."""
        sender = self.sender
        packet = self._history.get(sequence_number % RTP_HISTORY_SIZE)
        if packet is None or _SEQUENCE.unpack_from(packet, 2)[0] != sequence_number:
            return
        rtx_payload_type = _private(sender, "rtx_payload_type")
        if rtx_payload_type is not None:
            extensions_map = _private(sender, "rtp_header_extensions_map")
            rtx_sequence_number = _private(sender, "rtx_sequence_number")
            rtx = wrap_rtx(
                RtpPacket.parse(packet, extensions_map),
                payload_type=rtx_payload_type,
                sequence_number=rtx_sequence_number,
                ssrc=sender._rtx_ssrc,
            )
            _set_private(sender, "rtx_sequence_number", uint16_add(rtx_sequence_number, 1))
            packet = rtx.serialize(extensions_map)
        self.retransmits += 1
        await sender.transport._send_rtp(packet)


def install(sender, packetizer: SharedPacketizer) -> SharedPacketStream | None:
    """Make the video ``RTCRtpSender`` send through ``packetizer`` (call before the connection starts sending).

    Returns the stream, or None (sender unchanged, aiortc's own path) when the sender already started, is not
    video, or lacks one of the private attributes this relies on (another aiortc version).
    """
    if getattr(sender, "kind", None) != "video" or not all(
        hasattr(sender, "_RTCRtpSender__" + name) for name in _PRIVATE
    ):
        logger.warning("shared RTP path unavailable for %r: aiortc internals differ", sender)
        return None
    if _private(sender, "started"):
        return None
    stream = SharedPacketStream(sender, packetizer)
    sender._run_rtp = stream.run_rtp
    sender._retransmit = stream.retransmit
    sender.shared_packet_stream = stream
    return stream
