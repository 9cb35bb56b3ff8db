"""Media worker commands over the channel layer: refusals, audience, ICE timeout, placement and shutdown."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCRtpSender

from media import protocol
from media.tests.worker.conftest import join, placed_channel, receive, request
from media.tests.worker.synthetic import SyntheticMember
from media.worker.embedded import ensure_started
from media.worker.embedded import stop as embedded_stop
from media.worker.worker import MediaWorker
from rooms.models import Member, RoomSession

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


def m_line_direction(sdp: str, kind: str) -> str:
    section = sdp.split(f"m={kind}", 1)[1].split("\r\nm=", 1)[0]
    for direction in ("sendrecv", "sendonly", "recvonly", "inactive"):
        if f"a={direction}" in section:
            return direction
    raise AssertionError(f"no direction for {kind}")


async def test_garbage_sdp_gets_invalid_sdp_and_the_room_keeps_running(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    good, bad = await make_member(session), await make_member(session)
    client = SyntheticMember((200, 200, 0), 500.0)
    try:
        reply, _ = await join(channel_layer, session, good, client)
        assert reply["type"] == protocol.ANSWER
        await client.wait_connected()

        error = await request(
            channel_layer,
            {
                "type": protocol.JOIN,
                "room_session_id": str(session.id),
                "member_id": str(bad.id),
                "sdp": "this is not SDP",
            },
            channel=worker.channel_name,
        )
        assert error["type"] == protocol.ERROR
        assert error["code"] == "invalid_sdp"
        assert error["message"]
        room = worker.rooms[str(session.id)]
        assert set(room.members) == {str(good.id)}
        frames = client.frames
        await client.wait_for(lambda: client.frames > frames + 5, timeout_s=5, what="video after the bad offer")
    finally:
        await client.close()


async def test_an_offer_without_h264_or_vp8_is_refused_with_unsupported_codec(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    member = await make_member(session)
    vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
    client = SyntheticMember((0, 0, 200), 500.0, video_codecs=vp8)
    vp8_offer = client.offer

    async def vp9_offer() -> str:  # a video m-line whose only codec is VP9
        return (await vp8_offer()).replace("VP8/90000", "VP9/90000")

    client.offer = vp9_offer
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ERROR
        assert reply["code"] == "unsupported_codec"
        assert "H.264" in reply["message"] and "VP8" in reply["message"]
        assert str(session.id) not in worker.rooms  # nothing left placed for an empty room
        assert await placed_channel(session) == ""
    finally:
        await client.close()


async def test_an_audience_member_only_receives(channel_layer, worker, make_session, make_member):
    session = await make_session()
    speaker = await make_member(session)
    viewer = await make_member(session, join_as="audience")
    speaker_client = SyntheticMember((10, 200, 10), 600.0)
    viewer_client = SyntheticMember((200, 10, 10), 900.0)
    try:
        assert (await join(channel_layer, session, speaker, speaker_client))[0]["type"] == protocol.ANSWER
        reply, _ = await join(channel_layer, session, viewer, viewer_client)
        assert reply["type"] == protocol.ANSWER
        assert m_line_direction(reply["sdp"], "video") == "sendonly"
        assert m_line_direction(reply["sdp"], "audio") == "sendonly"
        await viewer_client.wait_connected()
        await viewer_client.wait_for(lambda: viewer_client.frames > 3, timeout_s=6, what="canvas at the audience")
        room = worker.rooms[str(session.id)]
        assert room.members[str(viewer.id)].input_tasks == []
        assert room.members[str(viewer.id)].frames_in == 0
        assert all(layer.member_id != str(viewer.id) for layer in room.layers)
    finally:
        await speaker_client.close()
        await viewer_client.close()


async def test_an_audio_only_member_gets_no_video_track(channel_layer, worker, make_session, make_member):
    session = await make_session()
    member = await make_member(session, media_allowed="audio-only")
    client = SyntheticMember((10, 10, 10), 600.0)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER
        assert m_line_direction(reply["sdp"], "video") == "recvonly"
        assert m_line_direction(reply["sdp"], "audio") == "sendrecv"
        assert worker.rooms[str(session.id)].members[str(member.id)].video_out is None
    finally:
        await client.close()


async def test_a_member_whose_ice_never_completes_is_dropped_with_a_reason(channel_layer, make_session, make_member):
    media_worker = MediaWorker(layer=channel_layer, ice_timeout_s=1.0)
    await media_worker.start()
    session = await make_session()
    member = await make_member(session)
    client = SyntheticMember((1, 2, 3), 500.0)
    try:
        reply_channel = await channel_layer.new_channel("test.member.")
        await channel_layer.send(
            protocol.CONTROL_CHANNEL,
            {
                "type": protocol.JOIN,
                "room_session_id": str(session.id),
                "member_id": str(member.id),
                "sdp": await client.offer(),
                "reply_channel": reply_channel,
                "request_id": "r1",
            },
        )
        answer = await receive(channel_layer, reply_channel)
        assert answer["type"] == protocol.ANSWER  # never applied: ICE cannot complete
        dropped = await receive(channel_layer, reply_channel, timeout_s=5)
        assert dropped == {
            "type": protocol.MEMBER_DROPPED,
            "room_session_id": str(session.id),
            "member_id": str(member.id),
            "reason": "ice_timeout",
        }
        assert str(session.id) not in media_worker.rooms
    finally:
        await client.close()
        await media_worker.stop()


async def test_stopping_the_worker_tells_members_and_releases_the_session(channel_layer, make_session, make_member):
    media_worker = MediaWorker(layer=channel_layer)
    await media_worker.start()
    session = await make_session()
    member = await make_member(session)
    client = SyntheticMember((5, 5, 5), 500.0)
    try:
        reply, reply_channel = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER
        assert await placed_channel(session) == media_worker.channel_name
        await media_worker.stop()
        dropped = await receive(channel_layer, reply_channel)
        assert dropped["type"] == protocol.MEMBER_DROPPED
        assert dropped["reason"] == "worker_shutdown"
        assert await placed_channel(session) == ""
    finally:
        await client.close()


async def test_a_command_for_a_session_held_by_another_worker_is_forwarded_to_it(
    channel_layer, make_session, make_member
):
    first = MediaWorker(layer=channel_layer, control=False)
    second = MediaWorker(layer=channel_layer, control=False)
    await first.start()
    await second.start()
    session = await make_session()
    await RoomSession.objects.filter(id=session.id).aupdate(media_worker=first.channel_name)
    member = await make_member(session)
    client = SyntheticMember((9, 9, 9), 500.0)
    try:
        reply_channel = await channel_layer.new_channel("test.member.")
        second.enqueue(
            {
                "type": protocol.JOIN,
                "room_session_id": str(session.id),
                "member_id": str(member.id),
                "sdp": await client.offer(),
                "reply_channel": reply_channel,
                "request_id": "r2",
            }
        )
        reply = await receive(channel_layer, reply_channel)
        assert reply["type"] == protocol.ANSWER
        assert str(session.id) in first.rooms
        assert str(session.id) not in second.rooms
    finally:
        await client.close()
        await first.stop()
        await second.stop()


async def test_a_playback_command_without_its_object_id_is_a_bad_request(channel_layer, worker, make_session):
    session = await make_session()
    error = await request(
        channel_layer,
        {"type": protocol.EGRESS, "room_session_id": str(session.id), "action": "playback.start"},
    )
    assert error["type"] == protocol.ERROR
    assert error["code"] == "bad_request"


async def test_a_join_for_an_unknown_member_is_not_found(channel_layer, worker, make_session):
    session = await make_session()
    client = SyntheticMember(None, None)
    try:
        reply, _ = await join(channel_layer, session, Member(id="00000000-0000-0000-0000-000000000001"), client)
        assert reply["type"] == protocol.ERROR
        assert reply["code"] == "not_found"
    finally:
        await client.close()


async def test_ensure_started_starts_one_worker_per_event_loop(channel_layer):
    first, second = await asyncio.gather(ensure_started(), ensure_started())
    try:
        assert first is second
        assert first.started
        assert first.channel_name
    finally:
        await embedded_stop()
    assert not first.started
