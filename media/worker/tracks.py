"""Outbound tracks of a member's peer connection, fed by the room mixer.

- ``PacketVideoTrack``: ``recv()`` returns the shared ``av.Packet`` of the member's output group (``codec``:
  ``h264`` or ``vp8``, pts in 1/90000); aiortc's sender only packetizes it (``H264Encoder.pack`` /
  ``Vp8Encoder.pack``), so the canvas is encoded once per codec, not per member.
- ``MixedAudioTrack``: ``recv()`` returns the member's mix-minus as an Opus ``av.Packet`` (20 ms, pts in
  1/48000), encoded by the room for all members in one job per tick; aiortc's sender only packs it. A mix heard
  by several members (the full mix of listeners who are not sources, the silence of deaf members) is encoded once
  by a ``SharedOpusEncoder`` and each of their tracks takes the same payloads with its own pts.

Both keep a small queue and drop the oldest item when the member's sender falls behind, so a slow peer never
grows memory or delays the others. ``push()`` is called on the event loop.
"""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

AUDIO_RATE_HZ = 48000
AUDIO_SAMPLES = 960  # 20 ms at 48 kHz
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE_HZ)


class _QueueTrack(MediaStreamTrack):
    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def push(self, item) -> None:
        if self.readyState != "live":
            return
        if self._queue.full():
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except asyncio.QueueEmpty:
                pass
        self._queue.put_nowait(item)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        return item

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            # Wake a sender blocked in recv() so it ends instead of waiting forever.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)


class PacketVideoTrack(_QueueTrack):
    """The room canvas as shared ``av.Packet``s of one codec (one queue of 2 per member, oldest dropped).

    ``codec``: the output group it takes packets from (``media.worker.encoder.H264`` or ``VP8``); set by the
    member's peer connection from the negotiated codec (``set_codec``) before the sender starts.
    ``sent``/``keyframes_sent``: packets (and keyframes among them) handed to the member's sender.
    """

    kind = "video"

    def __init__(self, codec: str = "h264") -> None:
        super().__init__(maxsize=2)
        self.codec = codec
        self.sent = 0
        self.keyframes_sent = 0
        self._waiting_keyframe = True

    def set_codec(self, codec: str) -> None:
        """Move the track to another output group; what was queued (the other codec) is dropped."""
        if codec != self.codec:
            self.codec = codec
            self.restart_at_keyframe()

    def push(self, packet) -> None:
        """Queue a shared packet; a new receiver starts at a keyframe (earlier packets cannot be decoded)."""
        if self._waiting_keyframe:
            if not packet.is_keyframe:
                return
            self._waiting_keyframe = False
        super().push(packet)

    async def recv(self):
        packet = await super().recv()
        self.sent += 1
        if packet.is_keyframe:
            self.keyframes_sent += 1
        return packet

    def restart_at_keyframe(self) -> None:
        """Drop what is queued and wait for the next keyframe (the peer just connected, or lost the picture)."""
        self._waiting_keyframe = True
        while not self._queue.empty():
            self._queue.get_nowait()


OPUS_BITRATE_BPS = 48_000


