"""The session page's live socket: Django-session authentication, project scoping, per-session filtering."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from dashboard.tests.conftest import session_cookie
from parley.asgi import application
from rooms.events import event_broadcast_async
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_memory_channel_layer")]


async def _connect(session_id, cookie: bytes | None):
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, f"/ws/dashboard/sessions/{session_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=20)
    return communicator, connected, code


def _body(session, event_type: str, params: dict) -> dict:
    return {
        "id": "e1",
        "event_type": event_type,
        "project_id": str(session.project_id),
        "room_id": str(session.room_id),
        "room_session_id": str(session.id),
        "timestamp": 1.0,
        "params": params,
    }


async def test_it_forwards_only_the_events_of_its_session(moderator, project):
    live = await database_sync_to_async(RoomSessionFactory)(room__project=project)
    other = await database_sync_to_async(RoomSessionFactory)(room__project=project)
    cookie = await database_sync_to_async(session_cookie)(moderator)
    communicator, connected, _ = await _connect(live.id, cookie)
    assert connected
    await event_broadcast_async(_body(other, "member.updated", {"member": {"id": "x"}}))
    await event_broadcast_async(_body(live, "member.updated", {"member": {"id": "m1", "audio_muted": True}}))
    message = await communicator.receive_json_from(timeout=20)
    assert message["event_type"] == "member.updated"
    assert message["params"]["member"] == {"id": "m1", "audio_muted": True}
    assert message["room_session_id"] == str(live.id)
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_it_refuses_a_visitor_who_is_not_signed_in(room):
    live = await database_sync_to_async(RoomSessionFactory)(room=room)
    communicator, connected, code = await _connect(live.id, None)
    assert not connected and code == 4401


async def test_it_refuses_a_user_of_another_project(outsider, room):
    live = await database_sync_to_async(RoomSessionFactory)(room=room)
    cookie = await database_sync_to_async(session_cookie)(outsider)
    communicator, connected, code = await _connect(live.id, cookie)
    assert not connected and code == 4403


@pytest.mark.redis
async def test_it_forwards_events_through_the_redis_channel_layer(moderator, project, redis_channel_layer):
    live = await database_sync_to_async(RoomSessionFactory)(room__project=project)
    cookie = await database_sync_to_async(session_cookie)(moderator)
    communicator, connected, _ = await _connect(live.id, cookie)
    assert connected
    await event_broadcast_async(_body(live, "layout.changed", {"layout": {"name": "2x2"}}))
    message = await communicator.receive_json_from(timeout=20)
    assert message["event_type"] == "layout.changed" and message["params"]["layout"]["name"] == "2x2"
    await communicator.disconnect()
