"""Fixtures for the media worker tests: a fresh channel layer, a running worker, live sessions and a helper that
joins a synthetic member exactly as the signalling consumer does (``media.join`` on ``CONTROL_CHANNEL`` or the
worker's channel, then waits for ``media.answer``/``media.error`` on its reply channel)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer

from media import protocol
from media.worker.ice import restrict_host_addresses
from media.worker.worker import MediaWorker
from rooms.events import room_session_group
from rooms.models import RoomSession
from rooms.tests.factories import MemberFactory, RoomSessionFactory

REPLY_TIMEOUT_S = 10.0


@pytest.fixture
def channel_layer(settings):
    """A fresh in-memory channel layer for this test's event loop (also the one ``rooms.events`` uses), whatever
    ``REDIS_URL`` says: these tests are about media; the Redis layer is exercised by the signalling and events
    tests."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    restrict_host_addresses()
    yield get_channel_layer()
    channel_layers.backends.clear()


@pytest.fixture
async def worker(channel_layer):
    media_worker = MediaWorker(layer=channel_layer)
    await media_worker.start()
    yield media_worker
    await media_worker.stop()


@pytest.fixture
def make_session(db):
    def make(**fields) -> RoomSession:
        fields.setdefault("quality", "360p")
        fields.setdefault("fps", 15)
        return RoomSessionFactory(**fields)

    return sync_to_async(make)


@pytest.fixture
def make_member(db):
    return sync_to_async(lambda session, **fields: MemberFactory(room_session=session, **fields))


async def receive(layer, channel: str, timeout_s: float = REPLY_TIMEOUT_S) -> dict:
    """The next message on ``channel``, skipping ``media.sender_constraints`` (the worker sends one to a member's
    reply channel whenever its tile size changes; ``test_sender_constraints.py`` reads them)."""
    async with asyncio.timeout(timeout_s):
        while True:
            message = await layer.receive(channel)
            if message.get("type") != protocol.SENDER_CONSTRAINTS:
                return message


async def request(layer, message: dict, *, channel: str = protocol.CONTROL_CHANNEL) -> dict:
    """Send a command with a fresh reply channel and return the worker's reply."""
    reply_channel = await layer.new_channel()
    await layer.send(channel, {**message, "reply_channel": reply_channel, "request_id": uuid.uuid4().hex})
    return await receive(layer, reply_channel)


async def join(layer, session, member, client, **extra) -> tuple[dict, str]:
    """``media.join`` with the client's offer; applies the answer. Returns ``(reply, reply_channel)``."""
    reply_channel = await layer.new_channel()
    offer = await client.offer()
    await layer.send(
        protocol.CONTROL_CHANNEL,
        {
            "type": protocol.JOIN,
            "room_session_id": str(session.id),
            "member_id": str(member.id),
            "sdp": offer,
            "audio": True,
            "video": True,
            "join_as": extra.get("join_as", member.join_as),
            "media_allowed": extra.get("media_allowed", member.media_allowed),
            "reply_channel": reply_channel,
            "request_id": uuid.uuid4().hex,
        },
    )
    reply = await receive(layer, reply_channel)
    if reply["type"] == protocol.ANSWER:
        await client.accept(reply["sdp"])
    return reply, reply_channel


async def placed_channel(session) -> str:
    return (await RoomSession.objects.aget(id=session.id)).media_worker


async def listen_room_events(layer, session) -> str:
    channel = await layer.new_channel()
    await layer.group_add(room_session_group(session.id), channel)
    return channel


async def latest_layout(layer, events_channel: str, member_count: int, timeout_s: float = 8.0) -> dict:
    """The first ``layout.changed`` whose layers hold ``member_count`` members."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        message = await receive(layer, events_channel, max(0.1, deadline - loop.time()))
        body = message["event"]
        if body["event_type"] != "layout.changed":
            continue
        layout = body["params"]["layout"]
        if sum(1 for layer in layout["layers"] if layer["member_id"]) == member_count:
            return layout
