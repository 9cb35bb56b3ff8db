"""``/api/video/webhooks``: endpoint CRUD, secret rotation, the deliveries log, re-send and test pings."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from rooms.events import event_emit
from rooms.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from rooms.tests import test_webhooks
from rooms.tests.api.conftest import error_attributes, error_codes
from rooms.tests.factories import RoomSessionFactory, WebhookEndpointFactory

# Fixtures shared with the outbox tests: the loopback HTTP receiver and in-process Celery.
receiver = test_webhooks.receiver
celery_in_process = test_webhooks.celery_in_process

BASE = "/api/video/webhooks"


def create(api, **data):
    return api.post(BASE, {"url": "https://93.184.215.14/parley", **data}, format="json")


def emit(project, event_type="member.joined") -> dict:
    session = RoomSessionFactory(room__project=project)
    with transaction.atomic():
        return event_emit(
            event_type,
            project_id=project.id,
            room_id=session.room_id,
            room_session_id=session.id,
            params={"member": {"id": str(uuid.uuid4()), "name": "Linus"}},
        )


# --- CRUD -------------------------------------------------------------------------------------------------------


def test_it_registers_an_endpoint_and_shows_the_secret_only_on_create(api, owner):
    response = create(api, event_types=["room.started", "recording.ended"], description="CRM")

    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(id=body["id"])
    assert endpoint.project == owner.project
    assert body["secret"] == endpoint.secret and len(body["secret"]) >= 32
    assert body["event_types"] == ["room.started", "recording.ended"]
    assert body["enabled"] is True and body["description"] == "CRM"
    assert "secret" not in api.get(f"{BASE}/{endpoint.id}").json()
    assert all("secret" not in item for item in api.get(BASE).json()["data"])
    assert AuditEntry.objects.filter(
        project=owner.project, action="webhook.create", target_id=str(endpoint.id)
    ).exists()


def test_it_lists_endpoints_in_pages(api, owner, outsider):
    for n in range(3):
        WebhookEndpointFactory(project=owner.project, url=f"https://93.184.215.14/{n}")
    WebhookEndpointFactory(project=outsider.project)

    first = api.get(BASE, {"page_size": 2}).json()
    assert len(first["data"]) == 2 and first["links"]["prev"] is None
    second = api.get(first["links"]["next"]).json()
    assert len(second["data"]) == 1 and second["links"]["next"] is None and second["links"]["prev"]
    seen = {e["url"] for e in first["data"] + second["data"]}
    assert seen == {f"https://93.184.215.14/{n}" for n in range(3)}


def test_it_changes_replaces_and_deletes_an_endpoint(api, owner):
    endpoint = WebhookEndpointFactory(project=owner.project, event_types=["room.ended"], description="old")
    url = f"{BASE}/{endpoint.id}"

    patched = api.patch(url, {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert patched.json()["event_types"] == ["room.ended"] and patched.json()["description"] == "old"

    put = api.put(url, {"url": "https://93.184.215.14/v2"}, format="json")
    assert put.status_code == 200
    assert put.json() | {"updated_at": None} == {
        "id": str(endpoint.id),
        "url": "https://93.184.215.14/v2",
        "description": "",
        "event_types": [],
        "enabled": True,
        "created_at": put.json()["created_at"],
        "updated_at": None,
    }

    assert api.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.filter(id=endpoint.id).exists()
    assert api.get(url).status_code == 404


def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(
    api, owner, receiver, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(project=owner.project, url=receiver.url)
    old_secret = endpoint.secret

    response = api.post(f"{BASE}/{endpoint.id}/rotate_secret")
    assert response.status_code == 200
    new_secret = response.json()["secret"]
    assert new_secret != old_secret
    with django_capture_on_commit_callbacks(execute=True):
        emit(owner.project)

    verify = test_webhooks.documented_python_verifier()
    [request] = receiver.requests
    assert verify(new_secret, request.body, request.headers["Parley-Signature"])
    assert not verify(old_secret, request.body, request.headers["Parley-Signature"])


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "attribute"),
    [
        ({"url": "ftp://93.184.215.14/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"event_types": ["room.started", "room.exploded"]}, "event_types"),
        ({"event_types": "room.started"}, "event_types"),
        ({"description": "x" * 301}, "description"),
    ],
)
def test_it_rejects_bad_input_naming_the_attribute(api, data, attribute):
    response = create(api, **data)
    assert response.status_code == 422, response.content
    assert error_attributes(response) == [attribute]
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_named_in_the_error(api):
    response = create(api, event_types=["room.exploded"])
    assert "room.exploded" in response.json()["errors"][0]["message"]


def test_it_requires_a_url(api):
    response = api.post(BASE, {"event_types": []}, format="json")
    assert response.status_code == 422 and error_attributes(response) == ["url"]


def test_it_refuses_a_private_address_when_not_allowed(api, owner, settings):
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/hook", "http://10.0.0.7/hook", "http://169.254.169.254/"):
        response = create(api, url=url)
        assert response.status_code == 422 and error_attributes(response) == ["url"], url
    endpoint = WebhookEndpointFactory(project=owner.project, url="https://93.184.215.14/ok")
    response = api.patch(f"{BASE}/{endpoint.id}", {"url": "http://[::1]/hook"}, format="json")
    assert response.status_code == 422
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.215.14/ok"


def test_malformed_json_is_a_400(api):
    response = api.generic("POST", BASE, "{not json", content_type="application/json")
    assert response.status_code == 400 and error_codes(response) == ["parse_error"]


def test_it_requires_an_api_key(db):
    from rest_framework.test import APIClient

    assert APIClient().get(BASE).status_code == 401


# --- another project's endpoints --------------------------------------------------------------------------------


def test_another_projects_endpoint_and_deliveries_are_not_found(api, outsider, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(project=outsider.project, url="http://127.0.0.1:9/closed")
    with django_capture_on_commit_callbacks(execute=True):
        emit(outsider.project)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    url = f"{BASE}/{endpoint.id}"

    for method, path in [
        ("get", url),
        ("patch", url),
        ("put", url),
        ("delete", url),
        ("post", f"{url}/rotate_secret"),
        ("post", f"{url}/test"),
        ("get", f"{url}/deliveries"),
        ("get", f"{url}/deliveries/{delivery.id}"),
        ("post", f"{url}/deliveries/{delivery.id}/resend"),
    ]:
        response = getattr(api, method)(path, {"url": "https://93.184.215.14/x"}, format="json")
        assert response.status_code == 404, (method, path)
        assert error_codes(response) == ["not_found"]
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/closed"
    assert WebhookDelivery.objects.get(id=delivery.id).attempts == 1


def test_malformed_and_unknown_ids_are_json_404s(api, owner):
    endpoint = WebhookEndpointFactory(project=owner.project)
    for path in (f"{BASE}/not-a-uuid", f"{BASE}/{uuid.uuid4()}", f"{BASE}/{endpoint.id}/deliveries/{uuid.uuid4()}"):
        response = api.get(path)
        assert response.status_code == 404 and error_codes(response) == ["not_found"], path


# --- deliveries log, re-send, test ping -----------------------------------------------------------------------


def test_the_deliveries_log_shows_each_attempt(api, owner, receiver, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(project=owner.project, url=receiver.url)
    receiver.answer((500, "database down"))
    with django_capture_on_commit_callbacks(execute=True):
        body = emit(owner.project)

    response = api.get(f"{BASE}/{endpoint.id}/deliveries")

    assert response.status_code == 200
    [item] = response.json()["data"]
    assert item["event_id"] == body["id"] and item["event_type"] == "member.joined"
    assert item["webhook_id"] == str(endpoint.id)
    assert item["status"] == "pending" and item["attempts"] == 1 and item["next_attempt_at"]
    assert item["last_status_code"] == 500 and item["last_response_excerpt"] == "database down"
    [attempt] = item["attempt_log"]
    assert attempt["status_code"] == 500 and attempt["response_excerpt"] == "database down"
    assert set(attempt) == {"at", "status_code", "error", "duration_ms", "response_excerpt"}
    assert api.get(f"{BASE}/{endpoint.id}/deliveries/{item['id']}").json() == item


@pytest.mark.django_db(transaction=True)
def test_resend_attempts_a_failed_delivery_again_at_once(api, owner, receiver, settings):
    settings.PARLEY_WEBHOOK_MAX_AGE_SECONDS = 0  # the first failure is final
    endpoint = WebhookEndpointFactory(project=owner.project, url=receiver.url)
    receiver.answer((503, "later"))
    body = emit(owner.project)  # really committed: the first attempt runs after commit
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed" and delivery.attempts == 1

    response = api.post(f"{BASE}/{endpoint.id}/deliveries/{delivery.id}/resend")

    assert response.status_code == 202, response.content
    result = response.json()
    assert result["status"] == "delivered" and result["attempts"] == 2 and result["next_attempt_at"] is None
    assert [a["status_code"] for a in result["attempt_log"]] == [503, 200]
    assert [r.headers["Parley-Event-Id"] for r in receiver.requests] == [body["id"], body["id"]]
    assert AuditEntry.objects.filter(project=owner.project, action="webhook.resend").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_test_ping_is_signed_and_logged(api, owner, receiver):
    endpoint = WebhookEndpointFactory(project=owner.project, url=receiver.url)

    response = api.post(f"{BASE}/{endpoint.id}/test")

    assert response.status_code == 202, response.content
    assert response.json()["event_type"] == "webhook.test" and response.json()["status"] == "delivered"
    [request] = receiver.requests
    assert test_webhooks.documented_python_verifier()(
        endpoint.secret, request.body, request.headers["Parley-Signature"]
    )
    ping = request.json()
    assert ping["event_type"] == "webhook.test" and ping["project_id"] == str(owner.project.id)
    assert ping["params"] == {"webhook": {"id": str(endpoint.id), "url": receiver.url}}
    assert ping["id"] == response.json()["event_id"] == request.headers["Idempotency-Key"]


def test_resend_and_test_on_a_disabled_endpoint_are_conflicts(api, owner, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(project=owner.project, url="http://127.0.0.1:9/closed")
    with django_capture_on_commit_callbacks(execute=True):
        emit(owner.project)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    endpoint.enabled = False
    endpoint.save()

    assert api.post(f"{BASE}/{endpoint.id}/test").status_code == 409
    assert api.post(f"{BASE}/{endpoint.id}/deliveries/{delivery.id}/resend").status_code == 409
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_the_schema_documents_the_webhook_operations(api):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert set(paths[BASE]) >= {"get", "post"}
    assert set(paths[BASE + "/{webhook_id}"]) >= {"get", "put", "patch", "delete"}
    assert "post" in paths[BASE + "/{webhook_id}/deliveries/{delivery_id}/resend"]
    assert "post" in paths[BASE + "/{webhook_id}/test"]
