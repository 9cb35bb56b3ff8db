"""The web side of the media worker interface (``media/protocol.py``): join with an SDP offer, renegotiation,
egress starts. The worker's side of the channel-layer protocol is played by the test itself, reading the
channel the command goes to and replying on ``reply_channel``."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from media import protocol
from rooms.models import Member, Recording, RoomSession
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=offer\r\nt=0 0\r\n"
ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=answer\r\nt=0 0\r\n"


async def _worker_reply(channel: str, *, sdp: str = ANSWER, reply_type: str = protocol.ANSWER) -> dict:
    layer = get_channel_layer()
    command = await asyncio.wait_for(layer.receive(channel), timeout=20)
    reply = {"type": reply_type, "request_id": command["request_id"], "member_id": command.get("member_id")}
    if reply_type == protocol.ANSWER:
        reply["sdp"] = sdp
    else:
        reply.update(code="invalid_sdp", message="Bad offer.")
    await layer.send(command["reply_channel"], reply)
    return command


async def _place(client, worker: str = "media.worker.test") -> str:
    await database_sync_to_async(RoomSession.objects.filter(id=client.room_session_id).update)(media_worker=worker)
    return worker


async def test_a_join_with_an_offer_is_sent_to_the_control_channel_and_returns_the_answer(project, room):
    host = await joined(project, "standup")
    from rooms.tests.signalling.conftest import connect, mint

    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    worker = asyncio.ensure_future(_worker_reply(protocol.CONTROL_CHANNEL))
    response = await client.call("room.join", {"sdp": OFFER, "audio": True, "video": False})
    command = await worker
    assert response["result"]["sdp"] == ANSWER
    assert command["type"] == protocol.JOIN
    assert command["sdp"] == OFFER
    assert command["audio"] is True and command["video"] is False
    assert command["member_id"] == response["result"]["member_id"]
    assert command["room_session_id"] == host.room_session_id
    assert command["join_as"] == "member" and command["media_allowed"] == "all"
    await host.close()
    await client.close()


async def test_a_join_goes_to_the_placed_worker_once_the_session_has_one(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    from rooms.tests.signalling.conftest import connect, mint

    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    response = await client.call("room.join", {"sdp": OFFER})
    assert (await worker)["type"] == protocol.JOIN
    assert response["result"]["sdp"] == ANSWER
    await host.close()
    await client.close()


async def test_without_a_worker_answer_the_join_fails_with_media_unavailable_and_the_member_stays(project, room):
    from rooms.tests.signalling.conftest import connect, mint

    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    response = await client.call("room.join", {"sdp": OFFER})
    error = response["error"]
    assert error["code"] == -32010
    assert error["data"]["code"] == "media_unavailable"
    member = await database_sync_to_async(Member.objects.get)(id=error["data"]["member_id"])
    assert member.leave_time is None
    # signalling keeps working for the member
    assert "result" in await client.call("member.audio_mute")
    await client.close()


async def test_a_worker_error_is_media_unavailable(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel, reply_type=protocol.ERROR))
    response = await host.call("webrtc.offer", {"sdp": OFFER})
    await worker
    assert response["error"]["code"] == -32010
    await host.close()


async def test_renegotiation_relays_the_offer_and_returns_the_answer(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    response = await host.call("webrtc.offer", {"sdp": OFFER})
    command = await worker
    assert command["type"] == protocol.OFFER and command["member_id"] == host.member_id
    assert response["result"] == {"sdp": ANSWER}
    await host.close()


async def test_renegotiation_without_a_worker_is_media_unavailable(project, room):
    host = await joined(project, "standup")
    assert (await host.call("webrtc.offer", {"sdp": OFFER}))["error"]["code"] == -32010
    await host.close()


async def test_a_worker_offer_is_forwarded_and_the_browser_answer_relayed(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    layer = get_channel_layer()
    member = await database_sync_to_async(Member.objects.get)(id=host.member_id)
    await layer.send(member.channel_name, {"type": protocol.SERVER_OFFER, "member_id": host.member_id, "sdp": OFFER})
    message = None
    async with asyncio.timeout(20):
        while message is None:
            candidate = __import__("json").loads(await host.ws.receive_from(timeout=20))
            if candidate.get("method") == "webrtc.offer":
                message = candidate
    assert message["params"] == {"member_id": host.member_id, "sdp": OFFER}
    assert (await host.call("webrtc.answer", {"sdp": ANSWER}))["result"] == {}
    command = await asyncio.wait_for(layer.receive(worker_channel), timeout=20)
    assert command == {
        "type": protocol.SERVER_ANSWER,
        "room_session_id": host.room_session_id,
        "member_id": host.member_id,
        "sdp": ANSWER,
    }
    await host.close()


async def test_member_updates_are_sent_to_the_placed_worker(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    await host.call("member.deaf")
    command = await asyncio.wait_for(get_channel_layer().receive(worker_channel), timeout=20)
    assert command["type"] == protocol.MEMBER_UPDATE
    assert command["member_id"] == host.member_id
    assert command["fields"] == {"deaf": True, "audio_muted": True}
    await host.call("room.set_layout", {"name": "2x2"})
    command = await asyncio.wait_for(get_channel_layer().receive(worker_channel), timeout=20)
    assert command["type"] == protocol.LAYOUT and command["layout_name"] == "2x2"
    await host.close()


async def test_a_dropped_media_connection_is_reported_to_the_member(project, room):
    host = await joined(project, "standup")
    member = await database_sync_to_async(Member.objects.get)(id=host.member_id)
    await get_channel_layer().send(
        member.channel_name,
        {
            "type": protocol.MEMBER_DROPPED,
            "room_session_id": host.room_session_id,
            "member_id": host.member_id,
            "reason": "ice_timeout",
        },
    )
    event = await host.event("media.dropped")
    assert event["reason"] == "ice_timeout"
    await host.close()


async def test_sender_constraints_are_forwarded_to_the_member_and_malformed_ones_dropped(project, room):
    host = await joined(project, "standup")
    member = await database_sync_to_async(Member.objects.get)(id=host.member_id)
    layer = get_channel_layer()
    base = {"type": protocol.SENDER_CONSTRAINTS, "room_session_id": host.room_session_id, "member_id": host.member_id}
    # Malformed (a worker bug must not reach the browser as garbage): a string, a bool, a zero.
    for bad in ({"width": "426", "height": 240}, {"width": True, "height": 240}, {"width": 0, "height": 240}):
        await layer.send(member.channel_name, {**base, **bad, "max_framerate": 15})
    await layer.send(member.channel_name, {**base, "width": 426, "height": 240, "max_framerate": 15})
    notices = []
    async with asyncio.timeout(20):
        while not notices:
            candidate = json.loads(await host.ws.receive_from(timeout=20))
            if candidate.get("method") == "webrtc.sender_constraints":
                notices.append(candidate)
    assert notices[0] == {
        "jsonrpc": "2.0",
        "method": "webrtc.sender_constraints",
        "params": {"member_id": host.member_id, "width": 426, "height": 240, "max_framerate": 15},
    }
    assert (await host.call("room.get_members"))["result"]["members"]  # the socket is still fine
    await host.close()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("room.recording.start", {}),
        ("room.stream.start", {"url": "rtmp://127.0.0.1/live/secret"}),
        ("room.playback.start", {"url": "https://93.184.215.14/clip.mp4"}),  # a public address: past the URL guard
    ],
)
async def test_egress_start_without_a_worker_is_media_unavailable_and_writes_nothing(project, room, method, params):
    host = await joined(project, "standup")
    assert (await host.call(method, params))["error"]["code"] == -32010
    assert await database_sync_to_async(Recording.objects.count)() == 0
    await host.close()


async def test_a_recording_starts_when_the_worker_acknowledges_and_fans_out(project, room):
    host = await joined(project, "standup")
    guest = await joined(project, "standup")
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    response = await host.call("room.recording.start")
    command = await worker
    recording = response["result"]["recording"]
    assert command["type"] == protocol.EGRESS and command["action"] == "recording.start"
    assert command["object_id"] == recording["id"]
    assert (await guest.event("recording.started"))["recording"]["id"] == recording["id"]
    listed = (await guest.call("room.recording.list"))["result"]["recordings"]
    assert [r["id"] for r in listed] == [recording["id"]]
    pause = await host.call("recording.pause", {"recording_id": recording["id"]})
    assert pause["result"]["recording"]["state"] == "paused"
    assert (await guest.event("recording.updated"))["recording"]["state"] == "paused"
    assert (await asyncio.wait_for(get_channel_layer().receive(worker_channel), timeout=20))[
        "action"
    ] == "recording.pause"
    await host.close()
    await guest.close()


async def test_an_unacknowledged_stream_start_fails_and_masks_the_key(project, room):
    host = await joined(project, "standup")
    await _place(host)
    response = await host.call("room.stream.start", {"url": "rtmp://127.0.0.1/live/secret-key"})
    assert response["error"]["code"] == -32010
    from rooms.models import Stream

    stream = await database_sync_to_async(Stream.objects.get)()
    assert stream.state == "failed"
    listed = (await host.call("room.stream.list"))["result"]["streams"]
    assert "secret-key" not in str(listed)
    await host.close()


async def test_a_screen_share_is_a_child_member_with_its_own_peer_connection(project, room):
    host = await joined(project, "standup")
    guest = await joined(project, "standup")
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    response = await host.call("room.screenshare.start", {"sdp": OFFER})
    command = await worker
    child_id = response["result"]["member_id"]
    assert command["member_id"] == child_id and response["result"]["sdp"] == ANSWER
    joined_event = await guest.event("member.joined", where=lambda p: p["member"]["id"] == child_id)
    assert joined_event["member"]["type"] == "screen"
    assert joined_event["member"]["parent_id"] == host.member_id
    # the parent leaving takes the screen share with it
    await host.call("room.leave")
    await guest.event("member.left", where=lambda p: p["member"]["id"] == child_id)
    await guest.close()
    await host.close()


async def test_a_failed_screen_share_leaves_no_member_behind(project, room):
    host = await joined(project, "standup")
    assert (await host.call("room.screenshare.start", {"sdp": OFFER}))["error"]["code"] == -32010
    present = await database_sync_to_async(Member.objects.filter(leave_time__isnull=True).count)()
    assert present == 1
    await host.close()


async def test_the_embedded_worker_is_started_on_connect_and_answers_a_join(project, room, settings):
    """With ``PARLEY_MEDIA_WORKER=embedded`` the consumer starts the in-process worker, which takes the
    ``media.join`` from the control channel and answers it (here: refusing an offer with no media)."""
    pytest.importorskip("media.worker.embedded")
    from media.worker import embedded

    settings.PARLEY_MEDIA_WORKER = "embedded"
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 5
    from rooms.tests.signalling.conftest import connect, mint

    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    try:
        response = await client.call("room.join", {"sdp": OFFER}, timeout=20)
        error = response["error"]
        assert error["code"] == -32010
        assert error["message"] != "No media worker is available for this room."  # the worker's own refusal
        assert "result" in await client.call("member.audio_mute")
    finally:
        await client.close()
        await embedded.stop()


async def test_a_second_live_recording_is_a_conflict_and_writes_nothing(project, room):
    host = await joined(project, "standup")
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    first = (await host.call("room.recording.start"))["result"]["recording"]
    await worker
    second = await host.call("room.recording.start")
    assert second["error"]["code"] == -32009
    assert await database_sync_to_async(Recording.objects.count)() == 1
    # a paused recording is still live
    assert "result" in await host.call("recording.pause", {"recording_id": first["id"]})
    assert (await host.call("room.recording.start"))["error"]["code"] == -32009
    # once stopped, a new recording may start
    assert "result" in await host.call("recording.stop", {"recording_id": first["id"]})
    layer = get_channel_layer()
    for action in ("recording.pause", "recording.stop"):  # the worker's share of pause and stop
        assert (await asyncio.wait_for(layer.receive(worker_channel), timeout=20))["action"] == action
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    third = await host.call("room.recording.start")
    await worker
    assert third["result"]["recording"]["id"] != first["id"]
    await host.close()
