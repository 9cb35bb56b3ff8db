"""``/api/video/rooms`` and ``/rooms/{id}/streams``."""

from __future__ import annotations

import pytest

from rooms.models import Room, RoomSession, Stream
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory


def test_it_creates_a_room_with_signalwire_defaults(api, owner):
    response = api.post("/api/video/rooms", {"name": "standup"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "standup"
    assert body["display_name"] == "standup"
    assert (body["max_members"], body["quality"], body["fps"], body["layout"]) == (20, "720p", 20, "grid-responsive")
    assert body["record_on_start"] is False and body["meta"] == {}
    assert Room.objects.get(id=body["id"]).project == owner.project


def test_it_creates_a_room_with_every_field(api):
    payload = {
        "name": "all-hands_2",
        "display_name": "All hands",
        "description": "Monthly",
        "max_members": 300,
        "quality": "1080p",
        "fps": 30,
        "layout": "2x2",
        "record_on_start": True,
        "enable_room_previews": True,
        "locked": True,
        "prioritize_handraise": True,
        "join_from": "2030-01-01",
        "join_until": "2030-01-02T10:00:00+02:00",
        "remove_at": "2030-01-02T12:00:00Z",
        "remove_after_seconds_elapsed": 3600,
        "audio_only": True,
        "stage_only": True,
        "sync_audio_video": True,
        "meta": {"team": "core"},
    }
    response = api.post("/api/video/rooms", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    for key in ("max_members", "quality", "fps", "layout", "locked", "audio_only", "stage_only", "meta"):
        assert body[key] == payload[key]
    assert body["join_from"] == "2030-01-01T00:00:00Z"
    assert body["join_until"] == "2030-01-02T08:00:00Z"


@pytest.mark.parametrize(
    ("payload", "attribute"),
    [
        ({"name": "has space"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({}, "name"),
        ({"name": "a", "max_members": 0}, "max_members"),
        ({"name": "a", "max_members": 301}, "max_members"),
        ({"name": "a", "quality": "4k"}, "quality"),
        ({"name": "a", "fps": 25}, "fps"),
        ({"name": "a", "layout": "no-such-layout"}, "layout"),
        ({"name": "a", "join_from": "yesterday"}, "join_from"),
        ({"name": "a", "join_from": "2030-01-02T00:00:00Z", "join_until": "2030-01-01T00:00:00Z"}, "join_until"),
        ({"name": "a", "remove_after_seconds_elapsed": 0}, "remove_after_seconds_elapsed"),
        ({"name": "a", "remove_after_seconds_elapsed": 200001}, "remove_after_seconds_elapsed"),
        ({"name": "a", "meta": [1]}, "meta"),
        ({"name": "a", "meta": {"k": "v" * 2000}}, "meta"),
        ({"name": "a", "display_name": "d" * 201}, "display_name"),
        ({"name": "a", "description": "d" * 3001}, "description"),
        ({"name": "a", "locked": "maybe"}, "locked"),
    ],
)
def test_it_rejects_invalid_room_fields_with_422_naming_the_attribute(api, payload, attribute):
    response = api.post("/api/video/rooms", payload, format="json")
    assert response.status_code == 422
    assert attribute in error_attributes(response)


def test_it_refuses_a_duplicate_name_in_the_same_project_but_not_in_another(api, outsider):
    assert api.post("/api/video/rooms", {"name": "dup"}, format="json").status_code == 201
    again = api.post("/api/video/rooms", {"name": "dup"}, format="json")
    assert again.status_code == 409
    assert error_codes(again) == ["conflict"]
    assert outsider.client.post("/api/video/rooms", {"name": "dup"}, format="json").status_code == 201


def test_it_gets_a_room_by_id_and_by_name(api, owner):
    room = RoomFactory(project=owner.project, name="by-name")
    assert api.get(f"/api/video/rooms/{room.id}").json()["id"] == str(room.id)
    assert api.get("/api/video/rooms/by-name").json()["id"] == str(room.id)
    response = api.get("/api/video/rooms/missing")
    assert response.status_code == 404
    assert error_codes(response) == ["not_found"]


def test_it_updates_with_put_and_patch_keeping_other_fields(api, owner):
    room = RoomFactory(project=owner.project, name="upd", max_members=10)
    response = api.put("/api/video/rooms/upd", {"quality": "1080p", "locked": True}, format="json")
    assert response.status_code == 200
    assert response.json()["quality"] == "1080p" and response.json()["max_members"] == 10
    response = api.patch(f"/api/video/rooms/{room.id}", {"fps": 15, "meta": {"a": 1}}, format="json")
    assert response.status_code == 200
    room.refresh_from_db()
    assert (room.fps, room.meta, room.locked, room.quality) == (15, {"a": 1}, True, "1080p")
    assert api.patch("/api/video/rooms/upd", {"max_members": 0}, format="json").status_code == 422


def test_it_deletes_a_room_but_not_while_a_session_is_live(api, owner):
    room = RoomFactory(project=owner.project, name="gone")
    session = RoomSessionFactory(room=room)
    response = api.delete("/api/video/rooms/gone")
    assert response.status_code == 409
    session.status = RoomSession.Status.COMPLETED
    session.save()
    assert api.delete("/api/video/rooms/gone").status_code == 204
    assert not Room.objects.filter(id=room.id).exists()
    session.refresh_from_db()
    assert session.room_id is None


def test_it_lists_rooms_paginated_with_opaque_page_tokens(api, owner):
    for i in range(5):
        RoomFactory(project=owner.project, name=f"p{i}")
    first = api.get("/api/video/rooms?page_size=2").json()
    assert len(first["data"]) == 2
    assert first["links"]["prev"] is None and first["links"]["next"]
    second = api.get(first["links"]["next"]).json()
    third = api.get(second["links"]["next"]).json()
    names = [r["name"] for page in (first, second, third) for r in page["data"]]
    assert sorted(names) == [f"p{i}" for i in range(5)]
    assert third["links"]["next"] is None
    assert api.get(second["links"]["prev"]).json()["data"] == first["data"]
    assert api.get("/api/video/rooms?page_token=forged").status_code == 422
    assert api.get("/api/video/rooms?page_size=1001").status_code == 422


def test_it_filters_rooms_by_name_and_join_window(api, owner):
    RoomFactory(project=owner.project, name="early", join_from="2030-01-01T00:00Z", join_until="2030-01-01T01:00Z")
    RoomFactory(project=owner.project, name="late", join_from="2030-06-01T00:00Z", join_until="2030-06-01T01:00Z")
    names = lambda q: [r["name"] for r in api.get(f"/api/video/rooms?{q}").json()["data"]]  # noqa: E731
    assert names("name=late") == ["late"]
    assert names("starts_after=2030-03-01T00:00:00Z") == ["late"]
    assert names("ends_before=2030-03-01T00:00:00Z") == ["early"]
    response = api.get("/api/video/rooms?starts_after=not-a-date")
    assert response.status_code == 422 and error_attributes(response) == ["starts_after"]


def test_it_includes_the_active_session_only_when_asked(api, owner):
    room = RoomFactory(project=owner.project, name="live")
    session = RoomSessionFactory(room=room)
    MemberFactory(room_session=session)
    plain = api.get("/api/video/rooms/live").json()
    assert "active_session" not in plain
    body = api.get("/api/video/rooms/live?include_active_session=true").json()
    assert body["active_session"]["id"] == str(session.id)
    assert body["active_session"]["member_count"] == 1
    listed = api.get("/api/video/rooms?include_active_session=true").json()["data"]
    assert listed[0]["active_session"]["id"] == str(session.id)


def test_it_manages_room_streams_with_masked_urls(api, owner):
    RoomFactory(project=owner.project, name="tv")
    response = api.post("/api/video/rooms/tv/streams", {"url": "rtmp://live.example.com/app/SECRETKEY"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert "SECRETKEY" not in str(body)
    assert body["url"] == "rtmp://live.example.com/app/****"
    assert Stream.objects.get(id=body["id"]).room_session_id is None
    listed = api.get("/api/video/rooms/tv/streams").json()["data"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert "SECRETKEY" not in str(listed)


@pytest.mark.parametrize("url", ["http://example.com/live", "ftp://h/x", "rtmp:///nohost", "not a url", ""])
def test_it_rejects_non_rtmp_stream_urls_with_422(api, owner, url):
    RoomFactory(project=owner.project, name="tv")
    response = api.post("/api/video/rooms/tv/streams", {"url": url}, format="json")
    assert response.status_code == 422
    assert error_attributes(response) == ["url"]
