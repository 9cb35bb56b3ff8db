"""``room.playback.*`` over the real signalling socket with a real media worker in this process: the RPC runs the
same service as REST (``rooms.services.playbacks``). The host's media (a synthetic aiortc peer on 127.0.0.1) joins
through the worker, which so holds the session, plays a generated MP4 served over HTTP on 127.0.0.1, and refuses
URLs it cannot play with the reason."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from media import protocol
from media.tests.worker.conftest import join
from media.tests.worker.playback_media import http_media, make_mp4, private_playback_urls, silent_url  # noqa: F401
from media.tests.worker.synthetic import SyntheticMember
from media.worker.ice import restrict_host_addresses
from media.worker.worker import MediaWorker
from rooms.models import Member, Playback, RoomSession
from rooms.tests.signalling.conftest import joined

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def worker(settings):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 9  # the worker's open gives up after 6 s
    restrict_host_addresses()
    media_worker = MediaWorker(layer=get_channel_layer())
    await media_worker.start()
    yield media_worker
    await media_worker.stop()


async def _media_joined(client) -> SyntheticMember:
    """The member's media joins through the worker (as ``room.join`` with an SDP would): the session is placed."""
    media = SyntheticMember((40, 60, 230), None)
    member = await Member.objects.aget(id=client.member_id)
    session = SimpleNamespace(id=client.room_session_id)
    reply, _ = await join(get_channel_layer(), session, member, media)
    assert reply["type"] == protocol.ANSWER, reply
    await media.wait_connected()
    return media


async def test_room_playback_start_plays_the_url_and_refuses_what_it_cannot_play(
    project, room, worker, http_media, silent_url
):
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 10.0)
    host = await joined(project, "standup")
    media = await _media_joined(host)
    try:
        response = await host.call("room.playback.start", {"url": base_url + "clip.mp4", "volume": -3}, timeout=15)
        playback = response["result"]["playback"]
        assert (playback["state"], playback["volume"], playback["failure_reason"]) == ("playing", -3.0, None)
        started = await host.event("playback.started", timeout=20)
        assert started["playback"]["id"] == playback["id"]
        assert worker.playbacks[host.room_session_id][playback["id"]].state == "playing"

        missing = await host.call("room.playback.start", {"url": base_url + "missing.mp4"}, timeout=15)
        assert missing["error"]["code"] == -32602
        assert missing["error"]["data"] == {"code": "invalid_parameter", "attribute": "url", "reason": "not_found"}
        ended = await host.event("playback.ended", timeout=20)
        assert (ended["playback"]["state"], ended["playback"]["failure_reason"]) == ("failed", "not_found")

        # A URL that never answers: other methods of the room are answered meanwhile.
        request = {"jsonrpc": "2.0", "id": "silent", "method": "room.playback.start", "params": {"url": silent_url}}
        await host.ws.send_to(text_data=json.dumps(request))
        listed = await host.call("room.playback.list", timeout=20)
        assert {p["url"] for p in listed["result"]["playbacks"]} >= {silent_url, base_url + "clip.mp4"}
        silent = await host.response("silent", timeout=30)
        assert silent["error"]["data"]["reason"] == "timeout"
        assert await Playback.objects.filter(url=silent_url, state="failed", failure_reason="timeout").aexists()

        stopped = await host.call("playback.stop", {"playback_id": playback["id"]}, timeout=20)
        assert stopped["result"]["playback"]["state"] == "completed"
        await host.event("playback.ended", timeout=5, where=lambda p: p["playback"]["id"] == playback["id"])
        room = worker.rooms[host.room_session_id]
        await media.wait_for(lambda: playback["id"] not in room.members, timeout_s=10, what="the layer removed")
    finally:
        await media.close()
        await host.close()


async def test_seek_position_needs_the_seek_permission(project, room, worker):
    host = await joined(project, "standup", permissions=["room.playback"])
    await database_sync_to_async(RoomSession.objects.filter(id=host.room_session_id).update)(
        media_worker=worker.channel_name
    )
    try:
        response = await host.call("room.playback.start", {"url": "https://127.0.0.1/a.mp4", "seek_position": 5000})
        assert response["error"]["code"] == -32003
        assert response["error"]["data"]["permission"] == "room.playback_seek"
        assert not await Playback.objects.aexists()
    finally:
        await host.close()


async def test_room_playback_start_refuses_private_loopback_and_metadata_urls(project, room, settings):
    settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = False
    host = await joined(project, "standup")
    try:
        for url in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/clip.mp4", "http://localhost/a"):
            response = await host.call("room.playback.start", {"url": url}, timeout=15)
            assert response["error"]["code"] == -32602, (url, response)
            assert response["error"]["data"] == {
                "code": "invalid_parameter",
                "attribute": "url",
                "reason": "url_not_allowed",
            }, url
        assert not await Playback.objects.aexists()
        # The socket and the member are unaffected.
        assert "result" in await host.call("room.playback.list", timeout=15)
    finally:
        await host.close()
