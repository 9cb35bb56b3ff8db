"""Ending one's own screen share or extra device: ``member.remove`` with the permission that started it, and
``room.leave {member_id}`` for one's own child only."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async

from rooms.models import Member, RoomSession
from rooms.permissions import DEFAULT_PERMISSIONS
from rooms.tests.signalling.conftest import joined
from rooms.tests.signalling.test_media import OFFER, _place, _worker_reply

pytestmark = pytest.mark.django_db(transaction=True)


def _child_of(member_id: str, type: str = Member.Type.SCREEN) -> str:
    parent = Member.objects.get(id=member_id)
    child = Member.objects.create(
        room_session=parent.room_session, parent=parent, name=f"{parent.name} ({type})", type=type
    )
    return str(child.id)


def _present(member_id: str) -> bool:
    return Member.objects.filter(id=member_id, leave_time__isnull=True).exists()


@pytest.fixture
async def pair(project, room):
    host = await joined(project, "standup", user_name="Ada", permissions=list(DEFAULT_PERMISSIONS))
    guest = await joined(project, "standup", user_name="Bob", permissions=list(DEFAULT_PERMISSIONS))
    yield host, guest
    await host.close()
    await guest.close()


def test_default_permissions_start_a_screen_share_but_cannot_remove_others():
    assert "room.self.screenshare" in DEFAULT_PERMISSIONS
    assert "room.member.remove" not in DEFAULT_PERMISSIONS


async def test_a_member_ends_its_own_screen_share_with_member_remove(pair):
    host, guest = pair
    worker_channel = await _place(host)
    worker = asyncio.ensure_future(_worker_reply(worker_channel))
    started = await host.call("room.screenshare.start", {"sdp": OFFER})
    await worker
    child_id = started["result"]["member_id"]
    response = await host.call("member.remove", {"member_id": child_id})
    assert response["result"]["member"]["id"] == child_id
    left = await guest.event("member.left", where=lambda p: p["member"]["id"] == child_id)
    assert left["reason"] == "left"
    assert not await database_sync_to_async(_present)(child_id)
    assert await database_sync_to_async(_present)(host.member_id)


@pytest.mark.parametrize(
    "type, permission",
    [(Member.Type.SCREEN, "room.self.screenshare"), (Member.Type.DEVICE, "room.self.additional_source")],
)
async def test_removing_ones_own_child_needs_the_permission_that_started_it(project, room, type, permission):
    host = await joined(project, "standup", permissions=[p for p in DEFAULT_PERMISSIONS if p != permission])
    child_id = await database_sync_to_async(_child_of)(host.member_id, type)
    response = await host.call("member.remove", {"member_id": child_id})
    assert response["error"]["code"] == -32003
    assert permission in response["error"]["message"] + str(response["error"].get("data"))
    assert await database_sync_to_async(_present)(child_id)
    await host.close()


async def test_another_members_child_still_needs_room_member_remove(pair):
    host, guest = pair
    child_id = await database_sync_to_async(_child_of)(guest.member_id)
    response = await host.call("member.remove", {"member_id": child_id})
    assert response["error"]["code"] == -32003
    assert "room.member.remove" in response["error"]["message"] + str(response["error"].get("data"))
    assert await database_sync_to_async(_present)(child_id)


async def test_room_leave_with_ones_own_child_ends_only_the_child(pair):
    host, guest = pair
    child_id = await database_sync_to_async(_child_of)(host.member_id, Member.Type.DEVICE)
    assert (await host.call("room.leave", {"member_id": child_id}))["result"] == {}
    left = await guest.event("member.left", where=lambda p: p["member"]["id"] == child_id)
    assert left["reason"] == "left"
    assert await database_sync_to_async(_present)(host.member_id)
    # the socket is still joined
    assert "result" in await host.call("member.audio_mute")


async def test_room_leave_with_another_member_is_not_found_and_the_caller_stays(pair):
    host, guest = pair
    others_child = await database_sync_to_async(_child_of)(guest.member_id)
    for target in (guest.member_id, others_child, str(uuid.uuid4())):
        response = await host.call("room.leave", {"member_id": target})
        assert response["error"]["code"] == -32004, target
    for member_id in (host.member_id, guest.member_id, others_child):
        assert await database_sync_to_async(_present)(member_id)
    session = await database_sync_to_async(RoomSession.objects.get)(id=host.room_session_id)
    assert session.status == RoomSession.Status.IN_PROGRESS


async def test_room_leave_with_ones_own_id_leaves_the_room(pair):
    host, guest = pair
    assert (await host.call("room.leave", {"member_id": host.member_id}))["result"] == {}
    assert (await guest.event("member.left"))["member"]["id"] == host.member_id
