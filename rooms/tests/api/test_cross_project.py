"""An outsider project's key never reaches another project's objects: every endpoint answers 404."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from rooms.models import Layout, Playback, Recording, Stream
from rooms.tests.api.conftest import error_codes
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory, api_key_create

ENDPOINTS = [
    ("get", "/api/video/rooms/{room.id}", None),
    ("get", "/api/video/rooms/{room.name}", None),
    ("put", "/api/video/rooms/{room.id}", {"locked": True}),
    ("patch", "/api/video/rooms/{room.name}", {"locked": True}),
    ("delete", "/api/video/rooms/{room.id}", None),
    ("get", "/api/video/rooms/{room.id}/streams", None),
    ("post", "/api/video/rooms/{room.id}/streams", {"url": "rtmp://h/app/k"}),
    ("get", "/api/video/streams/{stream.id}", None),
    ("put", "/api/video/streams/{stream.id}", {"url": "rtmp://h/app/k"}),
    ("delete", "/api/video/streams/{stream.id}", None),
    ("post", "/api/video/streams/{live_stream.id}/stop", None),
    ("get", "/api/video/room_sessions/{session.id}", None),
    ("get", "/api/video/room_sessions/{session.id}/members", None),
    ("get", "/api/video/room_sessions/{session.id}/events", None),
    ("get", "/api/video/room_sessions/{session.id}/recordings", None),
    ("post", "/api/video/room_sessions/{session.id}/recordings", None),
    ("get", "/api/video/room_sessions/{session.id}/streams", None),
    ("post", "/api/video/room_sessions/{session.id}/streams", {"url": "rtmp://h/app/k"}),
    ("post", "/api/video/room_sessions/{session.id}/playbacks", {"url": "https://h/a.mp4"}),
    ("post", "/api/video/room_sessions/{session.id}/layout", {"name": "2x2"}),
    ("post", "/api/video/room_sessions/{session.id}/end", None),
    ("post", "/api/video/room_sessions/{session.id}/members/{member.id}/audio_mute", None),
    ("post", "/api/video/room_sessions/{session.id}/members/{member.id}/remove", None),
    ("get", "/api/video/room_recordings/{recording.id}", None),
    ("delete", "/api/video/room_recordings/{recording.id}", None),
    ("get", "/api/video/room_recordings/{recording.id}/events", None),
    ("post", "/api/video/room_recordings/{live_recording.id}/stop", None),
    ("post", "/api/video/playbacks/{playback.id}/stop", None),
    ("get", "/api/video/layouts/{layout.name}", None),
    ("put", "/api/video/layouts/{layout.name}", {"description": "x"}),
    ("delete", "/api/video/layouts/{layout.name}", None),
    ("delete", "/api/video/api_keys/{key.id}", None),
]


@pytest.fixture
def owned(owner):
    room = RoomFactory(project=owner.project, name="private-room")
    session = RoomSessionFactory(room=room)
    name = default_storage.save("r.mp4", ContentFile(b"x"))
    return {
        "room": room,
        "session": session,
        "member": MemberFactory(room_session=session),
        "stream": Stream.objects.create(project=owner.project, room=room, url="rtmp://h/app/k"),
        "live_stream": Stream.objects.create(
            project=owner.project, room_session=session, url="rtmp://h/a/k", state="streaming"
        ),
        "recording": Recording.objects.create(
            project=owner.project, room_session=session, status="completed", storage_name=name
        ),
        "live_recording": Recording.objects.create(project=owner.project, room_session=session),
        "playback": Playback.objects.create(project=owner.project, room_session=session, url="https://h/a.mp4"),
        "layout": Layout.objects.create(
            project=owner.project, name="private-layout", slots=[{"x": 0, "y": 0, "width": 360, "height": 360}]
        ),
        "key": api_key_create(owner.project, name="second")[0],
    }


@pytest.mark.parametrize(("method", "template", "body"), ENDPOINTS, ids=[f"{m} {t}" for m, t, _ in ENDPOINTS])
def test_an_outsider_gets_404_for_another_projects_objects(outsider, owner, owned, method, template, body):
    url = template.format(**owned)
    response = getattr(outsider.client, method)(url, body, format="json")
    assert response.status_code == 404, (url, response.content)
    assert error_codes(response) == ["not_found"]
    # The owner reaches the same object (so the 404 is about scope, not a broken route).
    if method == "get":
        assert getattr(owner.client, method)(url).status_code == 200


def test_an_outsider_lists_see_nothing_of_the_owner(outsider, owned):
    for path in ("rooms", "room_sessions", "room_recordings", "api_keys"):
        data = outsider.client.get(f"/api/video/{path}").json()["data"]
        ids = {item["id"] for item in data}
        assert not ids & {str(o.id) for o in owned.values()}, path
    filtered = outsider.client.get(f"/api/video/room_sessions?room_id={owned['room'].id}").json()["data"]
    assert filtered == []
