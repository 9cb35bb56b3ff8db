"""Deleting recordings: the working file a failed recording leaves is removed with it; a storage that refuses or
cannot be reached (local disk, S3 on moto's server) answers 503 ``storage_unavailable`` and keeps the recording
and its files, a retry then finishes; the retention sweep logs such a recording and moves on to the next."""

from __future__ import annotations

import logging
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import requests
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from media.tasks import recordings_apply_retention
from media.tests.egress.conftest import free_port
from rooms.models import AuditEntry, Recording
from rooms.tests.api import test_recording_storage_s3 as s3_case
from rooms.tests.factories import RoomSessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "parley-test-secret"
PREFIX = s3_case.PREFIX
object_keys = s3_case.object_keys
s3_endpoint = s3_case.s3_endpoint  # moto's S3 server (fixture)
s3_storage = s3_case.s3_storage  # default_storage on it (fixture)


def write_mp4(path: Path, *, frames: int = 15, fragmented: bool = False) -> Path:
    """A real H.264 MP4 of ``frames`` frames (320×240, 15 fps); ``fragmented`` as the recorder writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fragmented else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            image = np.full((240, 320, 3), (i * 16) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 15)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def decodable_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def failed_recording(project) -> Recording:
    """A recording that failed while writing: no stored file, its fragmented MP4 left under PARLEY_DATA_DIR."""
    session = RoomSessionFactory(room__project=project)
    recording = Recording.objects.create(project=project, room_session=session)
    working = write_mp4(Path(settings.PARLEY_DATA_DIR) / "recordings" / f"{recording.id}.mp4", fragmented=True)
    Recording.objects.filter(id=recording.id).update(
        status=Recording.Status.FAILED, failure_reason="disk_full", working_path=str(working)
    )
    recording.refresh_from_db()
    return recording


def completed_recording(project, tmp_path: Path, *, started_at=None) -> Recording:
    """A completed recording with its MP4 and poster in ``default_storage`` (whatever backend is configured)."""
    session = RoomSessionFactory(room__project=project)
    recording = Recording.objects.create(project=project, room_session=session)
    source = write_mp4(tmp_path / f"{recording.id}.mp4")
    with open(source, "rb") as fh:
        storage_name = default_storage.save(f"recordings/{recording.id}.mp4", File(fh))
    poster_name = default_storage.save(f"recordings/{recording.id}.jpg", ContentFile(b"\xff\xd8poster\xff\xd9"))
    Recording.objects.filter(id=recording.id).update(
        status=Recording.Status.COMPLETED,
        storage_name=storage_name,
        poster_name=poster_name,
        size_in_bytes=source.stat().st_size,
        started_at=started_at or timezone.now(),
        finished_at=timezone.now(),
    )
    recording.refresh_from_db()
    return recording


def delete_failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("recording file delete failed")]


def test_deleting_a_failed_recording_removes_its_working_file(owner):
    recording = failed_recording(owner.project)
    working = Path(recording.working_path)
    assert decodable_frames(working) == 15

    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert not working.exists()
    assert not Recording.objects.filter(id=recording.id).exists()
    assert AuditEntry.objects.filter(action="recording.delete", target_id=str(recording.id)).count() == 1


def test_a_working_path_outside_the_data_directory_is_left_alone(owner, tmp_path):
    recording = failed_recording(owner.project)
    elsewhere = write_mp4(tmp_path / "elsewhere" / "other.mp4", fragmented=True)
    Recording.objects.filter(id=recording.id).update(working_path=str(elsewhere))

    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert not Recording.objects.filter(id=recording.id).exists()
    assert decodable_frames(elsewhere) == 15


def test_a_local_storage_failure_answers_503_and_a_retry_finishes(owner, tmp_path, caplog):
    recording = completed_recording(owner.project, tmp_path)
    stored = Path(default_storage.path(recording.storage_name))
    poster = Path(default_storage.path(recording.poster_name))
    # The poster's name is taken by a directory that cannot be removed (not empty): the disk refuses.
    poster.unlink()
    poster.mkdir()
    (poster / "pinned").write_bytes(b"x")

    response = owner.client.delete(f"/api/video/room_recordings/{recording.id}")
    assert response.status_code == 503
    assert [e["code"] for e in response.json()["errors"]] == ["storage_unavailable"]
    assert Recording.objects.filter(id=recording.id, status=Recording.Status.COMPLETED).exists()
    assert decodable_frames(stored) == 15  # nothing removed: the first removal failed
    assert not AuditEntry.objects.filter(action="recording.delete").exists()
    [failure] = delete_failures(caplog)
    assert "errno=" in failure.getMessage() and str(recording.id) in failure.getMessage()

    (poster / "pinned").unlink()
    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert not stored.exists() and not poster.exists()
    assert not Recording.objects.filter(id=recording.id).exists()


def point_storage_at(settings, endpoint: str) -> None:
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": endpoint}},
    }


def test_an_unreachable_s3_answers_503_keeps_everything_and_logs_no_secret(
    owner, s3_storage, settings, tmp_path, caplog
):
    client = s3_storage
    recording = completed_recording(owner.project, tmp_path)
    keys = {f"{PREFIX}/recordings/{recording.id}.mp4", f"{PREFIX}/recordings/{recording.id}.jpg"}
    assert object_keys(client) == keys
    endpoint = settings.STORAGES["default"]["OPTIONS"]["endpoint_url"]
    point_storage_at(settings, f"http://127.0.0.1:{free_port()}")  # nothing listens there

    response = owner.client.delete(f"/api/video/room_recordings/{recording.id}")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "storage_unavailable"
    assert Recording.objects.filter(id=recording.id).exists()
    assert object_keys(client) == keys
    [failure] = delete_failures(caplog)
    assert "EndpointConnectionError" in failure.getMessage()
    assert SECRET not in caplog.text and "parley-test" not in failure.getMessage()

    point_storage_at(settings, endpoint)
    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert object_keys(client) == set()
    assert not Recording.objects.filter(id=recording.id).exists()


@pytest.fixture
def s3_refusing(s3_storage, settings):
    """Turns on moto's authentication (its ``/moto-api/reset-auth``): the test key is unknown to it, so every
    request is refused (403 ``InvalidAccessKeyId``). Call the returned function to turn it off again."""
    endpoint = settings.STORAGES["default"]["OPTIONS"]["endpoint_url"]

    def set_auth(initial_no_auth_actions: str) -> None:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=initial_no_auth_actions, timeout=30).raise_for_status()

    set_auth("0")
    try:
        yield lambda: set_auth("inf")
    finally:
        set_auth("inf")


def test_an_s3_refusal_answers_503_and_keeps_the_recording(owner, s3_storage, tmp_path, caplog, request):
    client = s3_storage
    recording = completed_recording(owner.project, tmp_path)
    keys = object_keys(client)
    assert len(keys) == 2
    allow = request.getfixturevalue("s3_refusing")

    response = owner.client.delete(f"/api/video/room_recordings/{recording.id}")
    assert response.status_code == 503
    assert response.json() == {
        "errors": [
            {
                "code": "storage_unavailable",
                "message": "The recording storage is unavailable; try again later.",
                "attribute": None,
            }
        ]
    }
    [failure] = delete_failures(caplog)
    assert "ClientError InvalidAccessKeyId HTTP 403" in failure.getMessage()
    assert SECRET not in caplog.text

    allow()
    assert object_keys(client) == keys
    assert Recording.objects.filter(id=recording.id).exists()
    assert owner.client.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert object_keys(client) == set()


def test_the_retention_sweep_moves_on_past_a_recording_the_storage_refuses(owner, settings, tmp_path, caplog):
    settings.PARLEY_RECORDING_RETENTION_DAYS = 7
    long_ago = timezone.now() - timedelta(days=30)
    stuck = completed_recording(owner.project, tmp_path, started_at=long_ago - timedelta(days=1))
    expired = completed_recording(owner.project, tmp_path, started_at=long_ago)
    failed = failed_recording(owner.project)
    Recording.objects.filter(id=failed.id).update(started_at=long_ago + timedelta(hours=1))
    recent = completed_recording(owner.project, tmp_path)
    stuck_poster = Path(default_storage.path(stuck.poster_name))
    stuck_poster.unlink()
    stuck_poster.mkdir()
    (stuck_poster / "pinned").write_bytes(b"x")

    assert recordings_apply_retention.delay().get() == 2
    assert set(Recording.objects.values_list("id", flat=True)) == {stuck.id, recent.id}
    assert not default_storage.exists(expired.storage_name) and not default_storage.exists(expired.poster_name)
    assert not Path(failed.working_path).exists()
    assert decodable_frames(Path(default_storage.path(stuck.storage_name))) == 15
    assert decodable_frames(Path(default_storage.path(recent.storage_name))) == 15
    [failure] = delete_failures(caplog)
    assert str(stuck.id) in failure.getMessage()

    (stuck_poster / "pinned").unlink()  # the next sweep finishes it
    assert recordings_apply_retention.delay().get() == 1
    assert set(Recording.objects.values_list("id", flat=True)) == {recent.id}
