"""Output codec groups end to end: real aiortc members on 127.0.0.1 offering VP8 only, H.264 only or both; the
canvas is encoded once per codec group, never per member; PLI/FIR reach the member's own group; egress takes
H.264 even when every member receives VP8."""

from __future__ import annotations

import asyncio
import contextlib
import time

import av
import numpy as np
import pytest
from aiortc import sdp
from aiortc.rtcrtpsender import RTCRtpSender

from media import protocol
from media.egress.hub import RoomEgressHub
from media.tests.worker.conftest import join, latest_layout, listen_room_events, placed_channel, request
from media.tests.worker.synthetic import SyntheticMember
from media.tests.worker.test_room_loopback import close_to, colour_at
from media.worker.encoder import VIDEO_TIME_BASE, SharedVp8Encoder

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (40, 60, 230)
SESSION_FPS = 15


def capabilities(*mime_types: str, profile: str = "42e01f") -> list:
    """aiortc's video capabilities restricted to ``mime_types`` (H.264: one profile only)."""
    return [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType in mime_types and (c.mimeType != "video/H264" or c.parameters["profile-level-id"] == profile)
    ]


VP8_ONLY = capabilities("video/VP8", "video/rtx")
H264_ONLY = capabilities("video/H264", "video/rtx")


def video_codec_names(session_description: str) -> set[str]:
    """The codec names of the first video m-line of an SDP (``{"VP8", "rtx"}``…)."""
    media = next(m for m in sdp.SessionDescription.parse(session_description).media if m.kind == "video")
    return {codec.name for codec in media.rtp.codecs}


def negotiated_video_codec(client: SyntheticMember) -> str:
    """The codec the client's video transceiver negotiated (what it decodes the canvas with)."""
    transceiver = next(t for t in client.pc.getTransceivers() if t.kind == "video")
    return transceiver._codecs[0].mimeType


@contextlib.asynccontextmanager
async def room_with(channel_layer, worker, make_session, make_member, specs):
    """A room whose members are ``specs``: ``[(rgb, video_codecs or None)]``; yields ``(session, members,
    clients, answers, events)`` once every client is connected."""
    session = await make_session(fps=SESSION_FPS)
    members = [await make_member(session, name=f"m{i}") for i in range(len(specs))]
    clients = [SyntheticMember(rgb, 400.0 + 300 * i, video_codecs=codecs) for i, (rgb, codecs) in enumerate(specs)]
    events = await listen_room_events(channel_layer, session)
    answers = []
    try:
        for member, client in zip(members, clients, strict=True):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
            answers.append(reply["sdp"])
        await asyncio.gather(*(c.wait_connected() for c in clients))
        yield session, members, clients, answers, events
    finally:
        for client in clients:
            await client.close()


def sees(client: SyntheticMember, rects: dict, expected: dict) -> bool:
    """The client's latest decoded canvas shows ``expected[member_id]`` inside ``rects[member_id]``."""
    if client.latest_frame is None:
        return False
    canvas = client.canvas_rgb()
    return all(close_to(colour_at(canvas, rects[member_id]), rgb) for member_id, rgb in expected.items())


