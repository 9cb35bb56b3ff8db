"""The embedded media worker stops with the web process: Daphne (``parley.asgi:application``, ``PARLEY_MEDIA_WORKER``
``embedded``, SQLite) runs as a subprocess, a member joins over a real WebSocket with a real aiortc offer so the
session is placed on the embedded worker, then SIGTERM: the worker's bounded ``stop()`` runs before the event
sender's drain, the member is told (``media.dropped`` ``worker_shutdown``) and the placement is released in the
SQLite file."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from media.tests.worker.synthetic import SyntheticMember
from media.worker.ice import restrict_host_addresses
from tests.conftest import _server_env

ROOT = Path(__file__).resolve().parents[3]

_SETUP = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from rooms.models import Project
from rooms.tokens import room_token_mint
p = Project.objects.create(name="shutdown")
token, _ = room_token_mint(project=p, claims={"room_name": "standup", "user_name": "alice",
                                               "permissions": ["room.self.audio_mute"]})
print(json.dumps({"token": token}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def daphne_embedded(tmp_path):
    """``(port, sqlite_path, token, process)``: Daphne with the embedded media worker on a migrated SQLite file."""
    env = {**_server_env(tmp_path), "LOG_LEVEL": "INFO"}  # the browser tests' Daphne: SQLite, embedded worker
    sqlite_path = tmp_path / "parley.sqlite3"
    setup = subprocess.run(
        [sys.executable, "-c", _SETUP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert setup.returncode == 0, setup.stderr[-4000:]
    token = json.loads(setup.stdout.strip().splitlines()[-1])["token"]
    port = _free_port()
    log_path = tmp_path / "daphne.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "parley.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-4000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert time.monotonic() < deadline, "daphne did not answer within 120 s"
                time.sleep(0.2)
        yield port, sqlite_path, token, process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _placement(sqlite_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(sqlite_path, timeout=30) as db:
        return db.execute("SELECT status, media_worker FROM rooms_roomsession").fetchall()


async def test_sigterm_stops_the_embedded_worker_which_tells_the_member_and_releases_the_session(daphne_embedded):
    from websockets.asyncio.client import connect as ws_connect

    port, sqlite_path, token, process, log_path = daphne_embedded
    restrict_host_addresses()  # PARLEY_ICE_HOST_ADDRESSES of the test settings: loopback
    member = SyntheticMember((200, 40, 40), None)
    received: list[dict] = []
    try:
        async with ws_connect(f"ws://127.0.0.1:{port}/ws/video/?token={token}") as ws:
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "room.join", "params": {"sdp": await member.offer()}})
            )
            async with asyncio.timeout(60):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("id") == 1:
                        break
            assert "result" in message, message
            await member.accept(message["result"]["sdp"])
            member_id = message["result"]["member_id"]
            placements = await asyncio.to_thread(_placement, sqlite_path)
            assert len(placements) == 1 and placements[0][1], placements  # placed on the embedded worker

            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                while True:
                    message = json.loads(await ws.recv())
                    received.append(message)
                    if message.get("params", {}).get("event_type") == "media.dropped":
                        break
            dropped = message["params"]["params"]
            assert (dropped["member_id"], dropped["reason"]) == (member_id, "worker_shutdown")
    finally:
        await member.close()
    returncode = await asyncio.to_thread(process.wait, 120)
    log = log_path.read_text(errors="replace")
    assert returncode == 0, log[-4000:]
    assert "media worker stopped" in log and "reason=worker_shutdown" in log, log[-4000:]
    placements = await asyncio.to_thread(_placement, sqlite_path)
    assert [worker for _status, worker in placements] == [""], placements
