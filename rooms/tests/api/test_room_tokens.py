"""``POST /api/video/room_tokens``."""

from __future__ import annotations

import time

import jwt
import pytest

from rooms.permissions import DEFAULT_PERMISSIONS
from rooms.tests.api.conftest import error_attributes
from rooms.tokens import room_token_verify


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_it_mints_a_token_with_signalwire_defaults(api, owner):
    response = api.post("/api/video/room_tokens", {"room_name": "no-such-room-yet"}, format="json")
    assert response.status_code == 201
    grant = room_token_verify(response.json()["token"], project=owner.project)
    assert grant.room_name == "no-such-room-yet"
    assert grant.permissions == DEFAULT_PERMISSIONS
    assert grant.join_as == "member" and grant.auto_create_room is True and grant.media_allowed == "all"
    assert len(grant.user_name) == 12 and grant.user_name.isalnum()
    claims = _claims(response.json()["token"])
    assert 86400 - 5 <= claims["exp"] - time.time() <= 86400 + 5


def test_it_mints_every_field_and_expires_in(api, owner):
    payload = {
        "room_name": "r",
        "user_name": "Ada",
        "permissions": ["room.member.remove", "room.set_layout"],
        "join_from": "2000-01-01T00:00:00Z",
        "join_until": "2100-01-01T00:00:00Z",
        "remove_at": "2100-01-01T00:00:00Z",
        "remove_after_seconds_elapsed": 900,
        "auto_create_room": False,
        "join_audio_muted": True,
        "join_video_muted": True,
        "media_allowed": "audio-only",
        "end_room_session_on_leave": True,
        "room_display_name": "R",
        "room_meta": {"topic": "x"},
        "meta": {"role": "host"},
        "expires_in": 60,
    }
    token = api.post("/api/video/room_tokens", payload, format="json").json()["token"]
    grant = room_token_verify(token, project=owner.project)
    assert grant.user_name == "Ada" and grant.permissions == ("room.member.remove", "room.set_layout")
    assert grant.remove_after_seconds_elapsed == 900 and grant.auto_create_room is False
    assert grant.join_audio_muted and grant.join_video_muted and grant.end_room_session_on_leave
    assert grant.media_allowed == "audio-only" and grant.room_meta == {"topic": "x"} and grant.meta == {"role": "host"}
    assert grant.join_until.year == 2100
    assert 55 <= _claims(token)["exp"] - time.time() <= 65


def test_audience_tokens_carry_no_permissions(api, owner):
    payload = {"room_name": "r", "join_as": "audience", "permissions": ["room.member.remove"]}
    token = api.post("/api/video/room_tokens", payload, format="json").json()["token"]
    assert room_token_verify(token, project=owner.project).permissions == ()


def test_it_names_unknown_permissions_in_the_error(api):
    payload = {"room_name": "r", "permissions": ["room.self.audio_mute", "room.admin", "room.fly"]}
    response = api.post("/api/video/room_tokens", payload, format="json")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["attribute"] == "permissions"
    assert "room.admin" in error["message"] and "room.fly" in error["message"]
    assert "room.self.audio_mute" not in error["message"]


@pytest.mark.parametrize(
    ("payload", "attribute"),
    [
        ({}, "room_name"),
        ({"room_name": "bad/name"}, "room_name"),
        ({"room_name": "r" * 101}, "room_name"),
        ({"room_name": "r", "user_name": "u" * 101}, "user_name"),
        ({"room_name": "r", "join_as": "moderator"}, "join_as"),
        ({"room_name": "r", "media_allowed": "none"}, "media_allowed"),
        ({"room_name": "r", "join_from": "tomorrow"}, "join_from"),
        ({"room_name": "r", "remove_at": "2030-13-01T00:00:00Z"}, "remove_at"),
        ({"room_name": "r", "remove_after_seconds_elapsed": 0}, "remove_after_seconds_elapsed"),
        ({"room_name": "r", "remove_after_seconds_elapsed": 200001}, "remove_after_seconds_elapsed"),
        ({"room_name": "r", "meta": "text"}, "meta"),
        ({"room_name": "r", "room_meta": {"k": "v" * 2001}}, "room_meta"),
        ({"room_name": "r", "expires_in": 0}, "expires_in"),
        ({"room_name": "r", "expires_in": 2592001}, "expires_in"),
        ({"room_name": "r", "permissions": "room.lock"}, "permissions"),
        ({"room_name": "r", "join_from": "2030-01-02T00:00Z", "join_until": "2030-01-01T00:00Z"}, "join_until"),
    ],
)
def test_it_rejects_invalid_token_fields(api, payload, attribute):
    response = api.post("/api/video/room_tokens", payload, format="json")
    assert response.status_code == 422
    assert attribute in error_attributes(response)


def test_a_token_of_one_project_does_not_verify_for_another(api, outsider):
    from rooms.exceptions import TokenWrongProject

    token = api.post("/api/video/room_tokens", {"room_name": "r"}, format="json").json()["token"]
    with pytest.raises(TokenWrongProject):
        room_token_verify(token, project=outsider.project)
