"""Members' decoded audio becomes 20 ms mono int16 chunks: aiortc's packed stereo s16 is downmixed as
libswresample would, other formats go through a resampler, odd frame sizes are re-chunked."""

from __future__ import annotations

import av
import numpy as np

from media.worker.inputs import MonoPcm
from media.worker.tracks import AUDIO_RATE_HZ, AUDIO_SAMPLES


def stereo_frame(samples: np.ndarray, pts: int = 0) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate, frame.pts = AUDIO_RATE_HZ, pts
    return frame


def noise(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((count, 2)) * 6000).clip(-32768, 32767).astype(np.int16)


def test_stereo_s16_is_downmixed_like_libswresample():
    samples = noise(AUDIO_SAMPLES, 1)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE_HZ, frame_size=AUDIO_SAMPLES)
    (expected,) = [out.to_ndarray().reshape(-1) for out in resampler.resample(stereo_frame(samples))]

    (chunk,) = MonoPcm().chunks(stereo_frame(samples))

    assert chunk.dtype == np.int16 and chunk.shape == (AUDIO_SAMPLES,)
    assert np.abs(chunk.astype(np.int32) - expected).max() <= 1


def test_10_ms_frames_are_rechunked_to_20_ms_without_losing_samples():
    samples = noise(4 * AUDIO_SAMPLES // 2, 2)
    mono = MonoPcm()
    chunks = []
    for i in range(4):
        chunks += mono.chunks(stereo_frame(samples[i * 480 : (i + 1) * 480], pts=i * 480))

    assert len(chunks) == 2
    expected = (samples[:, 0].astype(np.int32) + samples[:, 1]) >> 1
    assert np.array_equal(np.concatenate(chunks), expected)


def test_planar_float_goes_through_the_resampler():
    tone = (0.25 * np.sin(2 * np.pi * 440 * np.arange(AUDIO_SAMPLES * 3) / AUDIO_RATE_HZ)).astype(np.float32)
    mono = MonoPcm()
    chunks = []
    for i in range(3):
        part = tone[i * AUDIO_SAMPLES : (i + 1) * AUDIO_SAMPLES]
        frame = av.AudioFrame.from_ndarray(np.stack([part, part]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE_HZ, i * AUDIO_SAMPLES
        chunks += mono.chunks(frame)

    assert len(chunks) >= 2 and all(c.shape == (AUDIO_SAMPLES,) and c.dtype == np.int16 for c in chunks)
    peak = np.abs(np.concatenate(chunks)).max()
    assert 0.2 * 32767 < peak < 0.3 * 32767