async def wait_until(predicate, *, timeout_s: float = 30.0, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_vp8_only_member_receives_vp8_and_everyone_sees_everyone(
    channel_layer, worker, make_session, make_member
):
    specs = [(RED, VP8_ONLY), (GREEN, H264_ONLY), (BLUE, None)]
    async with room_with(channel_layer, worker, make_session, make_member, specs) as parts:
        session, members, clients, answers, events = parts
        ids = [str(m.id) for m in members]
        room = worker.rooms[str(session.id)]

        # The VP8-only member was answered VP8 only; the others H.264 (preferred when an offer has both).
        assert video_codec_names(answers[0]) == {"VP8", "rtx"}
        assert video_codec_names(answers[1]) == {"H264", "rtx"}
        assert video_codec_names(answers[2]) == {"H264", "rtx"}
        assert [negotiated_video_codec(c) for c in clients] == ["video/VP8", "video/H264", "video/H264"]
        assert [room.members[i].video_out.codec for i in ids] == ["vp8", "h264", "h264"]

        layout = await latest_layout(channel_layer, events, 3)
        rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
        expected = dict(zip(ids, (RED, GREEN, BLUE), strict=True))
        for client in clients:
            await wait_until(lambda c=client: sees(c, rects, expected), what="every colour in every canvas")
        # Both groups encode the same canvas size: one composite, two encodes.
        assert {(c.latest_frame.width, c.latest_frame.height) for c in clients} == {(640, 360)}


async def test_the_canvas_is_encoded_once_per_codec_group_not_per_member(
    channel_layer, worker, make_session, make_member
):
    specs = [(RED, VP8_ONLY), (GREEN, H264_ONLY), (BLUE, H264_ONLY)]
    async with room_with(channel_layer, worker, make_session, make_member, specs) as (session, _m, clients, *_):
        room = worker.rooms[str(session.id)]
        h264, vp8 = room.video_groups["h264"], room.video_groups["vp8"]
        assert set(room.video_groups) == {"h264", "vp8"}
        for client in clients:
            await wait_until(lambda c=client: c.frames > 10, what="video at every member")

        started_s = time.monotonic()
        h264_frames, vp8_frames = h264.encoder.frames, vp8.encoder.frames
        h264_out, vp8_out = h264.packets_out, vp8.packets_out
        received = [c.frames for c in clients]
        await wait_until(lambda: h264.encoder.frames >= h264_frames + 30, what="30 canvas frames")
        elapsed_s = time.monotonic() - started_s
        h264_encoded = h264.encoder.frames - h264_frames
        vp8_encoded = vp8.encoder.frames - vp8_frames

        # Every canvas frame is encoded once in each group (±1: a frame may be in flight while counting) ...
        assert abs(h264_encoded - vp8_encoded) <= 1, (h264_encoded, vp8_encoded)
        # ... and no more often than the room's frame rate: two H.264 members did not double the H.264 encodes.
        assert h264_encoded <= SESSION_FPS * elapsed_s * 1.2 + 2, (h264_encoded, elapsed_s)
        # Each group handed out one packet per encoded frame (zero-latency encoders), shared by its members.
        assert abs((h264.packets_out - h264_out) - h264_encoded) <= 1
        assert abs((vp8.packets_out - vp8_out) - vp8_encoded) <= 1
        # Every member decoded a good part of its group's frames meanwhile (one shared encode feeds them all).
        decoded = [c.frames - before for c, before in zip(clients, received, strict=True)]
        assert decoded[0] > 0.3 * vp8_encoded and min(decoded[1:]) > 0.3 * h264_encoded, (decoded, h264_encoded)


async def test_a_pli_from_a_vp8_member_reaches_only_the_vp8_encoder(channel_layer, worker, make_session, make_member):
    specs = [(RED, VP8_ONLY), (GREEN, H264_ONLY)]
    async with room_with(channel_layer, worker, make_session, make_member, specs) as (session, members, clients, *_):
        room = worker.rooms[str(session.id)]
        vp8_id = str(members[0].id)
        h264, vp8 = room.video_groups["h264"], room.video_groups["vp8"]
        for client in clients:
            await wait_until(lambda c=client: c.frames > 10, what="video at every member")
        await asyncio.sleep(0.6)  # past the rate-limit window of the join keyframes
        vp8_keyframes = vp8.encoder.keyframes
        # libvpx's decoder does not flag keyframes: count those the VP8 member's sender took instead.
        track = room.members[vp8_id].video_out
        sent = track.keyframes_sent
        vp8_requests = vp8.keyframes.requests_by_member[vp8_id]
        h264_requests = h264.keyframes.requests_by_member[vp8_id]

        await clients[0].send_pli()
        await wait_until(lambda: track.keyframes_sent > sent, what="a VP8 keyframe sent to the VP8 member")
        frames = clients[0].frames
        await wait_until(lambda: clients[0].frames > frames + 5, what="VP8 video after the keyframe")
        assert vp8.keyframes.requests_by_member[vp8_id] > vp8_requests
        assert vp8.encoder.keyframes > vp8_keyframes
        # The H.264 group never heard of the VP8 member's picture loss.
        assert h264.keyframes.requests_by_member[vp8_id] == h264_requests


async def test_a_group_without_members_stops_encoding(channel_layer, worker, make_session, make_member):
    specs = [(RED, VP8_ONLY), (GREEN, H264_ONLY)]
    async with room_with(channel_layer, worker, make_session, make_member, specs) as (session, members, clients, *_):
        room = worker.rooms[str(session.id)]
        h264, vp8 = room.video_groups["h264"], room.video_groups["vp8"]
        await wait_until(lambda: clients[0].frames > 5 and vp8.encoder.is_open, what="VP8 video")

        await channel_layer.send(
            await placed_channel(session),
            {"type": protocol.LEAVE, "room_session_id": str(session.id), "member_id": str(members[0].id)},
        )
        await wait_until(lambda: not vp8.encoder.is_open, what="the VP8 encoder closed")
        vp8_frames, h264_frames = vp8.encoder.frames, h264.encoder.frames
        await wait_until(lambda: h264.encoder.frames >= h264_frames + 10, what="H.264 frames")
        assert vp8.encoder.frames == vp8_frames
        assert not vp8.encoder.is_open


async def test_egress_takes_h264_while_every_member_receives_vp8(channel_layer, worker, make_session, make_member):
    specs = [(RED, VP8_ONLY), (BLUE, VP8_ONLY)]
    async with room_with(channel_layer, worker, make_session, make_member, specs) as parts:
        session, members, clients, _answers, events = parts
        room = worker.rooms[str(session.id)]
        h264, vp8 = room.video_groups["h264"], room.video_groups["vp8"]
        layout = await latest_layout(channel_layer, events, 2)
        rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
        expected = {str(members[0].id): RED, str(members[1].id): BLUE}
        await wait_until(lambda: sees(clients[0], rects, expected), what="both colours over VP8")
        assert h264.encoder.frames == 0 and not h264.encoder.is_open  # nobody needed H.264 so far

        class Collect:
            def __init__(self) -> None:
                self.video: list = []

            def feed(self, item) -> None:
                if item.kind == "video":
                    self.video.append(item)

            def room_stopped(self) -> None:
                pass

        hub, sink = RoomEgressHub(room), Collect()
        hub.add(sink)
        try:
            decoder = av.CodecContext.create("h264", "r")
            pictures: list[av.VideoFrame] = []

            def decoded_enough() -> bool:
                while sink.video:
                    item = sink.video.pop(0)
                    pictures.extend(decoder.decode(av.Packet(item.data)))
                return len(pictures) >= 5

            await wait_until(decoded_enough, what="H.264 pictures at egress")
            canvas = pictures[-1].to_ndarray(format="rgb24")
            assert canvas.shape[:2] == (360, 640)
            for member_id, rgb in expected.items():
                assert close_to(colour_at(canvas, rects[member_id]), rgb), (
                    member_id,
                    colour_at(canvas, rects[member_id]),
                )
            assert vp8.encoder.is_open  # the members keep their VP8
        finally:
            hub.remove(sink)
            await hub.close()
        await wait_until(lambda: not h264.encoder.is_open, what="the H.264 encoder closed after egress left")
        frames = clients[0].frames
        await wait_until(lambda: clients[0].frames > frames + 5, what="VP8 video after egress left")


async def test_a_renegotiation_cannot_switch_a_member_to_another_codec(
    channel_layer, worker, make_session, make_member
):
    async with room_with(channel_layer, worker, make_session, make_member, [(GREEN, H264_ONLY)]) as parts:
        session, members, clients, _answers, _events = parts
        client = clients[0]
        await wait_until(lambda: client.frames > 5, what="video")
        transceiver = next(t for t in client.pc.getTransceivers() if t.kind == "video")
        transceiver.setCodecPreferences(VP8_ONLY)
        offer = await client.offer()
        reply = await request(
            channel_layer,
            {"type": protocol.OFFER, "room_session_id": str(session.id), "member_id": str(members[0].id), "sdp": offer},
            channel=await placed_channel(session),
        )
        assert reply["type"] == protocol.ERROR
        assert reply["code"] == "unsupported_codec"
        assert "H264" in reply["message"]
        frames = client.frames
        await wait_until(lambda: client.frames > frames + 5, what="video after the refused offer")


def test_the_vp8_encoder_emits_vp8_packets_in_90khz_with_forced_keyframes():
    encoder = SharedVp8Encoder(640, 360, fps=15, bitrate_bps=800_000)
    decoder = av.CodecContext.create("vp8", "r")
    kinds = []
    for i in range(6):
        frame = av.VideoFrame.from_ndarray(np.full((360, 640, 3), 40 * i, np.uint8), format="rgb24")
        packets = encoder.encode(frame.reformat(format="yuv420p"), pts=i * 6000, keyframe=(i == 4))
        assert len(packets) == 1  # lag-in-frames=0: one packet per frame, no delay
        packet = packets[0]
        assert (packet.pts, packet.time_base) == (i * 6000, VIDEO_TIME_BASE)
        kinds.append(packet.is_keyframe)
        (picture,) = decoder.decode(av.Packet(bytes(packet)))
        assert abs(int(picture.to_ndarray(format="rgb24").mean()) - 40 * i) <= 6
    assert kinds == [True, False, False, False, True, False]
    assert (encoder.keyframes, encoder.opens) == (2, 1)
    encoder.close()
    assert not encoder.is_open
    frame = av.VideoFrame.from_ndarray(np.zeros((360, 640, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    assert encoder.encode(frame, pts=36000, keyframe=False)[0].is_keyframe  # a restarted group starts at a keyframe
    assert encoder.opens == 2
