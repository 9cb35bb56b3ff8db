"""``MediaWorker.stop()`` is bounded: with a member joined and a playback whose URL never answers (a TCP server that
accepts and says nothing), the worker stops, tells the member and releases the session, on the real Redis channel
layer, embedded, and when its Redis connection stalls in the middle of the shutdown (a TCP proxy in front of the
real Redis that stops forwarding): then the steps that cannot finish are abandoned and logged, and the placement
is still released. The same through SIGTERM to a ``manage.py mediaworker`` process.

The Redis tests are skipped, with the reason printed, unless ``REDIS_URL`` is set (the process tests also need
PostgreSQL shared with the process: ``DATABASE_URL``).
"""

# The fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from channels.layers import channel_layers, get_channel_layer

from media import protocol
from media.tests.worker.conftest import join, placed_channel, receive
from media.tests.worker.playback_media import private_playback_urls, silent_server, silent_url  # noqa: F401
from media.tests.worker.synthetic import SyntheticMember
from media.tests.worker.test_playback import create_playback
from media.worker import embedded
from media.worker.ice import restrict_host_addresses
from media.worker.worker import STOP_STEPS, MediaWorker
from rooms.tests.api.test_egress_redis import ROOT, _postgres_url

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

# stop() is given its own bound and this much more: beyond it the test reports a hang.
HANG_MARGIN_S = 30.0
OPENING_TIMEOUT_S = 20.0


@pytest.fixture
def redis_layer(redis_channel_layer):
    """The real Redis channel layer (``REDIS_URL``, as ``parley.settings`` configures it) under this test's own
    prefix."""
    restrict_host_addresses()
    return get_channel_layer()


@pytest.fixture
def configured_layer(request, settings):
    """The layer the embedded worker gets in production: Redis (own prefix) with ``REDIS_URL``, else in-memory."""
    if os.environ.get("REDIS_URL"):
        request.getfixturevalue("redis_channel_layer")
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        channel_layers.backends = {}
    restrict_host_addresses()
    yield get_channel_layer()
    channel_layers.backends = {}


@pytest.fixture
async def stalling_proxy(redis_url):
    """``(proxy, url)``: a ``StallingProxy`` in front of ``REDIS_URL`` and the Redis URL that goes through it."""
    target = urlsplit(redis_url)
    proxy = StallingProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    yield proxy, urlunsplit(target._replace(netloc=f"127.0.0.1:{proxy.listen_port}"))
    await proxy.close()


class StallingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``host:port``. ``stall()``: every connection, old or new, stays open
    and nothing more is forwarded in either direction (a peer that stopped answering)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port: int | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self._flowing.clear()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        self._writers += [writer, upstream_writer]
        pipes = [
            asyncio.ensure_future(self._pipe(reader, upstream_writer)),
            asyncio.ensure_future(self._pipe(upstream_reader, writer)),
        ]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()


async def member_with_an_opening_playback(layer, worker: MediaWorker, session, member, url: str):
    """Join ``member`` (a synthetic peer) and start a playback of ``url``; returns ``(client, reply_channel)`` once
    the playback's URL is opening on the worker."""
    client = SyntheticMember((30, 120, 200), 440.0)
    reply, reply_channel = await join(layer, session, member, client)
    assert reply["type"] == protocol.ANSWER, reply
    await client.wait_connected(timeout_s=30)
    assert await placed_channel(session) == worker.channel_name
    playback = await create_playback(session, url)
    await layer.send(
        worker.channel_name,
        {
            "type": protocol.EGRESS,
            "room_session_id": str(session.id),
            "action": "playback.start",
            "object_id": str(playback.id),
            "url": url,
            "reply_channel": await layer.new_channel(),
            "request_id": uuid.uuid4().hex,
        },
    )
    await client.wait_for(
        lambda: getattr(worker.playbacks.get(str(session.id), {}).get(str(playback.id)), "state", None) == "opening",
        timeout_s=OPENING_TIMEOUT_S,
        what="the playback opening",
    )
    return client, reply_channel


def assert_stopped(worker: MediaWorker) -> None:
    assert not worker.started
    assert worker.rooms == {} and worker.peers == {} and worker.playbacks == {}
    assert worker._session_tasks == {}


@pytest.fixture
def never_opening(settings, silent_url):
    """A URL whose open would go on long after the worker stopped."""
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 120
    return silent_url


async def assert_stop_tells_and_releases(layer, worker: MediaWorker, stop, session, member, url: str) -> None:
    """With a member joined and a playback of ``url`` opening, ``stop()`` returns, the member is told
    ``worker_shutdown`` and the session is released."""
    client = None
    try:
        client, reply_channel = await member_with_an_opening_playback(layer, worker, session, member, url)
        await asyncio.wait_for(stop(), worker.stop_bound_s + HANG_MARGIN_S)
        dropped = await receive(layer, reply_channel)
        assert (dropped["type"], dropped["reason"]) == (protocol.MEMBER_DROPPED, "worker_shutdown")
        assert await placed_channel(session) == ""
        assert_stopped(worker)
    finally:
        if client is not None:
            await client.close()


