"""``/ws/events/``: integrators' server notifications, authenticated with a project API key."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from parley.asgi import application
from rooms.tests.factories import RoomFactory, api_key_create
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)


async def _events_socket(query: str = "", headers=None) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/ws/events/{query}", headers=headers or [])
    connected, _ = await communicator.connect(timeout=10)
    return communicator, connected


async def _next_event(communicator, event_type: str, timeout: float = 3) -> dict:
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message.get("method") == "event" and message["params"]["event_type"] == event_type:
            return message["params"]


@pytest.fixture
def api_key(project):
    return api_key_create(project)[1]


async def test_it_forwards_the_projects_events_with_the_webhook_body(project, room, api_key):
    communicator, connected = await _events_socket(f"?api_key={api_key}")
    assert connected
    client = await joined(project, "standup", user_name="Ada")
    body = await _next_event(communicator, "member.joined")
    assert set(body) >= {"id", "event_type", "project_id", "room_id", "room_session_id", "timestamp", "params"}
    assert body["project_id"] == str(project.id)
    assert body["room_id"] == str(room.id)
    assert body["params"]["member"]["name"] == "Ada"
    await client.close()
    await communicator.disconnect()


async def test_it_accepts_the_key_in_an_authorization_header(project, room, api_key):
    communicator, connected = await _events_socket(headers=[(b"authorization", f"Bearer {api_key}".encode())])
    assert connected
    client = await joined(project, "standup")
    await _next_event(communicator, "room.started")
    await client.close()
    await communicator.disconnect()


@pytest.mark.parametrize("query", ["", "?api_key=pk_nope_nope", "?api_key=garbage"])
async def test_it_closes_with_4001_without_a_valid_key(project, query):
    communicator, connected = await _events_socket(query)
    assert connected
    output = await communicator.receive_output(timeout=20)
    assert output == {"type": "websocket.close", "code": 4001}


async def test_a_revoked_key_is_refused(project, api_key):
    from django.utils import timezone

    from rooms.models import ApiKey

    await database_sync_to_async(ApiKey.objects.update)(revoked_at=timezone.now())
    communicator, _ = await _events_socket(f"?api_key={api_key}")
    assert (await communicator.receive_output(timeout=20))["code"] == 4001


async def test_it_never_forwards_another_projects_events(project, other_project, room, api_key):
    communicator, _ = await _events_socket(f"?api_key={api_key}")
    stranger = await joined(other_project, "standup")
    assert await communicator.receive_nothing(timeout=0.3)
    await stranger.close()
    await communicator.disconnect()


async def test_it_filters_by_room_name_and_event_types(project, room, api_key):
    await database_sync_to_async(RoomFactory)(project=project, name="other-room")
    communicator, _ = await _events_socket(f"?api_key={api_key}&room_name=standup&event_types=member.updated")
    elsewhere = await joined(project, "other-room")
    await elsewhere.call("member.audio_mute")
    client = await joined(project, "standup")
    await client.call("member.audio_mute")
    message = json.loads(await communicator.receive_from(timeout=20))
    assert message["params"]["event_type"] == "member.updated"
    assert message["params"]["room_id"] == str(room.id)
    assert await communicator.receive_nothing(timeout=0.3)
    await elsewhere.close()
    await client.close()
    await communicator.disconnect()


async def test_a_subscribe_request_replaces_the_filters(project, room, api_key):
    communicator, _ = await _events_socket(f"?api_key={api_key}")
    await communicator.send_to(
        text_data=json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "subscribe",
                "params": {"room_id": str(room.id), "event_types": ["member.left"]},
            }
        )
    )
    reply = json.loads(await communicator.receive_from(timeout=10))
    assert reply["result"] == {"room_ids": [str(room.id)], "event_types": ["member.left"]}
    client = await joined(project, "standup")
    other = await joined(project, "standup")
    await other.call("room.leave")
    message = json.loads(await communicator.receive_from(timeout=20))
    assert message["params"]["event_type"] == "member.left"
    await client.close()
    await other.close()
    await communicator.disconnect()


async def test_subscribing_to_another_projects_room_is_not_found(project, other_project, api_key):
    other_room = await database_sync_to_async(RoomFactory)(project=other_project, name="theirs")
    communicator, _ = await _events_socket(f"?api_key={api_key}")
    await communicator.send_to(
        text_data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"room_id": str(other_room.id)}}
        )
    )
    assert json.loads(await communicator.receive_from(timeout=10))["error"]["code"] == -32004
    await communicator.send_to(text_data="{oops")
    assert json.loads(await communicator.receive_from(timeout=10))["error"]["code"] == -32700
    await communicator.disconnect()
