"""``room_sessions`` reads and server-side control of a live session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from rooms.events import event_emit
from rooms.models import Member, Recording, RoomSession, Stream
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory


@pytest.fixture
def live(owner):
    room = RoomFactory(project=owner.project, name="daily")
    return RoomSessionFactory(room=room)


def test_it_lists_sessions_with_filters(api, owner, live):
    old_room = RoomFactory(project=owner.project, name="weekly-sync")
    old = RoomSessionFactory(
        room=old_room,
        status=RoomSession.Status.COMPLETED,
        start_time=timezone.now() - timedelta(days=2),
        end_time=timezone.now() - timedelta(days=2, hours=-1),
    )
    ids = lambda q: [s["id"] for s in api.get(f"/api/video/room_sessions?{q}").json()["data"]]  # noqa: E731
    assert ids("") == [str(live.id), str(old.id)]
    assert ids("status=completed") == [str(old.id)]
    assert ids(f"room_id={live.room_id}") == [str(live.id)]
    assert ids("room_name=daily") == [str(live.id)]
    assert ids("room_name_matches=SYNC") == [str(old.id)]
    assert ids(f"starts_after={(timezone.now() - timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ}") == [str(live.id)]
    assert ids(f"ends_before={timezone.now():%Y-%m-%dT%H:%M:%SZ}") == [str(old.id)]
    for bad in ("status=over", "room_id=123", "starts_after=x"):
        response = api.get(f"/api/video/room_sessions?{bad}")
        assert response.status_code == 422 and error_attributes(response) == [bad.split("=")[0]]


def test_it_shows_a_session_its_members_events_and_streams(api, owner, live):
    member = MemberFactory(room_session=live, name="Ada", hand_raised=True, position="reserved-1")
    event_emit(
        "room.started",
        project_id=owner.project.id,
        room_id=live.room_id,
        room_session_id=live.id,
        params={"room_session": {"id": str(live.id)}},
    )
    Stream.objects.create(project=owner.project, room_session=live, url="rtmps://h/app/KEY", state="streaming")
    body = api.get(f"/api/video/room_sessions/{live.id}").json()
    assert body["status"] == "in-progress" and body["room_id"] == str(live.room_id) and body["duration"] >= 0
    members = api.get(f"/api/video/room_sessions/{live.id}/members").json()["data"]
    assert members[0]["id"] == str(member.id)
    expected = {
        "id",
        "room_session_id",
        "name",
        "type",
        "join_as",
        "join_time",
        "leave_time",
        "duration",
        "audio_muted",
        "video_muted",
        "deaf",
        "hand_raised",
        "talking",
        "position",
        "meta",
        "stats",
    }
    assert expected <= set(members[0])
    assert members[0]["hand_raised"] is True and members[0]["position"] == "reserved-1"
    events = api.get(f"/api/video/room_sessions/{live.id}/events").json()["data"]
    assert [e["name"] for e in events] == ["room.started"]
    streams = api.get(f"/api/video/room_sessions/{live.id}/streams").json()["data"]
    assert streams[0]["url"] == "rtmps://h/app/****"
    assert api.get("/api/video/room_sessions/not-a-uuid").status_code == 404


def test_it_mutes_a_member_through_the_member_service(api, live):
    member = MemberFactory(room_session=live)
    response = api.post(f"/api/video/room_sessions/{live.id}/members/{member.id}/audio_mute")
    assert response.status_code == 200, response.json()
    assert response.json()["audio_muted"] is True
    member.refresh_from_db()
    assert member.audio_muted is True


def test_it_sets_a_member_position_and_validates_it(api, live):
    member = MemberFactory(room_session=live)
    url = f"/api/video/room_sessions/{live.id}/members/{member.id}/set_position"
    assert api.post(url, {}, format="json").status_code == 422
    response = api.post(url, {"position": "center"}, format="json")
    assert response.status_code == 422 and error_attributes(response) == ["position"]
    assert api.post(url, {"position": "off-canvas"}, format="json").status_code == 200
    member.refresh_from_db()
    assert member.position == "off-canvas"


def test_it_removes_a_member(api, live):
    member = MemberFactory(room_session=live)
    assert api.post(f"/api/video/room_sessions/{live.id}/members/{member.id}/remove").status_code == 200
    member.refresh_from_db()
    assert member.leave_time is not None
    again = api.post(f"/api/video/room_sessions/{live.id}/members/{member.id}/audio_mute")
    assert again.status_code == 409


def test_unknown_member_actions_and_members_are_404(api, live):
    member = MemberFactory(room_session=live)
    assert api.post(f"/api/video/room_sessions/{live.id}/members/{member.id}/explode").status_code == 404
    other = MemberFactory()  # another session
    assert api.post(f"/api/video/room_sessions/{live.id}/members/{other.id}/deaf").status_code == 404


def test_acting_on_an_ended_session_is_409(api, live):
    member = MemberFactory(room_session=live)
    live.status = RoomSession.Status.COMPLETED
    live.end_time = timezone.now()
    live.save()
    response = api.post(f"/api/video/room_sessions/{live.id}/members/{member.id}/audio_mute")
    assert response.status_code == 409
    assert api.post(f"/api/video/room_sessions/{live.id}/end").status_code == 409


def test_it_sets_the_layout_and_rejects_unknown_layouts(api, live):
    member = MemberFactory(room_session=live)
    url = f"/api/video/room_sessions/{live.id}/layout"
    response = api.post(url, {"name": "nope"}, format="json")
    assert response.status_code == 422 and error_attributes(response) == ["name"]
    bad = api.post(url, {"name": "2x2", "positions": {str(member.id): "middle"}}, format="json")
    assert bad.status_code == 422
    response = api.post(url, {"name": "2x2", "positions": {str(member.id): "reserved-1"}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["layout"] == "2x2"
    member.refresh_from_db()
    assert member.position == "reserved-1"


def test_it_ends_a_session(api, live):
    MemberFactory(room_session=live)
    response = api.post(f"/api/video/room_sessions/{live.id}/end")
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert not Member.objects.filter(room_session=live, leave_time__isnull=True).exists()


def test_egress_control_validates_first_and_answers_503_media_unavailable_without_a_worker(api, owner, live):
    base = f"/api/video/room_sessions/{live.id}"
    bad_stream = api.post(f"{base}/streams", {"url": "http://x/y"}, format="json")
    assert bad_stream.status_code == 422
    bad_playback = api.post(f"{base}/playbacks", {"url": "https://x/y.mp4", "volume": 99}, format="json")
    assert bad_playback.status_code == 422
    for path, body in (
        (f"{base}/recordings", None),
        (f"{base}/streams", {"url": "rtmp://h/app/k"}),
        (f"{base}/playbacks", {"url": "https://media.example.com/a.mp4"}),
    ):
        response = api.post(path, body, format="json")
        assert response.status_code == 503, path
        assert error_codes(response) == ["media_unavailable"]
    recording = Recording.objects.create(project=owner.project, room_session=live)
    assert api.post(f"/api/video/room_recordings/{recording.id}/pause").status_code == 503
    assert api.post(f"/api/video/room_recordings/{recording.id}/rewind").status_code == 404
    # Nothing runs a stream of a session no worker holds: stopping it only records the end.
    stream = Stream.objects.create(project=owner.project, room_session=live, url="rtmp://h/a/k", state="streaming")
    stopped = api.post(f"/api/video/streams/{stream.id}/stop")
    assert stopped.status_code == 200 and stopped.json()["state"] == "completed"
    assert api.post(f"/api/video/streams/{stream.id}/stop").status_code == 409
    from rooms.models import Playback

    playback = Playback.objects.create(project=owner.project, room_session=live, url="https://x/y.mp4")
    assert api.post(f"/api/video/playbacks/{playback.id}/pause").status_code == 503
    playback.state = "completed"
    playback.save()
    assert api.post(f"/api/video/playbacks/{playback.id}/resume").status_code == 409
