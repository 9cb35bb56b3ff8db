"""Connecting with a room token and joining: token checks, join rules, room.joined and fan-out."""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from rooms.models import Member, Room, RoomSession, RoomSessionEvent
from rooms.tests.signalling.conftest import connect, joined, mint, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed_with(token: str) -> int:
    communicator, connected = await open_socket(token)
    if not connected:
        return -1
    output = await communicator.receive_output(timeout=20)
    assert output["type"] == "websocket.close"
    return output["code"]


async def test_it_closes_the_socket_with_4001_for_a_malformed_token(project):
    assert await _closed_with("not-a-jwt") == 4001


async def test_it_closes_the_socket_with_4001_without_a_token(project):
    assert await _closed_with("") == 4001


async def test_it_closes_the_socket_with_4001_for_an_expired_token(project):
    token = await database_sync_to_async(mint)(project, "standup")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = int((timezone.now() - timedelta(minutes=5)).timestamp())
    expired = jwt.encode(claims, project.token_secret, algorithm="HS512")
    assert await _closed_with(expired) == 4001


async def test_it_closes_the_socket_with_4001_for_a_tampered_token(project):
    token = await database_sync_to_async(mint)(project, "standup")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["permissions"] = ["room.lock"]
    header, _, signature = token.split(".")
    forged_payload = jwt.encode(claims, "another-secret", algorithm="HS512").split(".")[1]
    assert await _closed_with(f"{header}.{forged_payload}.{signature}") == 4001


async def test_it_closes_the_socket_with_4001_for_a_token_signed_by_another_project(project, other_project):
    token = await database_sync_to_async(mint)(other_project, "standup")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["sub"] = str(project.id)
    forged = jwt.encode(claims, other_project.token_secret, algorithm="HS512")
    assert await _closed_with(forged) == 4001


async def test_it_closes_the_socket_with_4001_before_the_join_window_opens(project):
    token = await database_sync_to_async(mint)(project, "standup", join_from=timezone.now() + timedelta(hours=1))
    assert await _closed_with(token) == 4001


async def test_a_signalling_only_join_returns_the_member_and_the_room_session(project, room):
    client = await connect(await database_sync_to_async(mint)(project, "standup", user_name="Ada"))
    response = await client.call("room.join", {})
    result = response["result"]
    assert result["sdp"] is None
    session = result["room_session"]
    assert session["room_id"] == str(room.id)
    assert session["layout_name"] == room.layout
    assert [m["name"] for m in session["members"]] == ["Ada"]
    member = session["members"][0]
    assert member["id"] == result["member_id"]
    for key in (
        "room_session_id",
        "room_id",
        "type",
        "join_as",
        "audio_muted",
        "video_muted",
        "deaf",
        "visible",
        "input_volume",
        "output_volume",
        "input_sensitivity",
        "handraised",
        "talking",
        "position",
        "meta",
        "parent_id",
    ):
        assert key in member
    joined_event = await client.event("room.joined")
    assert joined_event["member_id"] == result["member_id"]
    assert joined_event["room_session"]["room_session_id"] == session["room_session_id"]
    await client.close()


async def test_the_first_join_creates_the_room_and_its_session_and_emits_room_started(project):
    client = await connect(await database_sync_to_async(mint)(project, "fresh-room", room_display_name="Fresh"))
    await client.join()
    room = await database_sync_to_async(Room.objects.get)(project=project, name="fresh-room")
    assert room.display_name == "Fresh"
    names = await database_sync_to_async(
        lambda: list(
            RoomSessionEvent.objects.filter(room_session_id=client.room_session_id).values_list("name", flat=True)
        )
    )()
    assert names[:2] == ["room.started", "member.joined"]
    await client.close()


async def test_it_answers_not_found_when_the_room_is_missing_and_auto_create_is_off(project):
    client = await connect(await database_sync_to_async(mint)(project, "nowhere", auto_create_room=False))
    response = await client.call("room.join", {})
    assert response["error"]["code"] == -32004
    await client.close()


async def test_a_second_member_sees_member_joined_and_the_member_list(project, room):
    first = await joined(project, "standup", user_name="Ada")
    second = await joined(project, "standup", user_name="Bob")
    event = await first.event("member.joined")
    assert event["member"]["name"] == "Bob"
    assert event["member"]["id"] == second.member_id
    member_list = await first.event("memberList.updated", where=lambda p: p["total"] == 2)
    assert {m["name"] for m in member_list["members"]} == {"Ada", "Bob"}
    await first.close()
    await second.close()


async def test_a_locked_room_refuses_a_join_with_room_locked(project, room):
    room.locked = True
    await database_sync_to_async(room.save)()
    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    error = (await client.call("room.join", {}))["error"]
    assert error["code"] == -32009
    assert error["data"]["code"] == "room_locked"
    await client.close()


