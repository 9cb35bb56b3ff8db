"""Rooms: list with search and live status, create/edit with validation, delete with confirmation, join links."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from django.urls import reverse

from rooms.models import AuditEntry, Room
from rooms.permissions import ALL_PERMISSIONS, DEFAULT_PERMISSIONS
from rooms.tests.factories import RoomFactory, RoomSessionFactory
from rooms.tokens import room_token_verify

pytestmark = pytest.mark.django_db

VALID = {
    "name": "town-hall",
    "display_name": "Town hall",
    "description": "Monthly all-hands",
    "max_members": "50",
    "quality": "1080p",
    "fps": "30",
    "layout": "highlight-1-responsive",
    "record_on_start": "on",
    "meta": '{"team": "ops"}',
    "join_from": "2030-01-01T09:00",
    "join_until": "2030-01-01T11:00",
    "remove_after_seconds_elapsed": "3600",
    "tone_on_entry_and_exit": "on",
}


def test_it_lists_rooms_with_live_status_and_searches_them(operator_client, room, project):
    RoomFactory(project=project, name="board", display_name="Board meeting")
    RoomSessionFactory(room=room)
    page = operator_client.get(reverse("dashboard:rooms")).content.decode()
    assert "Daily standup" in page and "Board meeting" in page
    assert page.index("Daily standup") < page.index("Board meeting")  # live rooms first
    assert 'class="badge live"' in page
    rows = operator_client.get(
        reverse("dashboard:rooms") + "?q=board", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="room-rows"
    )
    html = rows.content.decode()
    assert "Board meeting" in html and "Daily standup" not in html and "<html" not in html


def test_an_operator_creates_a_room_with_every_setting(operator_client, project):
    response = operator_client.post(reverse("dashboard:room_create"), VALID)
    assert response.status_code == 302
    room = Room.objects.get(project=project, name="town-hall")
    assert (room.max_members, room.quality, room.fps, room.layout) == (50, "1080p", 30, "highlight-1-responsive")
    assert room.record_on_start is True and room.locked is False and room.tone_on_entry_and_exit is True
    assert room.meta == {"team": "ops"}
    assert room.join_from.isoformat().startswith("2030-01-01T09:00")
    assert room.remove_after_seconds_elapsed == 3600
    assert AuditEntry.objects.filter(action="room.create", interface="dashboard", actor_name="olivia").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "town hall!", "letters, digits"),
        ("max_members", "0", "greater than or equal to 1"),
        ("meta", "{not json", "Not valid JSON"),
        ("meta", "[1, 2]", "Must be a JSON object"),
        ("join_until", "2029-12-31T09:00", "Must be after"),
        ("layout", "nope", "Select a valid choice"),
        ("quality", "4k", "Select a valid choice"),
    ],
)
def test_an_invalid_room_shows_the_field_error_and_keeps_what_was_typed(operator_client, field, value, message):
    response = operator_client.post(reverse("dashboard:room_create"), {**VALID, field: value})
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html
    assert 'value="Town hall"' in html  # what was typed elsewhere is kept
    assert not Room.objects.filter(name="town-hall").exists()


def test_a_duplicate_room_name_is_refused_on_the_name_field(operator_client, room):
    response = operator_client.post(reverse("dashboard:room_create"), {**VALID, "name": room.name})
    assert response.status_code == 422
    assert "already exists" in response.content.decode()


def test_an_operator_edits_a_room_but_not_its_name(operator_client, room):
    data = {**VALID, "name": "renamed", "max_members": "7", "locked": "on"}
    response = operator_client.post(reverse("dashboard:room_edit", args=[room.id]), data)
    assert response.status_code == 302
    room.refresh_from_db()
    assert (room.name, room.max_members, room.locked, room.display_name) == ("standup", 7, True, "Town hall")


def test_delete_asks_for_confirmation_then_deletes(operator_client, room):
    page = operator_client.get(reverse("dashboard:room_delete", args=[room.id]))
    assert page.status_code == 200 and "Delete room" in page.content.decode()
    assert Room.objects.filter(id=room.id).exists()
    operator_client.post(reverse("dashboard:room_delete", args=[room.id]))
    assert not Room.objects.filter(id=room.id).exists()


def test_a_room_with_a_live_session_is_not_deleted_and_says_why(operator_client, room):
    RoomSessionFactory(room=room)
    response = operator_client.post(reverse("dashboard:room_delete", args=[room.id]), follow=True)
    assert "session in progress" in response.content.decode()
    assert Room.objects.filter(id=room.id).exists()


def _token_from(html: str) -> str:
    start = html.index("#token=") + len("#token=")
    return unquote(html[start : html.index('"', start)])


def test_a_join_link_carries_a_token_with_the_chosen_role(moderator_client, room, settings, project):
    settings.PARLEY_PUBLIC_URL = "https://parley.example"
    response = moderator_client.post(
        reverse("dashboard:room_link", args=[room.id]),
        {"user_name": "Guest", "join_as": "member", "role": "member", "expires_in": "3600"},
    )
    html = response.content.decode()
    assert "https://parley.example/r/standup/#token=" in html
    grant = room_token_verify(_token_from(html), project=project)
    assert grant.room_name == "standup" and grant.user_name == "Guest"
    assert set(grant.permissions) == set(DEFAULT_PERMISSIONS)
    assert 3500 < (grant.expires_at.timestamp() - __import__("time").time()) <= 3600


def test_a_join_link_with_custom_permissions_carries_exactly_those(operator_client, room, project):
    response = operator_client.post(
        reverse("dashboard:room_link", args=[room.id]),
        {
            "join_as": "member",
            "role": "custom",
            "permissions": ["room.self.audio_mute", "room.member.remove"],
            "expires_in": "86400",
        },
        HTTP_HX_REQUEST="true",
    )
    grant = room_token_verify(_token_from(response.content.decode()), project=project)
    assert grant.permissions == ("room.self.audio_mute", "room.member.remove")


def test_a_custom_join_link_without_permissions_is_refused(operator_client, room):
    response = operator_client.post(
        reverse("dashboard:room_link", args=[room.id]), {"join_as": "member", "role": "custom", "expires_in": "3600"}
    )
    assert "#token=" not in response.content.decode()
    assert "Tick at least one permission" in response.content.decode()


def test_an_audience_join_link_carries_no_permissions(operator_client, room, project):
    response = operator_client.post(
        reverse("dashboard:room_link", args=[room.id]),
        {"join_as": "audience", "role": "moderator", "expires_in": "3600"},
    )
    grant = room_token_verify(_token_from(response.content.decode()), project=project)
    assert grant.join_as == "audience" and grant.permissions == ()


def test_join_as_moderator_opens_the_participant_page_with_every_permission(moderator_client, room, project):
    response = moderator_client.post(reverse("dashboard:room_join", args=[room.id]))
    assert response.status_code == 302
    assert "/r/standup/#token=" in response["Location"]
    grant = room_token_verify(response["Location"].split("#token=", 1)[1], project=project)
    assert grant.user_name == "mo" and set(grant.permissions) == set(ALL_PERMISSIONS)
