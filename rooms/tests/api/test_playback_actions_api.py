"""Playback actions over REST are acknowledged by the media worker before anything is written: a seek of a live
stream is 409 ``not_seekable``, an action on a playback the worker does not hold is 404 and ends it (``failed``,
``worker_lost``), and a placed worker that does not answer is 503 with the row unchanged. Real embedded worker, real
aiortc member and an MPEG-TS live stream served on 127.0.0.1."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer

from media.tests.worker.conftest import (  # noqa: F401
    channel_layer,
    make_member,
    make_session,
    worker,
)
from media.tests.worker.playback_media import private_playback_urls  # noqa: F401
from rooms.models import Playback, RoomSessionEvent
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.api.test_egress_api import post
from rooms.tests.api.test_playbacks_api import placed
from rooms.tests.factories import RoomFactory, RoomSessionFactory
from rooms.tests.signalling.test_playback_actions_rpc import live_stream_url  # noqa: F401

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


async def test_rest_seek_of_a_live_stream_is_409_and_a_playback_the_worker_does_not_hold_is_404(
    channel_layer, worker, make_session, make_member, owner, live_stream_url, settings
):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 9
    session, _member, client, _events = await placed(channel_layer, make_session, make_member, owner.project)
    try:
        started = await post(owner.client, f"/api/video/room_sessions/{session.id}/playbacks", {"url": live_stream_url})
        assert started.status_code == 201, started.json()
        playback_id = started.json()["id"]
        refused = await post(owner.client, f"/api/video/playbacks/{playback_id}/seek", {"position_ms": 3000})
        assert refused.status_code == 409 and error_codes(refused) == ["conflict"], refused.json()
        assert (await Playback.objects.aget(id=playback_id)).position_ms == 0

        lost = await Playback.objects.acreate(
            project_id=session.project_id, room_session_id=session.id, url="https://media.example.com/a.mp4"
        )
        await Playback.objects.filter(id=lost.id).aupdate(state=Playback.State.PLAYING)
        paused = await post(owner.client, f"/api/video/playbacks/{lost.id}/pause")
        assert paused.status_code == 404 and error_attributes(paused) == ["playback_id"], paused.json()
        # No worker plays it: the row ends (failed, worker_lost, playback.ended) rather than showing as playing.
        row = await Playback.objects.aget(id=lost.id)
        assert (row.state, row.failure_reason) == (Playback.State.FAILED, "worker_lost") and row.ended_at
        assert await RoomSessionEvent.objects.filter(name="playback.ended", room_session_id=session.id).aexists()
        stopped = await post(owner.client, f"/api/video/playbacks/{lost.id}/stop")
        assert stopped.status_code == 409 and error_codes(stopped) == ["conflict"], stopped.json()
    finally:
        await client.close()


def test_a_placed_worker_that_does_not_answer_an_action_is_503_and_nothing_is_written(api, owner, settings):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 0.5
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    silent_worker = "mediaworker.silent!test"
    session = RoomSessionFactory(room=RoomFactory(project=owner.project), media_worker=silent_worker)
    playback = Playback.objects.create(
        project=owner.project, room_session=session, url="https://media.example.com/a.mp4", state="playing"
    )
    response = api.post(f"/api/video/playbacks/{playback.id}/pause")
    assert response.status_code == 503 and error_codes(response) == ["media_unavailable"]
    assert Playback.objects.get(id=playback.id).state == Playback.State.PLAYING
    assert not RoomSessionEvent.objects.filter(name="playback.updated", room_session=session).exists()
    sent = async_to_sync(get_channel_layer().receive)(silent_worker)
    assert (sent["action"], sent["object_id"]) == ("playback.pause", str(playback.id))
    channel_layers.backends.clear()
