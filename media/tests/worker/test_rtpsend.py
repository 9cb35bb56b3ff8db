"""Shared packetization (``media.worker.rtpsend``) between real aiortc peers on 127.0.0.1: one libx264 canvas
stream fanned out to two members, each sender stamping its own RTP header on payloads packetized once."""

from __future__ import annotations

import asyncio
import struct

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtpPacket

from media.worker.encoder import H264, SharedVideoEncoder
from media.worker.ice import restrict_host_addresses
from media.worker.keyframes import KeyframeAdapter
from media.worker.peer import codec_preferences
from media.worker.rtpsend import SharedPacketizer
from media.worker.tracks import PacketVideoTrack

pytestmark = pytest.mark.media

COLOUR = (40, 60, 210)
WIDTH, HEIGHT, FPS = 320, 240, 30
TIMEOUT_S = 60.0


def solid_frame(rgb) -> av.VideoFrame:
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[:] = rgb
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


class Member:
    """A member's canvas sender on the room side and an aiortc receiver on the member's side."""

    def __init__(self, name: str, adapter: KeyframeAdapter) -> None:
        self.name = name
        self.adapter = adapter
        self.track = PacketVideoTrack(H264)
        self.server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.transceiver = self.server.addTransceiver(self.track, direction="sendonly")
        self.transceiver.setCodecPreferences(codec_preferences(H264))
        adapter.install(self.transceiver.sender, name)
        self.stream = self.transceiver.sender.shared_packet_stream
        self.rtp: list[RtpPacket] = []  # every RTP packet the member's receiver got, RTX still wrapped
        self.frames: list[av.VideoFrame] = []
        self._tasks: list[asyncio.Task] = []
        self.client.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._consume(track))))

    async def _consume(self, track) -> None:
        while True:
            try:
                self.frames.append(await track.recv())
            except Exception:
                return

    async def connect(self) -> None:
        await self.server.setLocalDescription(await self.server.createOffer())
        await self.client.setRemoteDescription(self.server.localDescription)
        receiver = self.client.getTransceivers()[0].receiver
        handle = receiver._handle_rtp_packet

        async def record(packet, arrival_time_ms):
            self.rtp.append(packet)
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = record
        self.receiver = receiver
        await self.client.setLocalDescription(await self.client.createAnswer())
        await self.server.setRemoteDescription(self.client.localDescription)

    @property
    def sender(self):
        return self.transceiver.sender

    def media_packets(self) -> list[RtpPacket]:
        return [p for p in self.rtp if p.ssrc == self.sender._ssrc]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.server.close()
        await self.client.close()


