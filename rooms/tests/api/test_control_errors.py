"""What live control answers for an unknown action (404 before anything is looked up) and what it audits when
it ends a session (the session as target, with its name)."""

from __future__ import annotations

import uuid

import pytest

from rooms.models import AuditEntry, RoomSession
from rooms.tests.factories import MemberFactory, RoomSessionFactory


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("room_sessions/{session}/members/{member}/wave", "member"),
        ("room_recordings/{recording}/wave", "recording"),
        ("playbacks/{playback}/wave", "playback"),
    ],
)
def test_an_unknown_action_is_404_naming_it_before_the_object_is_looked_up(api, owner, path, kind):
    session = RoomSessionFactory(room__project=owner.project)
    member = MemberFactory(room_session=session)
    missing = uuid.uuid4()  # the action is checked first: no recording or playback needs to exist
    url = "/api/video/" + path.format(session=session.id, member=member.id, recording=missing, playback=missing)
    response = api.post(url, {}, format="json")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"code": "not_found", "message": f"Unknown {kind} action 'wave'.", "attribute": None}]
    }


def test_ending_a_session_over_rest_audits_the_session_by_name(api, owner):
    session = RoomSessionFactory(room__project=owner.project, name="standup")
    response = api.post(f"/api/video/room_sessions/{session.id}/end")
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert RoomSession.objects.get(id=session.id).status == RoomSession.Status.COMPLETED
    entry = AuditEntry.objects.get(action="room_session.end")
    assert (entry.project_id, entry.room_session_id) == (owner.project.id, session.id)
    assert (entry.target_type, entry.target_id, entry.target_name) == ("room_session", str(session.id), "standup")
    assert entry.details == {}
