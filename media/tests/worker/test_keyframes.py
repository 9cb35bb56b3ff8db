"""The keyframe/REMB adapter and the shared encoder, without a network."""

from __future__ import annotations

import av
import numpy as np

from media.worker.encoder import VIDEO_TIME_BASE, SharedVideoEncoder
from media.worker.keyframes import KeyframeAdapter


def test_it_forces_one_keyframe_for_a_burst_of_requests():
    adapter = KeyframeAdapter(min_interval_ms=500)
    for member_id in ("a", "b", "c"):
        adapter.request(member_id)
    assert adapter.take(10.0) is True
    assert adapter.take(10.01) is False
    assert adapter.requests == 3
    assert adapter.keyframes == 1


def test_a_request_inside_the_rate_limit_window_is_served_when_it_ends():
    adapter = KeyframeAdapter(min_interval_ms=500)
    adapter.request("a")
    assert adapter.take(10.0) is True
    adapter.request("b")
    assert adapter.take(10.2) is False
    assert adapter.take(10.49) is False
    assert adapter.take(10.5) is True
    assert adapter.take(11.5) is False


def test_it_reports_the_lowest_fresh_remb():
    adapter = KeyframeAdapter()
    adapter.remb_update("a", 900_000, now_s=0.0)
    adapter.remb_update("b", 400_000, now_s=5.0)
    assert adapter.remb_min_bps(now_s=6.0) == 400_000
    assert adapter.remb_min_bps(now_s=16.0) is None  # both older than 10 s
    adapter.remb_update("a", 700_000, now_s=15.0)
    assert adapter.remb_min_bps(now_s=16.0) == 700_000
    adapter.remb_forget("a")
    assert adapter.remb_min_bps(now_s=16.0) is None


def _canvas(seed: int) -> av.VideoFrame:
    rng = np.random.default_rng(seed)
    return av.VideoFrame.from_ndarray(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), format="rgb24").reformat(
        format="yuv420p"
    )


def test_the_shared_encoder_emits_h264_packets_in_90khz_with_forced_keyframes():
    encoder = SharedVideoEncoder(640, 360, fps=15, bitrate_bps=800_000)
    kinds = []
    for i in range(6):
        packets = encoder.encode(_canvas(i), pts=i * 6000, keyframe=(i == 4))
        assert len(packets) == 1  # zerolatency: one packet per frame, no delay
        packet = packets[0]
        assert packet.time_base == VIDEO_TIME_BASE
        assert packet.pts == i * 6000
        kinds.append(packet.is_keyframe)
    assert kinds == [True, False, False, False, True, False]
    assert encoder.keyframes == 2


def test_a_large_bitrate_change_reopens_the_encoder_at_a_keyframe():
    encoder = SharedVideoEncoder(640, 360, fps=15, bitrate_bps=800_000)
    encoder.encode(_canvas(0), pts=0, keyframe=False)
    assert encoder.set_bitrate(850_000) is False
    assert encoder.encode(_canvas(1), pts=6000, keyframe=False)[0].is_keyframe is False
    assert encoder.set_bitrate(300_000) is True
    assert encoder.encode(_canvas(2), pts=12000, keyframe=False)[0].is_keyframe is True
