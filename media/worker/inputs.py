"""Decoded member inputs handed to the room without a hop through the event loop.

aiortc 1.16's ``RTCRtpReceiver`` puts every complete encoded frame on a ``queue.Queue`` read by its own decoder
thread, which hands each decoded frame back to the event loop with ``asyncio.run_coroutine_threadsafe`` (a task,
a future and a wake-up of the loop per frame), where the room's drain coroutine takes it from the track's
``asyncio.Queue``. For a room that is ≈ 80 hand-offs per second per member (50 audio frames, 30 video frames),
plus, for audio, aiortc's stereo decode and the room's downmix on the loop.

:func:`decode_directly` replaces a receiver's decoder queue (a private attribute, checked as for
``media.worker.jitter``) with an :class:`InputSink` before the receiver starts; aiortc's own decoder thread is
still started on it and waits on the original queue, which only ever receives the receiver's stop (``None``), so
it ends the track as before. Encoded frames go to Parley's decoding instead:

- **video** (:class:`VideoSink`): one thread per input decodes with aiortc's decoder for the codec
  (``aiortc.codecs.get_decoder``: H.264 via PyAV/FFmpeg, VP8 via libvpx) and stores the newest
  ``av.VideoFrame`` (yuv420p, the sender's size) straight into the bound ``MemberMedia.latest_video``; a decode
  error makes the receiver send a PLI, as aiortc's thread does (RFC 4585 §6.3.1).
- **audio** (:class:`AudioSink`): encoded frames are queued (a deque append on the loop) and decoded by the room's
  audio thread once per 20 ms tick (:meth:`AudioSink.decode_pending`): Opus straight to 48 kHz mono s16 (libopus
  downmixes), other codecs through aiortc's decoder and ``MonoPcm``.

A sink is bound to the ``MemberMedia`` that shows or mixes it (``bind``) and unbound when that member leaves the
room (``unbind``); an unbound sink drops what arrives without decoding it. ``input_sink(track)`` finds the sink of
a received track (None for a track that is not a receiver's, such as a playback's, which the room drains).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import weakref
from typing import Any

import av
import numpy as np
from aiortc.codecs import get_decoder

from media.worker.tracks import AUDIO_RATE_HZ, AUDIO_SAMPLES

logger = logging.getLogger(__name__)

AUDIO_PENDING_MAX = 50  # encoded audio frames kept for the next tick (1 s): beyond that the oldest go
_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"
_ERROR_ATTRIBUTE = "_RTCRtpReceiver__decoder_error"

# Every sink installed by decode_directly, by receiver (the room looks a track's sink up).
_SINKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class InputSink:
    """Stands in for a receiver's decoder ``queue.Queue``: ``put((codec, JitterFrame))`` from the receiver (event
    loop) goes to :meth:`accept`; ``put(None)`` (the receiver stops) closes the sink and is passed on to aiortc's
    decoder thread, which waits on the original queue through :meth:`get`."""

    def __init__(self, original: queue.Queue, decode_error: threading.Event | None) -> None:
        self._original = original
        self._decode_error = decode_error
        self.member: Any = None  # the bound MemberMedia
        self.closed = False
        self.frames_decoded = 0
        self.decode_errors = 0

    # -- the receiver's side -------------------------------------------------------------------------------
    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self.close()
            self._original.put(None)
            return
        if not self.closed and self.member is not None:
            self.accept(*item)

    def get(self, block: bool = True, timeout: float | None = None):
        """aiortc's decoder thread: only the stop marker ever arrives."""
        return self._original.get(block, timeout)

    # -- the room's side -----------------------------------------------------------------------------------
    def bind(self, member) -> None:
        """Decode into ``member`` (a ``MemberMedia``) from now on (event loop)."""
        self.member = member

    def unbind(self) -> None:
        """Stop decoding; what arrives from now on is dropped (event loop)."""
        self.member = None

    def accept(self, codec, encoded_frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        self.member = None

    def _report_decode_error(self, codec, error: Exception) -> None:
        self.decode_errors += 1
        logger.warning("failed to decode %s frame: %s", codec.name, error)
        if self._decode_error is not None:
            self._decode_error.set()  # the receiver sends a PLI with its next video packet


class VideoSink(InputSink):
    """Decodes a video input in its own thread (``video-decoder``, started with the first frame) into the bound
    member's ``latest_video`` and ``frames_in``.

    ``clear()`` (the room's decode gate closing) drops the member's frame under the same lock the decoder stores
    under, so a frame decoded just before the gate closed never reappears afterwards.
    """

    def __init__(self, original: queue.Queue, decode_error: threading.Event | None) -> None:
        super().__init__(original, decode_error)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._showing = True

    def accept(self, codec, encoded_frame) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="video-decoder", daemon=True)
            self._thread.start()
        self._queue.put((codec, encoded_frame))

    def clear(self) -> None:
        """The member's video left the canvas: forget its frame, store none until :meth:`show` (event loop)."""
        with self._lock:
            self._showing = False
            if self.member is not None:
                self.member.latest_video = None

    def show(self) -> None:
        with self._lock:
            self._showing = True

    def close(self) -> None:
        super().close()
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        codec_name = None
        decoder = None
        while True:
            item = self._queue.get()
            if item is None:
                return
            codec, encoded_frame = item
            if codec.name != codec_name:
                decoder, codec_name = get_decoder(codec), codec.name
            try:
                frames = decoder.decode(encoded_frame)
            except av.FFmpegError as error:
                self._report_decode_error(codec, error)  # the decoder keeps its state until the next keyframe
                continue
            for frame in frames:
                self.frames_decoded += 1
                with self._lock:
                    member = self.member
                    if member is not None and self._showing:
                        member.latest_video = frame
                        member.frames_in += 1


