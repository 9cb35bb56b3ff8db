"""Video frames leave the jitter buffer at their marker-bit packet; gaps and marker-less senders keep aiortc's rule."""

from __future__ import annotations

import asyncio

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from media.tests.worker.synthetic import SolidColourTrack
from media.worker.ice import restrict_host_addresses
from media.worker.jitter import MarkerJitterBuffer, release_frames_on_marker


def packet(seq: int, timestamp: int, data: bytes, *, marker: bool = False) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=int(marker))
    p._data = data
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list:
    return [buffer.add(p)[1] for p in packets]


def test_a_frame_leaves_at_its_marker_packet_not_at_the_next_frame():
    frame = [packet(10, 3000, b"a"), packet(11, 3000, b"b"), packet(12, 3000, b"c", marker=True)]

    ours = feed(MarkerJitterBuffer(), frame)
    aiortcs = feed(JitterBuffer(capacity=512, is_video=True), frame)

    assert ours[:2] == [None, None]
    assert (ours[2].data, ours[2].timestamp) == (b"abc", 3000)
    assert aiortcs == [None, None, None]  # aiortc waits for the next frame's first packet


def test_consecutive_frames_each_leave_once():
    buffer = MarkerJitterBuffer()
    out = feed(
        buffer,
        [
            packet(1, 0, b"x", marker=True),
            packet(2, 3000, b"y1"),
            packet(3, 3000, b"y2", marker=True),
            packet(4, 6000, b"z", marker=True),
        ],
    )

    assert [f and f.data for f in out] == [b"x", None, b"y1y2", b"z"]


def test_a_missing_packet_holds_the_frame_until_its_retransmission_arrives():
    buffer = MarkerJitterBuffer()

    early = feed(buffer, [packet(20, 9000, b"1"), packet(22, 9000, b"3", marker=True)])
    late = buffer.add(packet(21, 9000, b"2"))[1]

    assert early == [None, None]
    assert late.data == b"123"


def test_without_markers_a_frame_leaves_when_the_next_one_starts():
    buffer = MarkerJitterBuffer()

    out = feed(buffer, [packet(5, 100, b"a"), packet(6, 100, b"b"), packet(7, 200, b"c")])

    assert out[:2] == [None, None]
    assert out[2].data == b"ab"


def on_receivers(install) -> tuple:
    """``install(receiver)``'s results for a fresh audio and a fresh video ``RTCRtpReceiver``."""

    async def run():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        audio = pc.addTransceiver("audio", direction="recvonly")
        video = pc.addTransceiver("video", direction="recvonly")
        results = (install(audio.receiver), install(video.receiver))
        await pc.close()
        return results

    return asyncio.run(run())


def test_only_video_receivers_are_changed():
    assert on_receivers(release_frames_on_marker) == (False, True)


def test_an_aiortc_peer_receives_every_frame_decoded_through_the_marker_buffer():
    """Real peers on 127.0.0.1: aiortc's sender (libx264, marker on each frame's last packet) to a receiver whose
    video jitter buffer was swapped; every decoded frame shows the sent colour."""

    async def run():
        restrict_host_addresses()
        sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sender.addTrack(SolidColourTrack((40, 60, 210), fps=30))
        transceiver = receiver.addTransceiver("video", direction="recvonly")
        assert release_frames_on_marker(transceiver.receiver)
        frames = []

        async def consume(track):
            while len(frames) < 20:
                frames.append(await track.recv())

        tasks = []
        receiver.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        deadline = asyncio.get_running_loop().time() + 60
        while (not tasks or not tasks[0].done()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        await sender.close()
        await receiver.close()
        return frames

    frames = asyncio.run(run())

    assert len(frames) == 20
    for frame in frames[2:]:
        centre = frame.to_ndarray(format="rgb24")[frame.height // 2, frame.width // 2].astype(int)
        assert np.all(np.abs(centre - (40, 60, 210)) <= 12), centre