def _opus_encoder() -> av.AudioCodecContext:
    """PyAV libopus for 20 ms mono s16 frames at 48 kHz, ``OPUS_BITRATE_BPS``."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = AUDIO_RATE_HZ, "mono", "s16"
    encoder.bit_rate = OPUS_BITRATE_BPS
    encoder.time_base = AUDIO_TIME_BASE
    return encoder


def _pcm_frame(pcm: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = AUDIO_RATE_HZ
    frame.pts = pts
    frame.time_base = AUDIO_TIME_BASE
    return frame


class SharedOpusEncoder:
    """One Opus encode of a mix that several members hear, per 20 ms tick.

    :meth:`encode` takes the tick's 960-sample int16 mono mix and returns the Opus payloads (``bytes``; one per
    frame, none while libopus fills its look-ahead on the first call); each listener's track wraps them with
    :meth:`MixedAudioTrack.take_payloads`. A listener moving between a shared mix and its own mix-minus gets
    packets of another encoder from then on, which an Opus decoder follows (each packet carries its own mode
    and bandwidth). Blocking CPU work (≈ 0.13 ms): call it from the room's audio thread only.
    """

    def __init__(self) -> None:
        self._encoder = _opus_encoder()
        self._pts = 0
        self.frames = 0  # mixes encoded

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        packets = self._encoder.encode(_pcm_frame(pcm, self._pts))
        self._pts += pcm.shape[-1]
        self.frames += 1
        return [bytes(packet) for packet in packets]


class MixedAudioTrack(_QueueTrack):
    """A member's mix-minus audio as Opus ``av.Packet``s (queue of 3 = 60 ms, oldest dropped).

    The room encodes every member's mix of a 20 ms tick in one executor job (:meth:`encode_pcm`, PyAV libopus,
    mono, 48 kb/s) and queues the packets (:meth:`push_packets`); aiortc's sender only packs them
    (``OpusEncoder.pack``). Letting each sender encode ``AudioFrame``s itself costs a thread hop per member per
    20 ms and aiortc's stereo resample (``docs/PERFORMANCE.md``, "Media worker").
    ``level_dbov``: the RFC 6464 level of the packet ``recv()`` returned last (measured on the mix before encoding),
    for the sender's ``ssrc-audio-level`` header extension (``media.worker.peer.report_audio_level``).
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__(maxsize=3)
        self._pts = 0
        self._encoder: av.AudioCodecContext | None = None
        # RFC 6464 level (dBov, -127..0) of each encoded frame by pts, and of the packet recv() returned last.
        self._levels: dict[int, int] = {}
        self.level_dbov: int | None = None

    def encode_pcm(self, pcm: np.ndarray) -> list[av.Packet]:
        """Encode one 960-sample int16 mono frame to Opus; packets carry a continuous pts in 1/48000 s.

        Blocking CPU work (≈ 0.13 ms): call it from an executor thread, one caller at a time.
        """
        if self._encoder is None:
            self._encoder = _opus_encoder()
        packets = self._encoder.encode(_pcm_frame(pcm, self._pts))
        for packet in packets:
            # libopus reports its 6.5 ms look-ahead as a negative first pts: keep the RTP clock on our frames.
            packet.pts = self._pts
            packet.time_base = AUDIO_TIME_BASE
        self._advance(audio_level_dbov(pcm), pcm.shape[-1])
        return packets

    def take_payloads(self, payloads: list[bytes], level_dbov: int, samples: int = AUDIO_SAMPLES) -> list[av.Packet]:
        """This track's packets for one tick of a shared mix: ``payloads`` from a :class:`SharedOpusEncoder`,
        ``level_dbov`` the mix's RFC 6464 level; the packets carry this track's own continuous pts."""
        packets = []
        for payload in payloads:
            packet = av.Packet(payload)
            packet.pts = self._pts
            packet.time_base = AUDIO_TIME_BASE
            packets.append(packet)
        self._advance(level_dbov, samples)
        return packets

    def _advance(self, level_dbov: int, samples: int) -> None:
        self._levels[self._pts] = level_dbov
        self._levels.pop(self._pts - 8 * AUDIO_SAMPLES, None)  # packets dropped from the queue leave theirs
        self._pts += samples

    def push_packets(self, packets: list[av.Packet]) -> None:
        """Queue encoded packets (event loop)."""
        for packet in packets:
            self.push(packet)

    async def recv(self):
        """The next packet; ``level_dbov`` is then its audio level (None if unknown)."""
        packet = await super().recv()
        self.level_dbov = self._levels.pop(packet.pts, None)
        return packet


def audio_level_dbov(pcm: np.ndarray) -> int:
    """RFC 6464 audio level of int16 samples: the RMS in dBov, rounded, -127 (silence) to 0 (RFC 6465 App. A)."""
    samples = pcm.reshape(-1).astype(np.float32)
    mean_square = float(np.dot(samples, samples)) / (max(1, samples.size) * 32767.0 * 32767.0)
    if mean_square <= 0:
        return -127
    return max(-127, min(0, round(10 * math.log10(mean_square))))


def encode_mixes(
    mixes: list[tuple[MixedAudioTrack, np.ndarray]], full: np.ndarray | None, shared: dict[str, SharedOpusEncoder]
) -> list[tuple[MixedAudioTrack, list[av.Packet]]]:
    """Audio executor thread: Opus-encode each distinct 20 ms mix of a tick once.

    ``mixes``: ``[(listener's track, int16 mix)]`` from ``audio.mix_minus``, which hands listeners who hear the
    same thing the same array object: the full mix (``full``) for listeners who are not sources at 0 dB output
    gain, one silence array for deaf members. Such an array heard by two or more listeners is encoded once by the
    room's ``shared["full"]`` / ``shared["silence"]`` encoder and every listener's track takes the payloads with
    its own pts; every other mix (a source's mix-minus) by its listener's own encoder. An audience of N costs one
    encode per tick, not N (``bench/listeners.py``).
    """
    by_array: dict[int, tuple[np.ndarray, list[MixedAudioTrack]]] = {}
    for track, pcm in mixes:
        by_array.setdefault(id(pcm), (pcm, []))[1].append(track)
    encoded = []
    for pcm, tracks in by_array.values():
        if len(tracks) > 1 and (pcm is full or not pcm.any()):
            payloads = shared["full" if pcm is full else "silence"].encode(pcm)
            level = audio_level_dbov(pcm)
            encoded.extend((track, track.take_payloads(payloads, level)) for track in tracks)
        else:
            encoded.extend((track, track.encode_pcm(pcm)) for track in tracks)
    return encoded
