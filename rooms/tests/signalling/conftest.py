"""Fixtures for the signalling tests: room tokens, and a JSON-RPC client over the real ASGI application."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from parley.asgi import application
from rooms.permissions import ALL_PERMISSIONS
from rooms.tests.factories import ProjectFactory, RoomFactory
from rooms.tokens import room_token_mint

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _signalling_settings(settings):
    """No media worker unless a test plays one; short media timeouts; a fresh in-memory channel layer."""
    settings.PARLEY_MEDIA_WORKER = "external"
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 0.3
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends = {}
    yield
    from rooms.signalling import consumers

    for task in list(consumers._expiry_tasks):
        task.cancel()
    channel_layers.backends = {}


def mint(project, room_name: str, **claims) -> str:
    claims.setdefault("user_name", "alice")
    claims.setdefault("permissions", list(ALL_PERMISSIONS))
    token, _ = room_token_mint(project=project, claims={"room_name": room_name, **claims})
    return token


class Client:
    """A participant's socket: ``call()`` returns the response to one request; notifications received
    meanwhile are kept in ``events`` for ``event()``."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.ws = communicator
        self.events: list[dict] = []
        self.member_id: str | None = None
        self.room_session_id: str | None = None

    async def _next(self, timeout: float) -> dict:
        return json.loads(await self.ws.receive_from(timeout=timeout))

    async def call(self, method: str, params: dict | None = None, *, timeout: float = 15) -> dict:
        request_id = next(_ids)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send_to(text_data=json.dumps(message))
        return await self.response(request_id, timeout=timeout)

    async def response(self, request_id, *, timeout: float = 15) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                message = await self._next(timeout)
                if "id" in message and message.get("id") == request_id:
                    return message
                if "id" in message:
                    raise AssertionError(f"unexpected response {message}")
                self.events.append(message)

    async def send_raw(self, text: str, *, timeout: float = 15) -> dict:
        """Send a raw frame and return the next response (one with an ``id`` key)."""
        await self.ws.send_to(text_data=text)
        async with asyncio.timeout(timeout):
            while True:
                message = await self._next(timeout)
                if "id" in message:
                    return message
                self.events.append(message)

    async def event(self, event_type: str, *, timeout: float = 15, where=None) -> dict:
        """The params of the next event ``event_type`` (matching ``where(params)``), consuming it."""
        async with asyncio.timeout(timeout):
            while True:
                for i, message in enumerate(self.events):
                    params = message.get("params", {})
                    if (
                        message.get("method") == "event"
                        and params.get("event_type") == event_type
                        and (where is None or where(params["params"]))
                    ):
                        del self.events[i]
                        return params["params"]
                message = await self._next(timeout)
                if "id" in message:
                    raise AssertionError(f"unexpected response {message}")
                self.events.append(message)

    async def no_event(self, event_type: str, *, wait: float = 0.2) -> None:
        try:
            await self.event(event_type, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event {event_type}")

    async def join(self, params: dict | None = None) -> dict:
        response = await self.call("room.join", params or {})
        assert "result" in response, response
        self.member_id = response["result"]["member_id"]
        self.room_session_id = response["result"]["room_session"]["room_session_id"]
        return response["result"]

    async def close(self) -> None:
        await self.ws.disconnect()


async def open_socket(token: str, path: str = "/ws/video/") -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"{path}?token={token}")
    connected, _ = await communicator.connect(timeout=10)
    return communicator, connected


async def connect(token: str) -> Client:
    communicator, connected = await open_socket(token)
    assert connected
    return Client(communicator)


async def joined(project, room_name: str, **claims) -> Client:
    client = await connect(await database_sync_to_async(mint)(project, room_name, **claims))
    await client.join()
    return client


def builtin_layouts_seed() -> None:
    """Transactional tests flush the tables, including the built-in layouts a migration seeds: put them back."""
    from media.mixer.layout_defs import BUILTIN_LAYOUTS
    from rooms.models import Layout

    for name, spec in BUILTIN_LAYOUTS.items():
        Layout.objects.update_or_create(
            project=None,
            name=name,
            defaults={
                "description": spec.get("description", ""),
                "slots": spec.get("slots", []),
                "group": spec.get("group", []),
            },
        )


@pytest.fixture
def project(transactional_db):
    builtin_layouts_seed()
    return ProjectFactory()


@pytest.fixture
def other_project(transactional_db):
    return ProjectFactory()


@pytest.fixture
def room(project):
    return RoomFactory(project=project, name="standup")