class AudioSink(InputSink):
    """Queues an audio input's encoded frames (oldest dropped beyond ``AUDIO_PENDING_MAX``) for the room's audio
    thread, which decodes them with :meth:`decode_pending` once per tick."""

    def __init__(self, original: queue.Queue, decode_error: threading.Event | None) -> None:
        super().__init__(original, decode_error)
        self._pending: collections.deque = collections.deque(maxlen=AUDIO_PENDING_MAX)
        self._decoder = None
        self._codec_name: str | None = None
        self._mono = None
        self._opus = False

    def accept(self, codec, encoded_frame) -> None:
        self._pending.append((codec, encoded_frame))

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def decode_pending(self) -> list[np.ndarray]:
        """Decode what arrived since the last call: 20 ms chunks of 48 kHz mono int16 (960 samples each).

        Blocking CPU work (≈ 20–40 µs per Opus frame): the room's audio thread, one caller at a time. A frame
        that fails to decode is logged and skipped (Opus has no inter-frame state to repair).
        """
        chunks: list[np.ndarray] = []
        while self._pending:
            codec, encoded_frame = self._pending.popleft()
            if codec.name != self._codec_name:
                self._decoder, self._codec_name, self._mono = _audio_decoder(codec), codec.name, MonoPcm()
                self._opus = codec.name.lower() == "opus"  # PyAV's decoder takes packets, aiortc's JitterFrames
            try:
                frames = self._decoder.decode(av.Packet(encoded_frame.data) if self._opus else encoded_frame)
            except av.FFmpegError as error:
                self._report_decode_error(codec, error)
                continue
            for frame in frames:
                self.frames_decoded += 1
                chunks.extend(self._mono.chunks(frame))
        return chunks


class MonoPcm:
    """A member's decoded audio → 20 ms chunks of 48 kHz mono int16 (``AUDIO_SAMPLES`` samples each).

    aiortc's Opus decoder hands out packed s16 stereo at 48 kHz; those frames are averaged to mono with numpy
    ((L + R) / 2, as libswresample downmixes by default, within one LSB), about a third of the cost of a resampler
    on the event loop. Any other format goes through ``av.AudioResampler``. Frames of other sizes are re-chunked.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._carry = np.zeros(0, dtype=np.int16)

    def chunks(self, frame: av.AudioFrame) -> list[np.ndarray]:
        channels = len(frame.layout.channels)
        if (
            self._resampler is None
            and frame.format.name == "s16"
            and frame.sample_rate == AUDIO_RATE_HZ
            and channels <= 2
        ):
            samples = frame.to_ndarray().reshape(-1)
            if channels == 2:
                samples = ((samples[0::2].astype(np.int32) + samples[1::2]) >> 1).astype(np.int16)
        else:
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE_HZ)
            resampled = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
            samples = np.concatenate(resampled).astype(np.int16, copy=False) if resampled else self._carry[:0]
        if self._carry.size:
            samples = np.concatenate((self._carry, samples))
        count = samples.shape[0] // AUDIO_SAMPLES
        self._carry = samples[count * AUDIO_SAMPLES :].copy()
        return [samples[i * AUDIO_SAMPLES : (i + 1) * AUDIO_SAMPLES] for i in range(count)]


def _audio_decoder(codec):
    """Opus: a libopus decoder that outputs 48 kHz mono s16 itself; any other codec: aiortc's decoder."""
    if codec.name.lower() == "opus":
        decoder = av.CodecContext.create("libopus", "r")
        decoder.format, decoder.layout, decoder.sample_rate = "s16", "mono", AUDIO_RATE_HZ
        return decoder
    return get_decoder(codec)


def decode_directly(receiver) -> InputSink | None:
    """Give an ``RTCRtpReceiver`` an :class:`InputSink` (video or audio by the receiver's kind) in place of its
    decoder queue; call before ``receive()``. Returns None (receiver unchanged) for an aiortc without the
    attribute or a receiver already started."""
    if receiver in _SINKS:
        return _SINKS[receiver]
    original = getattr(receiver, _ATTRIBUTE, None)
    if not isinstance(original, queue.Queue) or getattr(receiver, "_RTCRtpReceiver__decoder_thread", None):
        return None
    decode_error = getattr(receiver, _ERROR_ATTRIBUTE, None)
    cls = VideoSink if getattr(receiver, "_RTCRtpReceiver__kind", None) == "video" else AudioSink
    sink = cls(original, decode_error if isinstance(decode_error, threading.Event) else None)
    setattr(receiver, _ATTRIBUTE, sink)
    _SINKS[receiver] = sink
    return sink


def input_sink(track) -> InputSink | None:
    """The :class:`InputSink` of a received ``track``, or None (a playback's track, or an unpatched receiver)."""
    if track is None:
        return None  # a receiver has no track before its remote description
    for receiver, sink in list(_SINKS.items()):
        if getattr(receiver, "_track", None) is track:
            return sink
    return None
