"""A video receiver's REMB goes out at most every 200 ms unless the estimate drops by 3 % or more
(``media.worker.remb``); other RTCP is untouched. Real aiortc peers on 127.0.0.1 for the end-to-end part."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rate import RateCounter, RemoteBitrateEstimator
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from media.tests.worker.synthetic import SolidColourTrack
from media.tests.worker.test_jitter import on_receivers
from media.worker.ice import restrict_host_addresses
from media.worker.remb import (
    LeanRemoteBitrateEstimator,
    RembThrottle,
    WindowRate,
    lean_bitrate_estimator,
    throttle_remb,
)

TIMEOUT_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_steady_estimate_is_sent_every_200_ms_and_a_drop_at_once():
    clock = Clock()
    throttle = RembThrottle(clock=clock)

    assert throttle.allow(1_000_000)
    assert [throttle.allow(1_000_000) for _ in range(50)] == [False] * 50  # a burst at the same time
    assert not throttle.allow(985_000)  # 1.5 % lower: waits
    assert throttle.allow(960_000)  # 4 % lower: at once
    clock.now_s += 0.1
    assert not throttle.allow(1_200_000)  # higher: waits for the interval
    clock.now_s += 0.11
    assert throttle.allow(1_200_000)
    assert (throttle.sent, throttle.skipped) == (3, 52)


def video_packets(seed: int, seconds: float = 60.0):
    """(arrival ms, abs-send-time, payload bytes, ssrc) of a 30 fps sender with 1-4 packets a frame, network
    jitter, a queue building up and draining (over- and under-use), reordering, a 1.5 s outage, a second SSRC and
    the 24-bit abs-send-time wrapping (it wraps every 64 s; the stream starts 10 s before)."""
    rng = random.Random(seed)
    packets = []
    queue_ms = 0.0
    frame = 0
    while frame / 30 < seconds:
        send_s = 54.0 + frame / 30
        if 20.0 <= send_s - 54.0 < 21.5:  # outage: nothing arrives
            frame += 1
            continue
        phase = (frame // 150) % 3  # 5 s calm, 5 s congested (queue grows), 5 s draining
        queue_ms = max(
            0.0, queue_ms + (rng.uniform(0.5, 2.0) if phase == 1 else -rng.uniform(0.0, 3.0) if phase == 2 else 0)
        )
        for index in range(rng.randint(1, 4)):
            abs_send_time = int((send_s + index * 0.0002) * (1 << 18)) & 0xFFFFFF
            arrival_ms = int((send_s + 1000) * 1000 + queue_ms + rng.uniform(0, 4))
            packets.append([arrival_ms, abs_send_time, rng.randint(200, 1200), 1111 if frame % 50 else 2222])
        frame += 1
    for index in range(1, len(packets) - 1, 37):  # swap neighbours' abs-send-time: reordered in the network
        packets[index][1], packets[index + 1][1] = packets[index + 1][1], packets[index][1]
    arrival = 0
    for packet in packets:  # arrival times as a clock reads them: never backwards
        arrival = packet[0] = max(arrival, packet[0])
    return packets


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_lean_estimator_sends_the_same_estimates_as_aiortcs(seed):
    aiortc_estimator, lean = RemoteBitrateEstimator(), LeanRemoteBitrateEstimator()
    expected, got, states = [], [], set()
    for arrival_ms, abs_send_time, size, ssrc in video_packets(seed):
        packet = {"arrival_time_ms": arrival_ms, "abs_send_time": abs_send_time, "payload_size": size, "ssrc": ssrc}
        expected.append(aiortc_estimator.add(**packet))
        got.append(lean.add(**packet))
        states.add(lean.detector.hypothesis.name)

    estimates = [remb for remb in expected if remb is not None]
    assert len(estimates) > 100 and len({bitrate for bitrate, _ in estimates}) > 20  # the estimate moved
    assert states == {"NORMAL", "OVERUSING", "UNDERUSING"}  # the stream took the detector through every state
    assert got == expected


def test_the_window_rate_matches_aiortcs_counter_across_gaps_and_resets():
    rng = random.Random(7)
    reference, window = RateCounter(1000, 8000), WindowRate(1000, 8000)
    now_ms = 5_000
    for step in range(5_000):
        now_ms += rng.choice([0, 0, 1, 3, 33, 250, 1_700]) if step % 200 else 0
        if step % 900 == 899:
            reference.reset()
            window.reset()
        size = rng.randint(1, 1400)
        assert window.rate(now_ms) == reference.rate(now_ms)
        reference.add(size, now_ms)
        window.add(size, now_ms)
    assert window.rate(now_ms + 999) == reference.rate(now_ms + 999)
    assert window.rate(now_ms + 1000) is reference.rate(now_ms + 1000) is None  # everything has left the window


def test_only_video_receivers_get_the_lean_estimator():
    audio, video = on_receivers(lean_bitrate_estimator)
    assert audio is None and isinstance(video, LeanRemoteBitrateEstimator)


def test_only_video_receivers_are_throttled():
    audio, video = on_receivers(throttle_remb)
    assert audio is None and isinstance(video, RembThrottle)


def test_the_sender_gets_one_remb_of_a_burst_and_the_next_one_after_the_interval():
    async def run():
        restrict_host_addresses()
        clock = Clock()
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        rtp_sender = sender.addTrack(SolidColourTrack((40, 60, 210), fps=15))
        transceiver = receiver.addTransceiver("video", direction="recvonly")
        throttle = throttle_remb(transceiver.receiver, clock=clock)
        seen = []
        handle = rtp_sender._handle_rtcp_packet

        async def record(packet):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if bitrate in (500_000, 510_000):  # the test's own estimates, not the receiver's
                    seen.append(bitrate)
            await handle(packet)

        rtp_sender._handle_rtcp_packet = record
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT_S
        while receiver.connectionState != "connected":
            assert loop.time() < deadline, "no connection"
            await asyncio.sleep(0.05)

        async def remb(bitrate: int) -> None:
            packet = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bitrate, [rtp_sender._ssrc])
            )
            await transceiver.receiver._send_rtcp(packet)

        clock.now_s += 10  # past any estimate the receiver sent on its own
        for _ in range(20):
            await remb(500_000)
        clock.now_s += 0.3
        await remb(510_000)  # the interval has passed: sent
        while len(seen) < 2:
            assert loop.time() < deadline, f"REMB not received: {seen}"
            await asyncio.sleep(0.05)
        await sender.close()
        await receiver.close()
        return seen, throttle

    seen, throttle = asyncio.run(run())

    assert seen == [500_000, 510_000]
    assert throttle.skipped >= 19
