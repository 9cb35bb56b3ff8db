"""A video receiver's REMB goes out at most every 200 ms unless the estimate drops by 3 % or more
(``media.worker.remb``); other RTCP is untouched. Real aiortc peers on 127.0.0.1 for the end-to-end part."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from media.tests.worker.synthetic import SolidColourTrack
from media.tests.worker.test_jitter import on_receivers
from media.worker.ice import restrict_host_addresses
from media.worker.remb import RembThrottle, throttle_remb

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
