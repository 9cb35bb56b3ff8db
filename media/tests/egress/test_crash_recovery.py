"""A recording process SIGKILLed mid-recording: the fragments on disk decode, and the orphan sweep finalises the
recording with the partial duration."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from media.egress.services import recordings_recover_orphans
from media.tests.egress.helpers import decoded_video_frames, ffprobe, record_then_kill
from rooms.models import Recording
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db]


def test_a_killed_recording_keeps_its_fragments_and_the_sweep_completes_it():
    session = RoomSessionFactory(quality="360p", fps=15)
    recording = Recording.objects.create(project_id=session.project_id, room_session=session)
    path = Path(settings.PARLEY_DATA_DIR) / "recordings" / f"{recording.id}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    Recording.objects.filter(id=recording.id).update(working_path=str(path))

    wall_s = record_then_kill(path, min_frames=15 * 3)

    # The fragment-complete part of the file decodes as it is: at least the three seconds seen before the kill.
    assert decoded_video_frames(path) >= 15 * 3

    # A live heartbeat (a fresh updated_at) is not an orphan.
    assert recordings_recover_orphans(stale_after_seconds=60) == []
    assert recordings_recover_orphans(stale_after_seconds=0) == [str(recording.id)]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.COMPLETED, recording.failure_reason
    assert 2.9 <= recording.duration <= wall_s + 0.2
    probe = ffprobe(default_storage.path(recording.storage_name))
    assert {s["codec_name"] for s in probe["streams"]} == {"h264", "aac"}
    assert abs(float(probe["format"]["duration"]) - recording.duration) <= 0.1


def test_a_killed_recording_with_nothing_decodable_fails_with_a_reason(tmp_path):
    session = RoomSessionFactory()
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x1cftypisom" + b"\x00" * 100)
    recording = Recording.objects.create(project_id=session.project_id, room_session=session, working_path=str(path))
    assert recordings_recover_orphans(stale_after_seconds=0) == [str(recording.id)]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.FAILED
    assert recording.failure_reason.startswith("no_media")
