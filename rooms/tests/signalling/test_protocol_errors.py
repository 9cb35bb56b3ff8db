"""JSON-RPC framing errors, size and rate limits: a bad message never closes the socket."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from rooms.models import Member
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def client(project, room):
    c = await joined(project, "standup")
    yield c
    await c.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", -32700),
        (" ", -32700),
        ("[1, 2, 3]", -32600),
        ('"just a string"', -32600),
        ('{"id": 1, "method": "room.get_members"}', -32600),
        ('{"jsonrpc": "1.0", "id": 1, "method": "room.get_members"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600),
        ('{"jsonrpc": "2.0", "id": {"a": 1}, "method": "room.get_members"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "room.fly"}', -32601),
        ('{"jsonrpc": "2.0", "id": 1, "method": "room.get_members", "params": [1]}', -32602),
    ],
)
async def test_malformed_requests_get_the_json_rpc_error_and_the_socket_stays(client, frame, code):
    response = await client.send_raw(frame)
    assert response["error"]["code"] == code
    assert "result" in await client.call("room.get_members")


async def test_the_request_id_is_echoed_when_it_could_be_read(client):
    response = await client.send_raw('{"jsonrpc": "2.0", "id": "abc", "method": "nope.nope"}')
    assert response["id"] == "abc"


async def test_a_notification_gets_no_response(client):
    await client.ws.send_to(text_data=json.dumps({"jsonrpc": "2.0", "method": "member.audio_mute"}))
    response = await client.call("room.get_members")
    assert response["result"]["members"][0]["audio_muted"] is True


async def test_a_frame_over_64_kib_is_refused_and_the_socket_stays(client):
    frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "member.set_meta", "params": {"meta": {"x": "y" * 70000}}})
    response = await client.send_raw(frame)
    assert response["error"]["code"] == -32600
    member = await database_sync_to_async(Member.objects.get)(id=client.member_id)
    assert member.meta == {}
    assert "result" in await client.call("room.get_members")


async def test_a_binary_frame_is_refused_and_the_socket_stays(client):
    await client.ws.send_to(bytes_data=b"\x00\x01")
    response = json.loads(await client.ws.receive_from(timeout=10))
    while "id" not in response:  # events of the join (memberList.updated) may come first
        response = json.loads(await client.ws.receive_from(timeout=10))
    assert response["error"]["code"] == -32600
    assert "result" in await client.call("room.get_members")


async def test_a_flood_is_rate_limited_and_the_socket_stays(client):
    for i in range(100):
        await client.ws.send_to(text_data=json.dumps({"jsonrpc": "2.0", "id": i, "method": "room.fly"}))
    codes = []
    for _ in range(100):
        message = json.loads(await client.ws.receive_from(timeout=20))
        while "id" not in message:
            message = json.loads(await client.ws.receive_from(timeout=20))
        codes.append(message.get("error", {}).get("code"))
    assert codes.count(-32601) >= 35  # the burst of 40, less the join
    assert codes.count(-32029) >= 20
    await client.ws.receive_nothing(timeout=1.1)  # the bucket refills
    assert "result" in await client.call("room.get_meta")
