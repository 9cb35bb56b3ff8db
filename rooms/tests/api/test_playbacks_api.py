"""Playbacks over REST against a real embedded media worker: a synthetic member joins so the session is placed,
then the REST API plays a generated MP4 served over HTTP on 127.0.0.1 into the room, controls it and stops it;
the member's decoded canvas shows the playback's colour inside the layer announced in ``layout.changed``."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from media import protocol
from media.tests.worker.conftest import (  # noqa: F401
    channel_layer,
    latest_layout,
    make_member,
    make_session,
    worker,
)
from media.tests.worker.playback_media import PLAYBACK_RGB, http_media, make_mp4, private_playback_urls  # noqa: F401
from media.tests.worker.test_playback import MEMBER_RGB, close_to, colour_at, joined_member, wait_event
from rooms.models import Playback, RoomSessionEvent
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.api.test_egress_api import post
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


def get(client, path: str):
    return sync_to_async(client.get, thread_sensitive=False)(path)


async def layout_named(channel_layer, events_channel: str, name: str, timeout_s: float = 15.0) -> dict:
    """The first ``layout.changed`` of layout ``name``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        message = await asyncio.wait_for(channel_layer.receive(events_channel), max(0.1, deadline - loop.time()))
        body = message["event"]
        if body["event_type"] == "layout.changed" and body["params"]["layout"]["name"] == name:
            return body["params"]["layout"]


async def placed(channel_layer, make_session, make_member, project):
    """A live session of ``project`` held by the worker: one synthetic member joined."""
    room = await sync_to_async(RoomFactory)(project=project)
    return await joined_member(channel_layer, make_session, make_member, room=room)


