"""A playback is ``opening`` while the media worker opens its URL: REST shows the row ``opening`` and no
``playback.started`` is emitted until the worker plays it (then ``playing``); a URL that never answers ends the
playback ``failed`` with ``playback.ended`` and its reason, never ``playback.started``. Real MP4 served over HTTP on
127.0.0.1 by a server that holds each request until the test lets it through; a real embedded media worker."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import functools
import http.server
import threading

import pytest

from media import protocol
from media.tests.worker.conftest import (  # noqa: F401
    channel_layer,
    make_member,
    make_session,
    worker,
)
from media.tests.worker.playback_media import make_mp4, private_playback_urls, silent_server  # noqa: F401
from media.tests.worker.test_playback import wait_event
from rooms.models import Playback, RoomSessionEvent
from rooms.tests.api.test_egress_api import post
from rooms.tests.api.test_playbacks_api import get, placed

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


class _GatedHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory once ``gate`` is set; ``asked`` is set when a request arrived."""

    gate: threading.Event
    asked: threading.Event

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        self.asked.set()
        self.gate.wait(60)
        super().do_GET()

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def gated_media(tmp_path):
    """``(directory, base_url, asked, gate)``: files of ``directory`` served at ``base_url + name`` once ``gate``
    is set."""
    root = tmp_path / "gated"
    root.mkdir()
    handler = type("Handler", (_GatedHandler,), {"gate": threading.Event(), "asked": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="test-gated-media", daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", handler.asked, handler.gate
    finally:
        handler.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


async def wait_for(predicate, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_playback_reads_opening_until_the_worker_plays_it_and_only_then_is_started(
    channel_layer, worker, make_session, make_member, owner, gated_media, settings
):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 30  # the held open stays well inside the worker's open timeout
    served, base_url, asked, gate = gated_media
    make_mp4(served / "clip.mp4", 5.0)
    session, _member, client, events = await placed(channel_layer, make_session, make_member, owner.project)
    try:
        sessions_url = f"/api/video/room_sessions/{session.id}/playbacks"
        starting = asyncio.ensure_future(post(owner.client, sessions_url, {"url": base_url + "clip.mp4"}))
        await asyncio.to_thread(asked.wait, 30)
        assert asked.is_set(), "the worker never asked for the URL"

        listed = (await get(owner.client, sessions_url)).json()["data"]
        assert [p["state"] for p in listed] == ["opening"]
        playback_id = listed[0]["id"]
        assert (await get(owner.client, f"/api/video/playbacks/{playback_id}")).json()["state"] == "opening"
        assert not await RoomSessionEvent.objects.filter(name="playback.started", room_session_id=session.id).aexists()
        assert not starting.done()

        gate.set()
        response = await asyncio.wait_for(starting, 30)
        assert response.status_code == 201, response.json()
        assert (response.json()["id"], response.json()["state"]) == (playback_id, "playing")
        started = await wait_event(channel_layer, events, "playback.started", timeout_s=20)
        assert started["params"]["playback"]["state"] == "playing"
        assert (await Playback.objects.aget(id=playback_id)).state == Playback.State.PLAYING
    finally:
        gate.set()
        await client.close()


async def test_a_url_that_never_answers_ends_failed_with_its_reason_and_is_never_started(
    channel_layer, worker, make_session, make_member, owner, settings
):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 5  # the worker gives up opening after 2 s
    session, _member, client, events = await placed(channel_layer, make_session, make_member, owner.project)
    try:
        with silent_server() as (url, accepted):
            sessions_url = f"/api/video/room_sessions/{session.id}/playbacks"
            starting = asyncio.ensure_future(post(owner.client, sessions_url, {"url": url}))
            await asyncio.to_thread(accepted.wait, 30)
            assert accepted.is_set(), "the worker never connected"

            async def opening_listed() -> bool:
                data = (await get(owner.client, sessions_url)).json()["data"]
                return [p["state"] for p in data] == ["opening"] or starting.done()

            await wait_for(opening_listed, 20, "the opening row")
            response = await asyncio.wait_for(starting, 30)
        assert response.status_code == 422, response.json()
        assert response.json()["errors"][0]["message"] == (
            f"The media worker could not play the URL: {protocol.PLAYBACK_OPEN_FAILURES['timeout']}"
        )
        ended = await wait_event(channel_layer, events, "playback.ended", timeout_s=20)
        assert (ended["params"]["playback"]["state"], ended["params"]["playback"]["failure_reason"]) == (
            "failed",
            "timeout",
        )
        playback = await Playback.objects.aget(room_session_id=session.id)
        assert (playback.state, playback.failure_reason) == (Playback.State.FAILED, "timeout")
        assert not await RoomSessionEvent.objects.filter(name="playback.started", room_session_id=session.id).aexists()
    finally:
        await client.close()
