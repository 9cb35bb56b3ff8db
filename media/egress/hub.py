"""One egress subscription per room: the room's encoded H.264 packets and its full audio mix encoded to AAC
**once**, fanned out to every recorder and RTMP stream of the room (DESIGN §6: no second encode).

``RoomEgressHub(room)`` subscribes to ``RoomMixer.subscribe_encoded()`` when its first sink is added and
unsubscribes when the last one is removed. Each item reaching a sink is a ``MediaItem``:

- video: ``data`` the packet's bytes (H.264 Annex B, shared read-only), ``time_s`` its pts in seconds of the
  room clock (pts / 90000), ``keyframe``;
- audio: ``data`` one AAC-LC packet (48 kHz mono, raw, 1024 samples), ``time_s`` its pts / 48000.

Both clocks start with the room's media loops, so ``time_s`` of video and audio are comparable; sinks rebase
them (first keyframe → 0, paused time cut out). The hub's ``aac_extradata`` (AudioSpecificConfig) is what sinks
put in their containers' audio stream headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from dataclasses import dataclass
from typing import Protocol

import av

logger = logging.getLogger(__name__)

AAC_BITRATE_BPS = 96_000
AUDIO_RATE_HZ = 48_000
VIDEO_CLOCK_HZ = 90_000


@dataclass(frozen=True, slots=True)
class MediaItem:
    kind: str  # "video" | "audio"
    data: bytes
    time_s: float
    keyframe: bool = False


class Sink(Protocol):
    def feed(self, item: MediaItem) -> None: ...

    def room_stopped(self) -> None: ...


def aac_encoder() -> av.AudioCodecContext:
    """An AAC-LC encoder for the room's full mix: 48 kHz mono, ``AAC_BITRATE_BPS``, global header."""
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate = AUDIO_RATE_HZ
    codec.layout = "mono"
    codec.format = "fltp"
    codec.bit_rate = AAC_BITRATE_BPS
    codec.time_base = fractions.Fraction(1, AUDIO_RATE_HZ)
    codec.flags |= av.codec.context.Flags.global_header
    codec.open()
    return codec


class RoomEgressHub:
    """Fans a room's encoded media out to its egress sinks. Lifecycle: ``add(sink)`` starts the pump on the
    first sink; ``remove(sink)`` stops it after the last; ``close()`` stops it."""

    def __init__(self, room) -> None:
        self.room = room
        self.sinks: list[Sink] = []
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._aac = aac_encoder()
        self.aac_extradata: bytes = bytes(self._aac.extradata or b"")
        self.audio_packets_out = 0
        self.video_packets_out = 0

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)
        if self._task is None:
            self._queue = self.room.subscribe_encoded()
            self._task = asyncio.ensure_future(self._pump(self._queue))

    def remove(self, sink: Sink) -> None:
        with contextlib.suppress(ValueError):
            self.sinks.remove(sink)

    def request_keyframe(self) -> None:
        self.room.keyframes.request(None, reason="egress")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._queue is not None:
            self.room.unsubscribe_encoded(self._queue)
            self._queue = None

    async def _pump(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                for sink in list(self.sinks):
                    sink.room_stopped()
                return
            try:
                kind, payload = item
                if kind == "video":
                    self.video_packets_out += 1
                    media = MediaItem(
                        "video", bytes(payload), float(payload.pts) / VIDEO_CLOCK_HZ, bool(payload.is_keyframe)
                    )
                    for sink in list(self.sinks):
                        sink.feed(media)
                else:
                    for packet in self._encode_audio(payload):
                        self.audio_packets_out += 1
                        media = MediaItem("audio", bytes(packet), float(packet.pts) / AUDIO_RATE_HZ)
                        for sink in list(self.sinks):
                            sink.feed(media)
            except Exception:
                logger.exception("egress pump failed room_session_id=%s", self.room.room_session_id)

    def _encode_audio(self, frame: av.AudioFrame) -> list[av.Packet]:
        # A copy: the room shares the same frame object with every subscriber.
        copy = av.AudioFrame.from_ndarray(frame.to_ndarray(), format="s16", layout="mono")
        copy.sample_rate = AUDIO_RATE_HZ
        copy.pts = frame.pts
        copy.time_base = frame.time_base
        return [p for p in self._aac.encode(copy) if p.pts is not None]
