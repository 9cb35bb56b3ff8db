"""The ordered event sender at shutdown (ASGI lifespan of ``parley.asgi.application``) and how sync threads find
the server loop (``rooms.event_sender``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.layers import InMemoryChannelLayer, channel_layers

from parley.asgi import application
from rooms import event_sender
from rooms.tests.signalling.test_join_burst import _body


class SlowLayer(InMemoryChannelLayer):
    """The in-memory layer logging the id of each event sent to a group; while ``release`` is an unset event,
    group sends wait for it (a channel layer that does not answer)."""

    sent: list[str] = []
    release: asyncio.Event | None = None

    async def group_send(self, group, message):
        if SlowLayer.release is not None:
            await SlowLayer.release.wait()
        if group.startswith("rs."):
            SlowLayer.sent.append(message["event"]["id"])
        await super().group_send(group, message)


@pytest.fixture
def slow_layer(settings):
    SlowLayer.sent = []
    SlowLayer.release = None
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.SlowLayer"}}
    channel_layers.backends = {}
    yield SlowLayer
    if SlowLayer.release is not None:
        SlowLayer.release.set()
    channel_layers.backends = {}


async def _lifespan() -> ApplicationCommunicator:
    app = ApplicationCommunicator(application, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await app.send_input({"type": "lifespan.startup"})
    assert await app.receive_output(timeout=60) == {"type": "lifespan.startup.complete"}
    return app


def _submit_gated(first: dict, *rest: dict) -> list[bool]:
    """From a server sync thread: ``first`` behind a join's gate that is never opened, then ``rest``."""
    with event_sender.broadcasts_gated():
        queued = [event_sender.submit(first)]
    return queued + [event_sender.submit(b) for b in rest]


async def test_lifespan_shutdown_broadcasts_held_and_gated_events_before_it_completes(slow_layer, monkeypatch):
    monkeypatch.setattr(event_sender, "MEMBER_LIST_COALESCE_SECONDS", 600.0)
    monkeypatch.setattr(event_sender, "GATE_TIMEOUT_SECONDS", 600.0)
    app = await _lifespan()
    rs = str(uuid.uuid4())
    l1, l2 = _body(rs, "memberList.updated", total=1), _body(rs, "memberList.updated", total=2)
    await sync_to_async(lambda: [event_sender.submit(b) for b in (l1, l2)])()
    joined, l3 = _body(rs, "member.joined", member={"id": "c"}), _body(rs, "memberList.updated", total=3)
    assert all(await sync_to_async(_submit_gated)(joined, l3))
    async with asyncio.timeout(60):
        while l1["id"] not in slow_layer.sent:
            await asyncio.sleep(0.02)
    assert slow_layer.sent == [l1["id"]]  # l2 held for its window, the rest behind the gate

    await app.send_input({"type": "lifespan.shutdown"})
    assert await app.receive_output(timeout=60) == {"type": "lifespan.shutdown.complete"}
    # all sent, in order, before the server may stop: the held list replaced by the newer one
    assert slow_layer.sent == [l1["id"], joined["id"], l3["id"]]


async def test_the_shutdown_drain_is_bounded_and_counts_what_it_left(slow_layer, monkeypatch, caplog):
    monkeypatch.setattr(event_sender, "DRAIN_SECONDS", 0.5)
    app = await _lifespan()
    slow_layer.release = asyncio.Event()  # the layer stops answering
    rs = str(uuid.uuid4())
    bodies = [_body(rs, "member.updated", member={"id": str(i)}) for i in range(3)]
    assert all(await sync_to_async(lambda: [event_sender.submit(b) for b in bodies])())

    await app.send_input({"type": "lifespan.shutdown"})
    assert await app.receive_output(timeout=60) == {"type": "lifespan.shutdown.complete"}
    assert slow_layer.sent == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # one is stuck in the layer, two are still queued
    assert "event sender: 2 event(s) not broadcast within 0.5 s of shutdown" in warnings


def test_a_thread_outside_any_server_sends_events_itself():
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.append(event_sender.submit(_body(str(uuid.uuid4()), "member.updated")))
    )
    thread.start()
    thread.join(60)
    assert results == [False]


def test_sync_code_on_a_running_loop_sends_events_itself():
    async def on_the_loop():
        return event_sender.submit(_body(str(uuid.uuid4()), "member.updated"))

    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(on_the_loop())))
    thread.start()
    thread.join(60)
    assert results == [False]


def test_under_daphne_a_sigterm_drains_the_event_sender(tmp_path):
    """Daphne speaks no lifespan: the first request through ``parley.asgi.application`` hooks the drain into the
    reactor's shutdown, which SIGTERM starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "parley.settings",
        "PARLEY_DATA_DIR": str(tmp_path / "daphne-data"),
        "PARLEY_MEDIA_WORKER": "external",
        "LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "parley.asgi:application"],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        answered = False
        while not answered and time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).close()
                answered = True
            except urllib.error.HTTPError:
                answered = True  # any HTTP answer went through the application
            except OSError:
                time.sleep(0.2)
        assert answered, "daphne did not answer within 120 s"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    assert "event sender drained at Daphne shutdown: 0 event(s) queued, 0 left unsent" in stderr, stderr[-2000:]