async def test_a_full_room_refuses_a_join_with_room_full(project, room):
    room.max_members = 1
    await database_sync_to_async(room.save)()
    first = await joined(project, "standup")
    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    error = (await client.call("room.join", {}))["error"]
    assert error["code"] == -32009
    assert error["data"]["code"] == "room_full"
    await first.close()
    await client.close()


async def test_a_session_locked_with_room_lock_refuses_new_members(project, room):
    moderator = await joined(project, "standup")
    assert "result" in await moderator.call("room.lock")
    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    assert (await client.call("room.join", {}))["error"]["data"]["code"] == "room_locked"
    await moderator.close()
    await client.close()


async def test_join_audio_and_video_muted_from_the_token_apply_to_the_member(project, room):
    client = await connect(
        await database_sync_to_async(mint)(project, "standup", join_audio_muted=True, join_video_muted=True)
    )
    result = await client.join()
    member = result["room_session"]["members"][0]
    assert member["audio_muted"] is True
    assert member["video_muted"] is True
    await client.close()


async def test_an_audience_token_joins_as_audience_without_permissions(project, room):
    moderator = await joined(project, "standup")
    client = await connect(await database_sync_to_async(mint)(project, "standup", join_as="audience"))
    result = await client.join()
    assert result["room_session"]["members"][-1]["join_as"] == "audience"
    member = await database_sync_to_async(Member.objects.get)(id=client.member_id)
    assert member.permissions == []
    count = await moderator.event("room.audience_count")
    assert count["total"] == 1
    error = (await client.call("member.audio_unmute"))["error"]
    assert error["code"] == -32003
    await moderator.close()
    await client.close()


async def test_a_socket_cannot_join_twice(project, room):
    client = await joined(project, "standup")
    assert (await client.call("room.join", {}))["error"]["code"] == -32009
    await client.close()


async def test_methods_before_joining_answer_not_joined(project, room):
    client = await connect(await database_sync_to_async(mint)(project, "standup"))
    error = (await client.call("member.audio_mute"))["error"]
    assert error["code"] == -32009
    assert error["data"]["code"] == "not_joined"
    await client.close()


async def test_leaving_emits_member_left_to_the_others(project, room):
    first = await joined(project, "standup")
    second = await joined(project, "standup")
    assert (await second.call("room.leave"))["result"] == {}
    left = await first.event("member.left")
    assert left["member"]["id"] == second.member_id
    assert left["reason"] == "left"
    member = await database_sync_to_async(Member.objects.get)(id=second.member_id)
    assert member.leave_time is not None
    await first.close()
    await second.close()


async def test_the_last_leave_ends_the_room_session(project, room):
    client = await joined(project, "standup")
    await client.call("room.leave")
    session = await database_sync_to_async(RoomSession.objects.get)(id=client.room_session_id)
    assert session.status == "completed"
    assert session.end_time is not None
    await client.close()


async def test_end_room_session_on_leave_ends_the_session_for_everyone(project, room):
    host = await joined(project, "standup", end_room_session_on_leave=True)
    guest = await joined(project, "standup")
    await host.call("room.leave")
    ended = await guest.event("room.ended")
    assert ended["room_session"]["status"] == "completed"
    left = await guest.event("member.left", where=lambda p: p["member"]["id"] == guest.member_id)
    assert left["reason"] == "room_ended"
    await guest.event("room.left")
    await host.close()
    await guest.close()


async def test_remove_after_seconds_elapsed_removes_the_member_with_a_reason(project, room):
    watcher = await joined(project, "standup")
    short = await connect(await database_sync_to_async(mint)(project, "standup", remove_after_seconds_elapsed=1))
    await short.join()
    left = await watcher.event("member.left", timeout=20, where=lambda p: p["member"]["id"] == short.member_id)
    assert left["reason"] == "remove_at"
    room_left = await short.event("room.left", timeout=20)
    assert room_left["reason"] == "remove_at"
    await watcher.close()
    await short.close()


async def test_a_token_of_one_project_never_joins_another_projects_room(project, other_project, room):
    client = await connect(await database_sync_to_async(mint)(other_project, "standup"))
    result = await client.join()
    assert result["room_session"]["room_id"] != str(room.id)
    await client.close()


async def test_events_are_json_rpc_notifications(project, room):
    first = await joined(project, "standup")
    second = await joined(project, "standup")
    raw = json.loads(await first.ws.receive_from(timeout=20))
    assert raw["jsonrpc"] == "2.0"
    assert raw["method"] == "event"
    assert set(raw["params"]) >= {"event_type", "params"}
    assert "id" not in raw
    await first.close()
    await second.close()
