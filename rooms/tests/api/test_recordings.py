"""``room_recordings``: list, detail with signed uri, download, delete, events."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from rooms.models import Recording
from rooms.tests.factories import RoomSessionFactory


def _completed(project, content: bytes = b"\x00\x00\x00\x18ftypmp42fake-mp4") -> Recording:
    session = RoomSessionFactory(room__project=project)
    name = default_storage.save("recordings/test.mp4", ContentFile(content))
    return Recording.objects.create(
        project=project,
        room_session=session,
        status="completed",
        storage_name=name,
        size_in_bytes=len(content),
        duration=1.5,
    )


def test_uri_is_null_until_completed(api, owner):
    session = RoomSessionFactory(room__project=owner.project)
    recording = Recording.objects.create(project=owner.project, room_session=session)
    body = api.get(f"/api/video/room_recordings/{recording.id}").json()
    assert body["status"] == "recording" and body["uri"] is None and body["format"] == "video/mp4"


def test_the_signed_uri_downloads_the_file_without_a_key(api, owner):
    recording = _completed(owner.project, b"MP4DATA")
    uri = api.get(f"/api/video/room_recordings/{recording.id}?media_ttl=60").json()["uri"]
    parts = urlsplit(uri)
    expires = int(parse_qs(parts.query)["expires"][0])
    import time

    assert 55 <= expires - time.time() <= 65
    response = APIClient().get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"MP4DATA"
    assert response["Content-Type"] == "video/mp4"


def test_a_tampered_or_expired_download_link_is_403(api, owner):
    recording = _completed(owner.project)
    uri = api.get(f"/api/video/room_recordings/{recording.id}").json()["uri"]
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    client = APIClient()
    later = int(query["expires"][0]) + 1000
    assert client.get(parts.path, {"expires": later, "signature": query["signature"][0]}).status_code == 403
    assert client.get(parts.path, {"expires": query["expires"][0], "signature": "x"}).status_code == 403
    assert client.get(parts.path, {"expires": query["expires"][0], "signature": "é"}).status_code == 403
    assert client.get(parts.path, {"expires": "²", "signature": query["signature"][0]}).status_code == 403
    from rooms.api.downloads import _signature

    past = 1_000_000
    response = client.get(parts.path, {"expires": past, "signature": _signature(recording.id, past)})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "invalid_signature"


def test_media_ttl_is_bounded(api, owner):
    recording = _completed(owner.project)
    assert api.get(f"/api/video/room_recordings/{recording.id}?media_ttl=0").status_code == 422
    assert api.get(f"/api/video/room_recordings/{recording.id}?media_ttl=604801").status_code == 422


def test_it_lists_recordings_with_filters(api, owner):
    done = _completed(owner.project)
    other = Recording.objects.create(
        project=owner.project,
        room_session=RoomSessionFactory(room__project=owner.project),
        status="failed",
        failure_reason="encoder died",
    )
    ids = lambda q: [r["id"] for r in api.get(f"/api/video/room_recordings?{q}").json()["data"]]  # noqa: E731
    assert set(ids("")) == {str(done.id), str(other.id)}
    assert ids("status=failed") == [str(other.id)]
    assert ids(f"room_session_id={done.room_session_id}") == [str(done.id)]
    failed = api.get(f"/api/video/room_recordings/{other.id}").json()
    assert failed["failure_reason"] == "encoder died"
    session_list = api.get(f"/api/video/room_sessions/{done.room_session_id}/recordings").json()["data"]
    assert [r["id"] for r in session_list] == [str(done.id)] and session_list[0]["uri"]


def test_it_deletes_a_recording_and_its_file(api, owner, django_capture_on_commit_callbacks):
    recording = _completed(owner.project)
    assert default_storage.exists(recording.storage_name)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/video/room_recordings/{recording.id}").status_code == 204
    assert not Recording.objects.filter(id=recording.id).exists()
    assert not default_storage.exists(recording.storage_name)


def test_it_refuses_to_delete_a_recording_in_progress(api, owner):
    recording = Recording.objects.create(
        project=owner.project, room_session=RoomSessionFactory(room__project=owner.project)
    )
    assert api.delete(f"/api/video/room_recordings/{recording.id}").status_code == 409


def test_it_lists_a_recordings_events(api, owner):
    from rooms.events import event_emit

    recording = _completed(owner.project)
    event_emit(
        "recording.ended",
        project_id=owner.project.id,
        room_session_id=recording.room_session_id,
        recording_id=recording.id,
        params={"recording": {"id": str(recording.id)}},
    )
    events = api.get(f"/api/video/room_recordings/{recording.id}/events").json()["data"]
    assert [e["name"] for e in events] == ["recording.ended"]
    assert events[0]["room_recording_id"] == str(recording.id)
