"""Synthetic members for loopback tests: an aiortc peer that sends a solid colour and a sine tone, and records
what it receives from the media worker (decoded canvas, keyframes, audio samples).

Everything stays on 127.0.0.1: ``RTCConfiguration(iceServers=[])`` and host candidates restricted by
``media.worker.ice.restrict_host_addresses`` (asserted on every SDP by ``assert_loopback_only``).
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

SAMPLE_RATE_HZ = 48000
FRAME_SAMPLES = 960
VIDEO_W, VIDEO_H = 320, 180


def assert_loopback_only(sdp: str) -> None:
    candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
    assert candidates, "no ICE candidates in SDP"
    for line in candidates:
        assert " 127.0.0.1 " in line, line


class SolidColourTrack(MediaStreamTrack):
    """``VIDEO_W``×``VIDEO_H`` frames of one RGB colour at ``fps``."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], fps: int = 15) -> None:
        super().__init__()
        image = np.empty((VIDEO_H, VIDEO_W, 3), np.uint8)
        image[:] = rgb
        self._yuv = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        self._fps = fps
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self._start + self._n / self._fps - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self._yuv.to_ndarray(), format="yuv420p")
        frame.pts = self._n * (90000 // self._fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


class SineTrack(MediaStreamTrack):
    """A mono 48 kHz int16 sine of ``frequency_hz`` in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, frequency_hz: float, amplitude: int = 8000) -> None:
        super().__init__()
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - time.monotonic()))
        t = (np.arange(FRAME_SAMPLES) + self._n * FRAME_SAMPLES) / SAMPLE_RATE_HZ
        pcm = (self.amplitude * np.sin(2 * np.pi * self.frequency_hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = self._n * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE_HZ)
        self._n += 1
        return frame


class SyntheticMember:
    """A client peer connection. ``rgb``/``tone_hz``: what it sends (None: send nothing of that kind);
    ``tone_amplitude``: the sine's peak, int16 scale.
    ``video=False``: no video m-line at all (an audio-only client)."""

    def __init__(
        self,
        rgb: tuple[int, int, int] | None,
        tone_hz: float | None,
        *,
        receive: bool = True,
        video_codecs: list | None = None,
        video: bool = True,
        tone_amplitude: int = 8000,
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.latest_frame: av.VideoFrame | None = None
        self.frames = 0
        self.keyframes = 0
        self.audio = np.zeros(0, np.int16)
        self.audio_frames = 0
        self._tasks: list[asyncio.Task] = []
        if not video:
            transceiver = None
        elif rgb is not None:
            transceiver = self.pc.addTransceiver(SolidColourTrack(rgb), direction="sendrecv" if receive else "sendonly")
        else:
            transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if video_codecs is not None and transceiver is not None:
            transceiver.setCodecPreferences(video_codecs)
        if tone_hz is not None:
            self.pc.addTransceiver(SineTrack(tone_hz, tone_amplitude), direction="sendrecv" if receive else "sendonly")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.latest_frame = frame
                self.frames += 1
                if frame.key_frame:
                    self.keyframes += 1
            else:
                samples = frame.to_ndarray().reshape(-1)
                if len(frame.layout.channels) == 2:
                    samples = samples[0::2]
                self.audio = np.concatenate([self.audio, samples])[-SAMPLE_RATE_HZ * 2 :]
                self.audio_frames += 1

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert_loopback_only(self.pc.localDescription.sdp)
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        assert_loopback_only(answer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pc.connectionState != "connected":
            assert time.monotonic() < deadline, f"ICE not connected: {self.pc.connectionState}"
            await asyncio.sleep(0.05)

    async def wait_for(self, predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    def canvas_rgb(self) -> np.ndarray:
        assert self.latest_frame is not None, "no video received"
        return self.latest_frame.to_ndarray(format="rgb24")

    def recent_audio(self, seconds: float) -> np.ndarray:
        return self.audio[-int(SAMPLE_RATE_HZ * seconds) :].astype(np.float64)

    async def send_pli(self) -> None:
        """Send an RTCP PLI for the worker's video stream, as a browser does on picture loss."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                receiver = transceiver.receiver
                sources = receiver.getSynchronizationSources()
                assert sources, "no video received yet"
                await receiver._send_rtcp_pli(sources[0].source)
                return
        raise AssertionError("no video transceiver")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def tone_magnitude(samples: np.ndarray, frequency_hz: float) -> float:
    """Magnitude of ``frequency_hz`` in ``samples`` (48 kHz), normalised by length (Hann window, ±2 bins)."""
    if samples.size == 0:
        return 0.0
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(samples * window)) / samples.size
    bin_hz = SAMPLE_RATE_HZ / samples.size
    k = int(round(frequency_hz / bin_hz))
    return float(spectrum[max(0, k - 2) : k + 3].max())
