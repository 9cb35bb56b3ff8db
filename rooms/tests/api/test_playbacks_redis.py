"""Playbacks over REST through the real Redis channel layer on PostgreSQL, with the media worker in this process on
the same layer (the embedded default under Daphne). A synthetic member joins through Redis so the session is
placed; the REST view runs on a thread of its own (as Daphne runs it) and waits for the worker's answer on a Redis
reply channel. A start of a URL that never answers does not hold up a pause of another playback of the room.

Skipped, with the reason printed, unless ``DATABASE_URL`` is PostgreSQL and ``REDIS_URL`` is set.
"""

# The fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from media import protocol
from media.tests.egress.helpers import wait_until
from media.tests.worker.conftest import join
from media.tests.worker.playback_media import http_media, make_mp4, private_playback_urls, silent_url  # noqa: F401
from media.tests.worker.synthetic import SyntheticMember
from rooms.models import Playback
from rooms.tests.api.test_egress_redis import media_worker_in_process, redis_layer  # noqa: F401
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def post(client, path: str, body: dict | None = None):
    return sync_to_async(client.post, thread_sensitive=False)(path, body, format="json")


async def test_playbacks_over_rest_through_redis_and_a_dead_url_does_not_hold_up_the_room(
    owner, media_worker_in_process, http_media, silent_url, settings
):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 9  # the worker's open gives up after 6 s
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 20.0)
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    room = await sync_to_async(RoomFactory)(project=owner.project)
    session = await sync_to_async(RoomSessionFactory)(room=room, quality="360p", fps=15)
    member = await sync_to_async(MemberFactory)(room_session=session, name="viewer")
    client = SyntheticMember((40, 60, 230), None)
    try:
        reply, _ = await join(layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        base = f"/api/video/room_sessions/{session.id}/playbacks"

        started = await post(owner.client, base, {"url": base_url + "clip.mp4"})
        assert started.status_code == 201, started.json()
        playback_id = started.json()["id"]
        source = media_worker_in_process.playbacks[str(session.id)][playback_id]
        await client.wait_for(lambda: source.video_frames > 0, timeout_s=15, what="the clip's frames")

        dead = asyncio.ensure_future(post(owner.client, base, {"url": silent_url}))
        await wait_until(lambda: Playback.objects.filter(url=silent_url).aexists(), 15, "the dead URL's row")
        paused = await post(owner.client, f"/api/video/playbacks/{playback_id}/pause")
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert source.state == "paused"
        assert not dead.done()  # the pause was answered while the dead URL was still opening

        refused = await asyncio.wait_for(dead, 30)
        assert refused.status_code == 422, refused.json()
        assert refused.json()["errors"][0]["attribute"] == "url"
        row = await Playback.objects.aget(url=silent_url)
        assert (row.state, row.failure_reason) == ("failed", "timeout")

        stopped = await post(owner.client, f"/api/video/playbacks/{playback_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["state"] == "completed"
    finally:
        await client.close()
