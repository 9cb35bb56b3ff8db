"""Authentication, throttling and the transport's handling of bad input."""

from __future__ import annotations

from rest_framework.test import APIClient

from rooms.services.api_keys import api_key_revoke
from rooms.tests.api.conftest import basic, error_codes


def test_it_rejects_a_request_without_a_key_with_401_and_www_authenticate(db):
    response = APIClient().get("/api/video/rooms")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_codes(response) == ["not_authenticated"]


def test_it_rejects_an_unknown_key(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer pk_deadbeef_notakey")
    response = client.get("/api/video/rooms")
    assert response.status_code == 401
    assert error_codes(response) == ["authentication_failed"]


def test_it_rejects_a_revoked_key(owner):
    assert owner.client.get("/api/video/rooms").status_code == 200
    api_key_revoke(api_key=owner.key)
    response = owner.client.get("/api/video/rooms")
    assert response.status_code == 401


def test_it_accepts_basic_auth_with_the_project_id(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(owner.project.id, owner.raw_key))
    assert client.get("/api/video/rooms").status_code == 200


def test_it_rejects_basic_auth_naming_another_project(owner, outsider):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(outsider.project.id, owner.raw_key))
    response = client.get("/api/video/rooms")
    assert response.status_code == 401
    assert error_codes(response) == ["authentication_failed"]


def test_it_rejects_malformed_json_with_400_parse_error(api):
    response = api.post("/api/video/rooms", data=b'{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert error_codes(response) == ["parse_error"]


def test_it_rejects_json_nan_as_a_parse_error(api):
    response = api.post("/api/video/rooms", data=b'{"name": "a", "meta": {"x": NaN}}', content_type="application/json")
    assert response.status_code == 400


def test_it_refuses_a_body_larger_than_the_limit_with_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = b'{"name": "big", "description": "' + b"x" * 2000 + b'"}'
    response = api.post("/api/video/rooms", data=body, content_type="application/json")
    assert response.status_code == 413
    assert error_codes(response) == ["payload_too_large"]


def test_it_answers_a_non_object_body_with_422(api):
    response = api.post("/api/video/rooms", data=[1, 2], format="json")
    assert response.status_code == 422


def test_it_throttles_writes_per_key_with_429_and_retry_after(owner, outsider, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "2/min", "room_tokens": "1/min"},
    }
    codes = [owner.client.post("/api/video/rooms", {"name": f"r{i}"}, format="json").status_code for i in range(3)]
    assert codes == [201, 201, 429]
    response = owner.client.post("/api/video/rooms", {"name": "r9"}, format="json")
    assert int(response["Retry-After"]) > 0
    assert error_codes(response) == ["throttled"]
    # Reads are not throttled, and another key has its own budget.
    assert owner.client.get("/api/video/rooms").status_code == 200
    assert outsider.client.post("/api/video/rooms", {"name": "r0"}, format="json").status_code == 201


def test_it_throttles_token_minting_on_its_own_scope(owner, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100/min", "room_tokens": "1/min"},
    }
    first = owner.client.post("/api/video/room_tokens", {"room_name": "a"}, format="json")
    second = owner.client.post("/api/video/room_tokens", {"room_name": "a"}, format="json")
    assert (first.status_code, second.status_code) == (201, 429)
    assert owner.client.post("/api/video/rooms", {"name": "still-ok"}, format="json").status_code == 201
