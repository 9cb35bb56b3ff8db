"""``layouts``, ``streams/{id}`` and ``api_keys``."""

from __future__ import annotations

import pytest

from rooms.models import ApiKey, Layout, Stream
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.factories import RoomFactory, RoomSessionFactory

PIP = {
    "name": "pip",
    "slots": [
        {"x": 0, "y": 0, "width": 360, "height": 360, "floor": True},
        {"x": 250, "y": 250, "width": 100, "height": 100, "z_index": 1, "reservation": "guest"},
    ],
}


def test_it_lists_builtin_and_own_layouts_but_not_others(api, outsider):
    outsider.client.post("/api/video/layouts", {**PIP, "name": "theirs"}, format="json")
    api.post("/api/video/layouts", PIP, format="json")
    names = [layout["name"] for layout in api.get("/api/video/layouts?page_size=1000").json()["data"]]
    assert {"grid-responsive", "2x2", "pip"} <= set(names) and "theirs" not in names
    grid = api.get("/api/video/layouts/grid-responsive").json()
    assert grid["builtin"] is True and grid["group"]


def test_it_creates_updates_and_deletes_a_project_layout(api, owner):
    response = api.post("/api/video/layouts", PIP, format="json")
    assert response.status_code == 201
    assert response.json()["slots"][1]["reservation"] == "guest"
    assert response.json()["slots"][0]["z_index"] == 0
    updated = api.put(
        "/api/video/layouts/pip", {"slots": [{"x": 0, "y": 0, "width": 180, "height": 180}]}, format="json"
    )
    assert updated.status_code == 200 and len(updated.json()["slots"]) == 1
    RoomFactory(project=owner.project, name="uses-pip", layout="pip")
    assert api.delete("/api/video/layouts/pip").status_code == 409
    api.patch("/api/video/rooms/uses-pip", {"layout": "2x2"}, format="json")
    assert api.delete("/api/video/layouts/pip").status_code == 204
    assert not Layout.objects.filter(project=owner.project, name="pip").exists()


def test_builtin_layouts_are_read_only(api):
    response = api.put("/api/video/layouts/2x2", {"description": "mine"}, format="json")
    assert response.status_code == 403
    assert error_codes(response) == ["layout_read_only"]
    assert api.delete("/api/video/layouts/2x2").status_code == 403
    taken = api.post("/api/video/layouts", {**PIP, "name": "2x2"}, format="json")
    assert taken.status_code == 409


@pytest.mark.parametrize(
    ("slots", "attribute"),
    [
        ([], "slots"),
        ([{"x": 0, "y": 0, "width": 10, "height": 10}] * 101, "slots"),
        ("grid", "slots"),
        ([{"x": 0, "y": 0, "width": 10}], "slots.0.height"),
        ([{"x": -1, "y": 0, "width": 10, "height": 10}], "slots.0.x"),
        ([{"x": 0, "y": 0, "width": 361, "height": 10}], "slots.0.width"),
        ([{"x": 300, "y": 0, "width": 100, "height": 10}], "slots.0.width"),
        ([{"x": 0, "y": 300, "width": 10, "height": 100}], "slots.0.height"),
        ([{"x": "0", "y": 0, "width": 10, "height": 10}], "slots.0.x"),
        ([{"x": 0, "y": 0, "width": 10, "height": 10, "z_index": 1.5}], "slots.0.z_index"),
        ([{"x": 0, "y": 0, "width": 10, "height": 10, "reservation": "Not A Slug!"}], "slots.0.reservation"),
    ],
)
def test_it_validates_layout_slots(api, slots, attribute):
    response = api.post("/api/video/layouts", {"name": "bad", "slots": slots}, format="json")
    assert response.status_code == 422
    assert error_attributes(response) == [attribute]


def test_it_gets_updates_and_deletes_a_standing_stream(api, owner):
    room = RoomFactory(project=owner.project)
    stream = Stream.objects.create(project=owner.project, room=room, url="rtmp://a/app/OLDKEY")
    assert api.get(f"/api/video/streams/{stream.id}").json()["url"] == "rtmp://a/app/****"
    assert api.put(f"/api/video/streams/{stream.id}", {"url": "https://a/b"}, format="json").status_code == 422
    response = api.put(f"/api/video/streams/{stream.id}", {"url": "rtmps://b/live/NEWKEY"}, format="json")
    assert response.status_code == 200 and "NEWKEY" not in response.content.decode()
    stream.refresh_from_db()
    assert stream.url == "rtmps://b/live/NEWKEY"
    assert api.delete(f"/api/video/streams/{stream.id}").status_code == 204
    assert not Stream.objects.filter(id=stream.id).exists()


def test_a_running_session_stream_cannot_be_changed_or_deleted(api, owner):
    session = RoomSessionFactory(room__project=owner.project)
    stream = Stream.objects.create(project=owner.project, room_session=session, url="rtmp://a/app/k", state="streaming")
    assert api.put(f"/api/video/streams/{stream.id}", {"url": "rtmp://a/app/j"}, format="json").status_code == 409
    assert api.delete(f"/api/video/streams/{stream.id}").status_code == 409


def test_it_lists_keys_without_secrets_and_revokes_one(api, owner):
    from rooms.tests.factories import api_key_create

    other, raw = api_key_create(owner.project, name="ci")
    response = api.get("/api/video/api_keys")
    text = response.content.decode()
    assert {k["prefix"] for k in response.json()["data"]} == {owner.key.prefix, other.prefix}
    assert raw not in text and other.key_hash not in text and "key_hash" not in text
    assert api.delete(f"/api/video/api_keys/{other.id}").status_code == 204
    assert ApiKey.objects.get(id=other.id).revoked_at is not None