async def test_a_worker_on_redis_stops_tells_the_member_and_releases_the_session_while_a_url_is_opening(
    redis_layer, make_session, make_member, never_opening
):
    worker = MediaWorker(layer=redis_layer)
    await worker.start()
    session = await make_session()
    try:
        member = await make_member(session)
        await assert_stop_tells_and_releases(redis_layer, worker, worker.stop, session, member, never_opening)
    finally:
        await worker.stop()


async def test_the_embedded_worker_stops_and_releases_the_session_while_a_url_is_opening(
    configured_layer, make_session, make_member, never_opening
):
    worker = await embedded.ensure_started()
    session = await make_session()
    try:
        member = await make_member(session)
        await assert_stop_tells_and_releases(configured_layer, worker, embedded.stop, session, member, never_opening)
        again = await embedded.ensure_started()  # a later connection starts a fresh worker
        assert again is not worker and again.started
    finally:
        await embedded.stop()


async def test_a_worker_whose_redis_connection_stalls_abandons_what_hangs_and_still_releases_the_session(
    redis_channel_layer, stalling_proxy, settings, make_session, make_member, never_opening, caplog
):
    proxy, proxied_url = stalling_proxy
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = proxied_url
    channel_layers.backends = {}
    restrict_host_addresses()
    layer = get_channel_layer()
    worker = MediaWorker(layer=layer, stop_step_timeout_s=2.0)
    await worker.start()
    client = None
    try:
        session = await make_session()
        member = await make_member(session)
        client, _ = await member_with_an_opening_playback(layer, worker, session, member, never_opening)
        proxy.stall()
        with caplog.at_level(logging.INFO, logger="media.worker.worker"):
            await asyncio.wait_for(worker.stop(), worker.stop_bound_s + HANG_MARGIN_S)
        # Telling the member needs Redis: that step was abandoned; the placement is released all the same.
        assert "media worker stop abandoned sessions" in caplog.text
        assert str(session.id) in caplog.text
        assert await placed_channel(session) == ""
        assert_stopped(worker)
    finally:
        if client is not None:
            await client.close()
        await worker.stop()


@pytest.fixture
def answerless_server():
    with silent_server() as server:
        yield server


async def wait_for_event(event: threading.Event, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not event.is_set():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("stalls", [False, True], ids=["redis", "stalled-redis"])
async def test_sigterm_stops_a_mediaworker_process_within_its_bound_and_releases_the_session(
    stalls, redis_channel_layer, redis_layer, stalling_proxy, make_session, make_member, answerless_server, tmp_path
):
    database_url = _postgres_url()
    url, accepted = answerless_server
    proxy, proxied_url = stalling_proxy
    step_timeout_s = 2.0
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "parley.settings",
        "DATABASE_URL": database_url,
        # The process reaches Redis through the proxy; this test's own layer goes to Redis directly.
        "REDIS_URL": proxied_url,
        "PARLEY_CHANNEL_PREFIX": redis_channel_layer,
        "PARLEY_MEDIA_WORKER": "external",
        "PARLEY_DATA_DIR": str(tmp_path / "data"),
        "PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS": "1",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    log_path = tmp_path / "mediaworker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "mediaworker", "--stop-step-timeout", str(step_timeout_s)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = None
    try:
        await wait_for_event_in_log(process, log_path, "media worker listening", 60)
        session = await make_session()
        member = await make_member(session)
        client = SyntheticMember((30, 120, 200), 440.0)
        reply, reply_channel = await join(redis_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, (reply, log_path.read_text()[-3000:])
        channel = await placed_channel(session)
        assert channel
        playback = await create_playback(session, url)
        await redis_layer.send(
            channel,
            {
                "type": protocol.EGRESS,
                "room_session_id": str(session.id),
                "action": "playback.start",
                "object_id": str(playback.id),
                "url": url,
                "reply_channel": await redis_layer.new_channel(),
                "request_id": uuid.uuid4().hex,
            },
        )
        await wait_for_event(accepted, OPENING_TIMEOUT_S, "the playback's URL opening")
        if stalls:
            proxy.stall()
        process.send_signal(signal.SIGTERM)
        # stop_bound_s, the event sender's drain (one step at most), then the loop's close (LOOP_CLOSE_TIMEOUT_S)
        bound_s = (STOP_STEPS + 1) * step_timeout_s + 5.0
        deadline = time.monotonic() + bound_s + HANG_MARGIN_S
        while process.poll() is None:
            assert time.monotonic() < deadline, f"mediaworker still running: {log_path.read_text()[-3000:]}"
            await asyncio.sleep(0.1)
        log_text = log_path.read_text()
        assert process.returncode == 0, log_text[-3000:]
        assert "media worker stopped" in log_text
        assert "media worker: event sender drained" in log_text, log_text[-3000:]
        assert await placed_channel(session) == ""
        if stalls:
            assert "media worker stop abandoned sessions" in log_text, log_text[-3000:]
        else:
            dropped = await receive(redis_layer, reply_channel)
            assert (dropped["type"], dropped["reason"]) == (protocol.MEMBER_DROPPED, "worker_shutdown")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if client is not None:
            await client.close()


async def wait_for_event_in_log(process: subprocess.Popen, log_path: Path, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text.encode() not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mediaworker did not start: {log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.1)
