"""Recording and stream control over REST against a real embedded media worker: a synthetic member joins so the
session is placed, then the REST API starts, pauses, resumes and stops egress and the worker acknowledges."""

# The media worker fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage

from media import protocol
from media.tests.egress.conftest import ffmpeg, rtmp_server  # noqa: F401
from media.tests.egress.helpers import wait_until
from media.tests.worker.conftest import channel_layer, join, make_member, make_session, worker  # noqa: F401
from media.tests.worker.synthetic import SyntheticMember
from rooms.models import Recording, RoomSessionEvent, Stream
from rooms.tests.api.conftest import error_codes
from rooms.tests.factories import RoomFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


def post(client, path: str, body: dict | None = None):
    """The REST call on its own thread: the view blocks while the worker (this event loop) answers."""
    return sync_to_async(client.post, thread_sensitive=False)(path, body, format="json")


@contextlib.asynccontextmanager
async def placed_session(channel_layer, make_session, make_member, project, **fields):
    """A live session of ``project`` with one synthetic member joined (so a worker holds the session)."""
    room = await sync_to_async(RoomFactory)(project=project)
    session = await make_session(room=room, **fields)
    member = await make_member(session, name="presenter")
    client = SyntheticMember((200, 40, 40), 700.0)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        yield session
    finally:
        await client.close()


async def finished(recording_id) -> Recording | None:
    recording = await Recording.objects.aget(id=recording_id)
    return recording if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED) else None


async def test_a_recording_started_over_rest_pauses_resumes_stops_and_is_finalised(
    channel_layer, worker, make_session, make_member, owner, outsider
):
    async with placed_session(channel_layer, make_session, make_member, owner.project) as session:
        base = f"/api/video/room_sessions/{session.id}"
        response = await post(owner.client, f"{base}/recordings")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["status"] == "recording" and body["room_session_id"] == str(session.id)
        recording_id = body["id"]
        assert await RoomSessionEvent.objects.filter(name="recording.started", room_session_id=session.id).aexists()

        second = await post(owner.client, f"{base}/recordings")
        assert second.status_code == 409 and error_codes(second) == ["conflict"]
        assert await Recording.objects.filter(room_session_id=session.id).acount() == 1

        assert (await post(outsider.client, f"{base}/recordings")).status_code == 404
        outsider_pause = await post(outsider.client, f"/api/video/room_recordings/{recording_id}/pause")
        assert outsider_pause.status_code == 404

        working = Path(await wait_until(lambda: _working_path(recording_id), 5, "working file"))
        await wait_until(lambda: _grows(working), 5, "recorded bytes")

        paused = await post(owner.client, f"/api/video/room_recordings/{recording_id}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        resumed = await post(owner.client, f"/api/video/room_recordings/{recording_id}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "recording"
        stopped = await post(owner.client, f"/api/video/room_recordings/{recording_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] in ("processing", "completed")

        done = await wait_until(lambda: finished(recording_id), 30, "finalisation")
        again = await post(owner.client, f"/api/video/room_recordings/{recording_id}/stop")
        assert again.status_code == 409
    assert done.status == Recording.Status.COMPLETED, done.failure_reason
    assert Path(default_storage.path(done.storage_name)).stat().st_size == done.size_in_bytes > 0


async def _working_path(recording_id) -> str:
    return (await Recording.objects.aget(id=recording_id)).working_path


async def _grows(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def test_a_stream_started_over_rest_masks_its_key_is_started_once_accepted_and_stops(
    channel_layer, worker, make_session, make_member, owner, rtmp_server, settings
):
    settings.PARLEY_RTMP_MAX_FAILURES = 1000
    settings.PARLEY_RTMP_BACKOFF_BASE_SECONDS = 0.2
    settings.PARLEY_RTMP_BACKOFF_MAX_SECONDS = 0.5
    url, _unused, not_yet = rtmp_server()
    not_yet.kill()  # nothing listens on the port when the stream starts
    await sync_to_async(not_yet.wait)(10)
    async with placed_session(channel_layer, make_session, make_member, owner.project) as session:
        base = f"/api/video/room_sessions/{session.id}"
        bad = await post(owner.client, f"{base}/streams", {"url": "http://127.0.0.1/live/key"})
        assert bad.status_code == 422 and error_codes(bad) == ["invalid_parameter"]

        response = await post(owner.client, f"{base}/streams", {"url": url})
        assert response.status_code == 201, response.json()
        body = response.json()
        # Acknowledged by the worker, but no server has accepted it: not started.
        assert (
            "secret-key-123" not in body["url"]
            and body["state"] in ("pending", "retrying")
            and body["started_at"] is None
        )
        await wait_until(lambda: Stream.objects.filter(id=body["id"], state="retrying").aexists(), 30, "a retry")
        assert not await RoomSessionEvent.objects.filter(name="stream.started", room_session_id=session.id).aexists()

        _url, received, _process = rtmp_server(urlsplit(url).port)
        await wait_until(
            lambda: RoomSessionEvent.objects.filter(name="stream.started", room_session_id=session.id).aexists(),
            60,
            "stream.started",
        )
        listed = await sync_to_async(owner.client.get)(f"/api/video/streams/{body['id']}")
        assert listed.status_code == 200 and listed.json()["state"] == "streaming", listed.json()
        assert listed.json()["started_at"]
        await wait_until(lambda: _grows(Path(received)), 15, "FLV bytes at the RTMP server")

        stopped = await post(owner.client, f"/api/video/streams/{body['id']}/stop")
        assert stopped.status_code == 200 and stopped.json()["state"] == "completed"
    assert await Stream.objects.filter(id=body["id"], state="completed").aexists()
    assert await RoomSessionEvent.objects.filter(name="stream.ended", room_session_id=session.id).aexists()


def test_egress_control_without_a_placed_worker_is_503_and_writes_nothing(api, owner):
    room = RoomFactory(project=owner.project)
    from rooms.tests.factories import RoomSessionFactory

    session = RoomSessionFactory(room=room)
    base = f"/api/video/room_sessions/{session.id}"
    for path, body in ((f"{base}/recordings", None), (f"{base}/streams", {"url": "rtmp://127.0.0.1/live/k"})):
        response = api.post(path, body, format="json")
        assert response.status_code == 503, path
        assert error_codes(response) == ["media_unavailable"]
    assert not Recording.objects.filter(room_session=session).exists()
    assert not Stream.objects.filter(room_session=session).exists()
    recording = Recording.objects.create(project=owner.project, room_session=session)
    response = api.post(f"/api/video/room_recordings/{recording.id}/pause")
    assert response.status_code == 503 and error_codes(response) == ["media_unavailable"]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.RECORDING