async def test_a_playback_started_over_rest_plays_in_its_layer_is_controlled_and_stops(
    channel_layer, worker, make_session, make_member, owner, outsider, http_media
):
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 10.0)
    url = base_url + "clip.mp4"
    session, member, client, events = await placed(channel_layer, make_session, make_member, owner.project)
    try:
        sessions_url = f"/api/video/room_sessions/{session.id}/playbacks"
        assert (await post(outsider.client, sessions_url, {"url": url})).status_code == 404
        response = await post(owner.client, sessions_url, {"url": url, "volume": -6, "seek_position": 1000})
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["state"], body["volume"], body["position_ms"], body["url"]) == ("playing", -6.0, 1000, url)
        playback_id = body["id"]
        assert await RoomSessionEvent.objects.filter(name="playback.started", room_session_id=session.id).aexists()

        # Switch the layout so the placement is announced after the view's own writes have committed.
        await channel_layer.send(
            worker.channel_name,
            {"type": protocol.LAYOUT, "room_session_id": str(session.id), "layout_name": "2x2", "positions": {}},
        )
        layout = await layout_named(channel_layer, events, "2x2")
        rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
        assert set(rects) == {str(member.id), playback_id}
        assert rects[playback_id]["playing_file"] is True
        await client.wait_for(
            lambda: (
                client.latest_frame is not None
                and close_to(colour_at(client.canvas_rgb(), rects[playback_id]), PLAYBACK_RGB)
                and close_to(colour_at(client.canvas_rgb(), rects[str(member.id)]), MEMBER_RGB)
            ),
            timeout_s=15,
            what="the playback's colour in its layer",
        )

        listed = await get(owner.client, sessions_url)
        assert [p["id"] for p in listed.json()["data"]] == [playback_id]
        assert (await get(owner.client, f"/api/video/playbacks/{playback_id}")).json()["state"] == "playing"
        assert (await get(outsider.client, sessions_url)).status_code == 404
        assert (await get(outsider.client, f"/api/video/playbacks/{playback_id}")).status_code == 404
        assert (await post(outsider.client, f"/api/video/playbacks/{playback_id}/pause")).status_code == 404
        assert (await post(owner.client, f"/api/video/playbacks/{playback_id}/rewind")).status_code == 404

        source = worker.playbacks[str(session.id)][playback_id]
        paused = await post(owner.client, f"/api/video/playbacks/{playback_id}/pause")
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert source.state == "paused"  # the worker applied it before the answer
        resumed = await post(owner.client, f"/api/video/playbacks/{playback_id}/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] == "playing"
        assert source.state == "playing"
        bad_seek = await post(owner.client, f"/api/video/playbacks/{playback_id}/seek", {"position_ms": -5})
        assert bad_seek.status_code == 422 and error_attributes(bad_seek) == ["position_ms"]
        sought = await post(owner.client, f"/api/video/playbacks/{playback_id}/seek", {"position_ms": 6000})
        assert sought.status_code == 200 and sought.json()["position_ms"] == 6000
        await client.wait_for(lambda: source.position_ms >= 6000, timeout_s=10, what="the position after seek")
        louder = await post(owner.client, f"/api/video/playbacks/{playback_id}/set_volume", {"volume": -20})
        assert louder.status_code == 200 and louder.json()["volume"] == -20.0
        assert source.member.input_volume == -20.0

        stopped = await post(owner.client, f"/api/video/playbacks/{playback_id}/stop")
        assert stopped.status_code == 200, stopped.json()
        assert stopped.json()["state"] == "completed" and stopped.json()["ended_at"]
        ended = await wait_event(channel_layer, events, "playback.ended")
        assert ended["params"]["playback"]["id"] == playback_id
        layout = await latest_layout(channel_layer, events, 1)
        assert all(layer["member_id"] != playback_id for layer in layout["layers"])
        assert playback_id not in worker.rooms[str(session.id)].members
        again = await post(owner.client, f"/api/video/playbacks/{playback_id}/stop")
        assert again.status_code == 409 and error_codes(again) == ["conflict"]
    finally:
        await client.close()


async def test_a_url_the_worker_cannot_play_is_422_with_its_reason_and_the_room_plays_on(
    channel_layer, worker, make_session, make_member, owner, http_media
):
    served, base_url = http_media
    (served / "notes.txt").write_text("plain text, not a video\n" * 40)
    session, member, client, events = await placed(channel_layer, make_session, make_member, owner.project)
    try:
        for name, reason in (("missing.mp4", "not_found"), ("notes.txt", "not_media")):
            response = await post(
                owner.client, f"/api/video/room_sessions/{session.id}/playbacks", {"url": base_url + name}
            )
            assert response.status_code == 422, response.json()
            assert error_codes(response) == ["invalid_parameter"] and error_attributes(response) == ["url"]
            message = response.json()["errors"][0]["message"]
            assert message == f"The media worker could not play the URL: {protocol.PLAYBACK_OPEN_FAILURES[reason]}"
            playback = await Playback.objects.aget(room_session_id=session.id, url=base_url + name)
            assert (playback.state, playback.failure_reason) == ("failed", reason)
            ended = await wait_event(channel_layer, events, "playback.ended")
            assert ended["params"]["playback"]["failure_reason"] == reason
        assert list(worker.rooms[str(session.id)].members) == [str(member.id)]
        frames = client.frames
        await client.wait_for(lambda: client.frames > frames + 5, timeout_s=10, what="the room still sending video")
    finally:
        await client.close()


def test_start_parameters_are_checked_before_anything_is_written(api, owner):
    session = RoomSessionFactory(room=RoomFactory(project=owner.project))
    member = MemberFactory(room_session=session)
    base = f"/api/video/room_sessions/{session.id}/playbacks"
    good = "https://media.example.com/a.mp4"
    for body, attribute in (
        ({"url": "ftp://media.example.com/a.mp4"}, "url"),
        ({"url": "file:///var/parley/recordings/a.mp4"}, "url"),
        ({"url": "https:///no-host.mp4"}, "url"),
        ({"url": good, "volume": 99}, "volume"),
        ({"url": good, "seek_position": -1}, "seek_position"),
        ({"url": good, "layout": "no-such-layout"}, "layout"),
        ({"url": good, "positions": {"self": "middle"}}, "positions.self"),
        ({"url": good, "positions": {"00000000-0000-0000-0000-000000000000": "auto"}}, None),
        ({}, "url"),
    ):
        response = api.post(base, body, format="json")
        assert response.status_code == 422, (body, response.json())
        if attribute:
            assert error_attributes(response) == [attribute], body
    assert not Playback.objects.exists()
    # Valid parameters, but no media worker holds the session: 503 and still nothing written.
    response = api.post(base, {"url": good, "positions": {str(member.id): "auto", "self": "reserved-1"}}, format="json")
    assert response.status_code == 503 and error_codes(response) == ["media_unavailable"]
    assert not Playback.objects.exists()
    assert (
        api.post(
            "/api/video/room_sessions/00000000-0000-0000-0000-000000000000/playbacks", {"url": good}, format="json"
        ).status_code
        == 404
    )
    session.status = "completed"
    session.save()
    ended = api.post(base, {"url": good}, format="json")
    assert ended.status_code == 409 and error_codes(ended) == ["conflict"]


def test_a_placed_worker_that_does_not_answer_is_503_and_is_told_to_drop_the_playback(api, owner, settings):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 0.5
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    silent_worker = "mediaworker.silent!test"
    session = RoomSessionFactory(room=RoomFactory(project=owner.project), media_worker=silent_worker)
    response = api.post(
        f"/api/video/room_sessions/{session.id}/playbacks", {"url": "https://media.example.com/a.mp4"}, format="json"
    )
    assert response.status_code == 503 and error_codes(response) == ["media_unavailable"]
    playback = Playback.objects.get(room_session=session)
    assert (playback.state, playback.failure_reason) == ("failed", "media_unavailable")
    receive = async_to_sync(get_channel_layer().receive)
    start, stop = receive(silent_worker), receive(silent_worker)
    assert (start["action"], start["object_id"]) == ("playback.start", str(playback.id))
    assert (stop["action"], stop["object_id"]) == ("playback.stop", str(playback.id))
    assert api.post(f"/api/video/playbacks/{playback.id}/resume").status_code == 409
    channel_layers.backends.clear()


PRIVATE_URLS = (
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://127.0.0.1:8000/clip.mp4",
    "https://localhost/clip.mp4",  # a host name resolving to loopback
    "rtsp://[::1]/live",
    "http://[::ffff:10.0.0.5]/clip.mp4",  # IPv4-mapped private address
    "rtmp://192.168.1.20/live/key",
)


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_a_private_loopback_or_metadata_url_is_422_url_not_allowed_and_nothing_is_written(api, owner, settings, url):
    settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = False
    session = RoomSessionFactory(room=RoomFactory(project=owner.project), media_worker="mediaworker.unused!test")
    response = api.post(f"/api/video/room_sessions/{session.id}/playbacks", {"url": url}, format="json")
    assert response.status_code == 422, response.json()
    assert error_codes(response) == ["invalid_parameter"] and error_attributes(response) == ["url"]
    assert "private, loopback or link-local" in response.json()["errors"][0]["message"]
    assert not Playback.objects.exists()
    assert not RoomSessionEvent.objects.filter(name__startswith="playback.").exists()


def test_with_private_urls_allowed_a_loopback_url_passes_the_guard(api, owner, settings):
    settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = True
    session = RoomSessionFactory(room=RoomFactory(project=owner.project))
    response = api.post(f"/api/video/room_sessions/{session.id}/playbacks", {"url": PRIVATE_URLS[1]}, format="json")
    # Past the guard: the next check is that a media worker holds the session (none here).
    assert response.status_code == 503 and error_codes(response) == ["media_unavailable"]
