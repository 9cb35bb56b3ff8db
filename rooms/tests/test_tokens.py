"""``rooms.tokens``: claims round-trip, defaults and every rejection reason with its own code."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from rooms import exceptions as exc
from rooms.actors import Actor
from rooms.permissions import DEFAULT_PERMISSIONS
from rooms.services.tokens import room_token_create
from rooms.tests.factories import ProjectFactory
from rooms.tokens import room_token_mint, room_token_verify


@pytest.fixture
def project(db):
    return ProjectFactory()


def _mint(project, **claims):
    expires_in = claims.pop("expires_in", None)
    return room_token_mint(
        project=project, claims={"room_name": "r", "user_name": "u", **claims}, expires_in=expires_in
    )[0]


def test_claims_round_trip(project):
    join_until = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    token = _mint(
        project,
        permissions=["room.lock"],
        join_until=join_until,
        meta={"a": 1},
        room_meta={"b": 2},
        media_allowed="video-only",
        remove_after_seconds_elapsed=30,
    )
    grant = room_token_verify(token)
    assert grant.project_id == project.id
    assert (grant.room_name, grant.user_name, grant.permissions) == ("r", "u", ("room.lock",))
    assert grant.join_until == join_until
    assert (grant.meta, grant.room_meta, grant.media_allowed) == ({"a": 1}, {"b": 2}, "video-only")
    assert grant.remove_after_seconds_elapsed == 30
    assert jwt.get_unverified_header(token)["typ"] == "VRT"


def test_the_service_applies_defaults(project):
    token = room_token_create(project=project, actor=Actor.system(project.id), fields={"room_name": "r"})
    grant = room_token_verify(token, project=project)
    assert grant.permissions == DEFAULT_PERMISSIONS and grant.auto_create_room and grant.join_as == "member"
    assert grant.user_name and grant.expires_at > timezone.now() + timedelta(hours=23)


def test_audience_tokens_have_no_permissions(project):
    grant = room_token_verify(_mint(project, join_as="audience", permissions=["room.lock"]))
    assert grant.permissions == () and grant.join_as == "audience"


def test_it_rejects_a_tampered_token(project):
    token = _mint(project)
    header, payload, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "room_name": "other"},
        "x" * 64,
        algorithm="HS512",
        headers={"typ": "VRT"},
    )
    with pytest.raises(exc.TokenBadSignature) as info:
        room_token_verify(f"{header}.{forged.split('.')[1]}.{signature}")
    assert info.value.code == "token_bad_signature"


def test_it_rejects_an_expired_token(project):
    _, payload = room_token_mint(project=project, claims={"room_name": "r", "user_name": "u"}, expires_in=60)
    expired = {**payload, "iat": payload["iat"] - 3600, "exp": payload["iat"] - 60}
    token = jwt.encode(expired, project.token_secret, algorithm="HS512", headers={"typ": "VRT"})
    with pytest.raises(exc.TokenExpired) as info:
        room_token_verify(token)
    assert info.value.code == "token_expired"


def test_it_rejects_a_token_of_another_project(project):
    other = ProjectFactory()
    with pytest.raises(exc.TokenWrongProject) as info:
        room_token_verify(_mint(project), project=other)
    assert info.value.code == "token_wrong_project"


def test_it_rejects_a_token_before_join_from(project):
    token = _mint(project, join_from=timezone.now() + timedelta(hours=1))
    with pytest.raises(exc.TokenNotYetValid) as info:
        room_token_verify(token)
    assert info.value.code == "token_not_yet_valid"
    assert room_token_verify(token, at=timezone.now() + timedelta(hours=2)).room_name == "r"


def test_it_rejects_a_token_after_join_until(project):
    token = _mint(project, join_until=timezone.now() - timedelta(minutes=1))
    with pytest.raises(exc.TokenJoinWindowClosed) as info:
        room_token_verify(token)
    assert info.value.code == "token_join_window_closed"


@pytest.mark.parametrize("token", ["", "not.a.jwt", "a" * 9000, None, "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_it_rejects_malformed_tokens(project, token):
    with pytest.raises(exc.TokenMalformed) as info:
        room_token_verify(token)
    assert info.value.code == "token_malformed"


def test_it_rejects_a_token_signed_with_another_algorithm(project):
    token = jwt.encode({"sub": str(project.id), "room_name": "r"}, project.token_secret, algorithm="HS256")
    with pytest.raises(exc.TokenMalformed):
        room_token_verify(token)


def test_the_reasons_have_distinct_codes():
    classes = [
        exc.TokenMalformed,
        exc.TokenBadSignature,
        exc.TokenExpired,
        exc.TokenNotYetValid,
        exc.TokenJoinWindowClosed,
        exc.TokenWrongProject,
    ]
    assert len({c.code for c in classes}) == len(classes)
    assert all(c.http_status == 401 for c in classes)