async def wait_for(predicate, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Room:
    """One encoder and packetizer feeding the members' tracks at 30 fps, as ``RoomMixer`` does."""

    def __init__(self, members: list[Member], adapter: KeyframeAdapter, packetizer: SharedPacketizer) -> None:
        self.members = members
        self.adapter = adapter
        self.packetizer = packetizer
        self.encoder = SharedVideoEncoder(WIDTH, HEIGHT, fps=FPS, bitrate_bps=400_000)
        self.index = 0
        self.packets = 0
        self.keyframe_timestamps: list[int] = []

    async def feed(self, frames: int, tracks=None, *, prepack: bool = True) -> None:
        for _ in range(frames):
            pts = self.index * (90000 // FPS)
            packets = self.encoder.encode(solid_frame(COLOUR), pts=pts, keyframe=self.adapter.take())
            self.index += 1
            for packet in packets:
                self.packets += 1
                if packet.is_keyframe:
                    self.keyframe_timestamps.append(pts)
                if prepack:
                    self.packetizer.pack(packet)
                for track in tracks if tracks is not None else [m.track for m in self.members]:
                    track.push(packet)
            await asyncio.sleep(1 / FPS)


async def open_room(count: int = 2) -> tuple[Room, list[Member]]:
    restrict_host_addresses()
    packetizer = SharedPacketizer(H264)
    adapter = KeyframeAdapter(packetizer=packetizer, min_interval_ms=0)
    members = [Member(f"m{i}", adapter) for i in range(count)]
    for member in members:
        await member.connect()
    await wait_for(lambda: all(m.server.connectionState == "connected" for m in members), "connections")
    return Room(members, adapter, packetizer), members


def assert_contiguous(sequence_numbers: list[int]) -> None:
    """Every number from the first to the last received (mod 2^16), in order of first arrival."""
    seen = list(dict.fromkeys(sequence_numbers))
    first = seen[0]
    offsets = sorted((s - first) % 65536 for s in seen)
    assert offsets == list(range(len(offsets))), "gap in the RTP sequence numbers"


def test_two_members_decode_one_packetization_with_their_own_headers():
    async def run():
        room, members = await open_room(2)
        try:
            await room.feed(45)
            await wait_for(lambda: all(len(m.frames) >= 30 for m in members), "decoded frames at both members")
            return room, members
        finally:
            for member in members:
                await member.close()

    room, members = asyncio.run(run())

    # Each encoded packet was packetized once, for both members.
    assert room.packetizer.packed == room.packets
    for member in members:
        assert member.stream is not None and member.stream.frames >= 30
        for frame in member.frames[2:]:
            centre = frame.to_ndarray(format="rgb24")[HEIGHT // 2, WIDTH // 2].astype(int)
            assert np.all(np.abs(centre - COLOUR) <= 12), centre
        packets = member.media_packets()
        assert len(packets) == member.stream.packets
        assert {p.payload_type for p in packets} == {member.transceiver._codecs[0].payloadType}
        assert {p.extensions.mid for p in packets} == {member.transceiver.mid}
        assert all(p.extensions.abs_send_time is not None for p in packets)
        assert_contiguous([p.sequence_number for p in packets])
        # The marker bit is on the last packet of each frame (one RTP timestamp per frame) and only there.
        by_timestamp: dict[int, list[RtpPacket]] = {}
        for packet in packets:
            by_timestamp.setdefault(packet.timestamp, []).append(packet)
        for frame_packets in by_timestamp.values():
            assert [p.marker for p in frame_packets] == [0] * (len(frame_packets) - 1) + [1]
    # Same payloads, different SSRCs, sequence numbers and timestamp origins.
    a, b = (m.media_packets() for m in members)
    assert a[-1].payload == b[-1].payload and a[-1].ssrc != b[-1].ssrc
    # What the loop sends parses and re-serializes to the same bytes through aiortc's own RtpPacket.
    sender = members[0].sender
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
    for raw in list(members[0].stream._history.values())[:20]:
        assert RtpPacket.parse(raw, extensions_map).serialize(extensions_map) == raw


def test_sequence_numbers_continue_across_a_keyframe_restart_and_a_track_replacement():
    async def run():
        room, members = await open_room(1)
        (member,) = members
        try:
            await room.feed(15, prepack=False)
            await wait_for(lambda: len(member.frames) >= 5, "first frames")
            # The member lost the picture: its track drops what is queued and waits for the next keyframe.
            member.track.restart_at_keyframe()
            room.adapter.request(member.name)
            await room.feed(15, prepack=False)
            # The sender gets a new track; the old one still delivers until the sender has moved over.
            old, new = member.track, PacketVideoTrack(H264)
            member.sender.replaceTrack(new)
            room.adapter.request(member.name)
            await room.feed(3, tracks=[old, new])
            await room.feed(15, tracks=[new])
            before = len(member.frames)
            await room.feed(15, tracks=[new])
            await wait_for(lambda: len(member.frames) > before + 5, "frames from the new track")
            return room, member, new
        finally:
            await member.close()

    room, member, new = asyncio.run(run())

    assert len(room.keyframe_timestamps) >= 3  # the first frame, the restart, the replacement
    assert new.sent > 0
    packets = member.media_packets()
    assert_contiguous([p.sequence_number for p in packets])
    timestamps = [p.timestamp for p in packets]
    assert all((b - a) % 2**32 < 2**31 for a, b in zip(timestamps, timestamps[1:], strict=False))


def test_a_nack_is_answered_with_an_rtx_retransmission_and_a_pli_reaches_the_group():
    async def run():
        room, members = await open_room(1)
        (member,) = members
        try:
            await room.feed(20)
            await wait_for(lambda: len(member.frames) >= 5, "first frames")
            media = member.media_packets()
            lost = media[-3].sequence_number
            ssrc = member.sender._ssrc
            await member.receiver._send_rtcp_nack(ssrc, [lost])
            await wait_for(lambda: member.stream.retransmits >= 1, "the retransmission")
            rtx_ssrc = member.sender._rtx_ssrc
            await wait_for(lambda: any(p.ssrc == rtx_ssrc for p in member.rtp), "the RTX packet at the member")
            requests = room.adapter.requests_by_member[member.name]
            await member.receiver._send_rtcp_pli(ssrc)
            await wait_for(lambda: room.adapter.requests_by_member[member.name] > requests, "the PLI")
            return member, media[-3], rtx_ssrc
        finally:
            await member.close()

    member, original, rtx_ssrc = asyncio.run(run())

    (rtx,) = [p for p in member.rtp if p.ssrc == rtx_ssrc]
    assert rtx.payload_type != original.payload_type
    # RFC 4588: the original sequence number, then the original payload; same timestamp.
    assert struct.unpack("!H", rtx.payload[:2])[0] == original.sequence_number
    assert rtx.payload[2:] == original.payload
    assert rtx.timestamp == original.timestamp
