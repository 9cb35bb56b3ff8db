"""Stopping a recording whose media worker is gone: the stop ends it from what is on disk instead of leaving it
``processing``. The working file comes from a real recording process killed with SIGKILL."""

# The media worker fixture is imported by name (pytest finds it here); the test arguments reuse the name.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from media.tasks import recordings_recover_orphans
from media.tests.egress.helpers import decoded_video_frames, record_then_kill
from media.tests.worker.conftest import channel_layer  # noqa: F401
from rooms.models import Recording, RoomSessionEvent
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

# A channel no media worker reads: the worker that was placed there is gone.
GONE_WORKER = "media.gone-worker"


def killed_recording(project, *, media_worker: str, heartbeat_age_s: float) -> tuple[Recording, float]:
    """A live recording of a session placed on ``media_worker`` whose working file was written by a recording
    process killed after ≥ 2 s of video; its progress heartbeat is ``heartbeat_age_s`` old. Returns
    ``(recording, wall seconds the process ran)``."""
    session = RoomSessionFactory(room__project=project, quality="360p", fps=15, media_worker=media_worker)
    recording = Recording.objects.create(project=project, room_session=session)
    path = Path(settings.PARLEY_DATA_DIR) / "recordings" / f"{recording.id}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    wall_s = record_then_kill(path, min_frames=15 * 2)
    Recording.objects.filter(id=recording.id).update(
        working_path=str(path), updated_at=timezone.now() - timedelta(seconds=heartbeat_age_s)
    )
    recording.refresh_from_db()
    return recording, wall_s


def nothing_sent_to(layer, channel: str) -> bool:
    """True when no command waits on ``channel`` (the stop was not sent to a worker that is gone)."""

    async def probe() -> bool:
        try:
            await asyncio.wait_for(layer.receive(channel), 0.5)
        except TimeoutError:
            return True
        return False

    return asyncio.run(probe())


def assert_completed_from_disk(recording: Recording, wall_s: float) -> None:
    recording.refresh_from_db()
    assert recording.status == Recording.Status.COMPLETED, recording.failure_reason
    assert 1.9 <= recording.duration <= wall_s + 0.2
    ended = RoomSessionEvent.objects.get(name="recording.ended", recording_id=recording.id)
    uri = ended.payload["recording"]["uri"]
    assert uri and ended.payload["recording"]["state"] == "completed"
    parts = urlsplit(uri)
    download = APIClient().get(f"{parts.path}?{parts.query}")
    assert download.status_code == 200
    path = Path(settings.PARLEY_DATA_DIR) / "downloaded.mp4"
    path.write_bytes(b"".join(download.streaming_content))
    assert decoded_video_frames(path) >= 15 * 2
    with av.open(str(path)) as container:
        assert abs(container.duration / 1_000_000 - recording.duration) <= 0.1


def test_stopping_a_recording_whose_worker_died_finalises_what_is_on_disk(api, owner, channel_layer):
    stale_s = settings.PARLEY_RECORDING_ORPHAN_AFTER_SECONDS + 30
    recording, wall_s = killed_recording(owner.project, media_worker=GONE_WORKER, heartbeat_age_s=stale_s)

    response = api.post(f"/api/video/room_recordings/{recording.id}/stop")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] in ("processing", "completed")
    assert nothing_sent_to(channel_layer, GONE_WORKER)
    assert_completed_from_disk(recording, wall_s)
    assert not Path(recording.working_path).exists()


def test_stopping_a_recording_of_a_session_without_a_worker_fails_it_when_nothing_was_written(
    api, owner, channel_layer
):
    session = RoomSessionFactory(room__project=owner.project, media_worker="")
    recording = Recording.objects.create(project=owner.project, room_session=session)

    response = api.post(f"/api/video/room_recordings/{recording.id}/stop")

    assert response.status_code == 200, response.json()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED and recording.failure_reason.startswith("no_media")
    ended = RoomSessionEvent.objects.get(name="recording.ended", recording_id=recording.id)
    assert ended.payload["recording"]["state"] == "failed" and ended.payload["recording"]["uri"] is None
    assert api.post(f"/api/video/room_recordings/{recording.id}/stop").status_code == 409


def test_a_stop_the_worker_never_answers_stands_and_the_sweep_finalises_it(api, owner, channel_layer, settings):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 1.0
    recording, wall_s = killed_recording(owner.project, media_worker=GONE_WORKER, heartbeat_age_s=0)

    # The heartbeat is fresh: the stop goes to the placed worker, which never answers.
    response = api.post(f"/api/video/room_recordings/{recording.id}/stop")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "processing"
    assert not nothing_sent_to(channel_layer, GONE_WORKER)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.PROCESSING

    # The beat's sweep leaves a recently stopped recording to its worker …
    assert recordings_recover_orphans.delay().get() == []
    # … and finalises it once it has been left alone for the orphan window.
    Recording.objects.filter(id=recording.id).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PARLEY_RECORDING_ORPHAN_AFTER_SECONDS + 1)
    )
    assert recordings_recover_orphans.delay().get() == [str(recording.id)]
    assert_completed_from_disk(recording, wall_s)
