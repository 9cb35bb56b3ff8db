"""Two consumers in two processes — a Daphne subprocess and an in-process communicator — exchanging events
through the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from rooms.tests.signalling.conftest import joined, mint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def _database_url_for_subprocess() -> str:
    """The test database as a URL another process can open; skip when it is in-memory SQLite."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        user = settings_dict.get("USER") or "postgres"
        password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
    name = str(settings_dict["NAME"])
    if connection.vendor == "sqlite" and "memory" not in name:
        return f"sqlite:///{name}"
    pytest.skip("needs a database another process can open: set DATABASE_URL (PostgreSQL)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def daphne(redis_url, redis_channel_layer, tmp_path, project):
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "parley.settings",
        "DATABASE_URL": _database_url_for_subprocess(),
        "REDIS_URL": redis_url,
        "PARLEY_CHANNEL_PREFIX": redis_channel_layer,
        "PARLEY_MEDIA_WORKER": "external",
        "PARLEY_DATA_DIR": str(tmp_path / "daphne-data"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "parley.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("daphne did not start listening within 30 s")
    yield f"ws://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


class RemoteClient:
    """A participant connected to the Daphne subprocess over a real WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.backlog: list[dict] = []
        self.next_id = 0

    async def call(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}))
        async with asyncio.timeout(20):
            while True:
                message = json.loads(await self.ws.recv())
                if message.get("id") == self.next_id:
                    return message
                self.backlog.append(message)

    async def event(self, event_type: str, where=None) -> dict:
        async with asyncio.timeout(20):
            while True:
                for i, message in enumerate(self.backlog):
                    params = message.get("params", {})
                    if params.get("event_type") == event_type and (where is None or where(params["params"])):
                        del self.backlog[i]
                        return params["params"]
                self.backlog.append(json.loads(await self.ws.recv()))


async def test_members_on_two_processes_exchange_events_through_redis(project, room, daphne):
    from websockets.asyncio.client import connect as ws_connect

    local = await joined(project, "standup", user_name="Local")
    token = await database_sync_to_async(mint)(project, "standup", user_name="Remote")
    async with ws_connect(f"{daphne}/ws/video/?token={token}") as ws:
        remote = RemoteClient(ws)
        result = (await remote.call("room.join"))["result"]
        assert result["room_session"]["room_session_id"] == local.room_session_id
        remote_id = result["member_id"]

        # an event emitted in the Daphne process reaches the in-process consumer
        joined_event = await local.event("member.joined", timeout=20)
        assert joined_event["member"]["id"] == remote_id

        # and the other way round
        await local.call("member.audio_mute")
        updated = await remote.event("member.updated", where=lambda p: p["member"]["id"] == local.member_id)
        assert updated["member"]["audio_muted"] is True

        # an RPC on the remote socket acting on the local member
        assert "result" in await remote.call("member.video_mute", {"member_id": local.member_id})
        event = await local.event("member.updated", timeout=5, where=lambda p: p["member"]["video_muted"])
        assert event["member"]["id"] == local.member_id

        await remote.call("room.leave")
        left = await local.event("member.left", timeout=20)
        assert left["member"]["id"] == remote_id
    await local.close()


async def test_an_invalid_token_is_closed_with_4001_by_daphne(project, daphne):
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    async with ws_connect(f"{daphne}/ws/video/?token=bogus") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd.code == 4001
