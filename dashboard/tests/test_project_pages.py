"""API keys, webhook endpoints, layouts, recordings, the audit log and usage."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.selectors import usage_by_day
from rooms.models import ApiKey, AuditEntry, Layout, Recording, RoomSessionEvent, WebhookDelivery, WebhookEndpoint
from rooms.tests.factories import MemberFactory, RoomSessionFactory, WebhookEndpointFactory, api_key_create

pytestmark = pytest.mark.django_db


def test_a_new_api_key_is_shown_once_and_works_as_stored(operator_client, project):
    response = operator_client.post(reverse("dashboard:api_keys"), {"name": "backend"})
    html = response.content.decode()
    raw = re.search(r'id="raw-key" type="text" readonly value="(pk_[^"]+)"', html).group(1)
    key = ApiKey.objects.get(project=project, name="backend")
    assert ApiKey.hash_key(raw) == key.key_hash
    assert response["Cache-Control"] == "no-store"
    assert raw not in operator_client.get(reverse("dashboard:api_keys")).content.decode()


def test_an_api_key_needs_a_name(operator_client, project):
    response = operator_client.post(reverse("dashboard:api_keys"), {"name": ""})
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.filter(project=project).exists()


def test_revoking_a_key_stops_it_and_is_audited(operator_client, project):
    key, _ = api_key_create(project, name="old")
    operator_client.post(reverse("dashboard:api_key_revoke", args=[key.id]))
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke", interface="dashboard").exists()


def test_a_webhook_endpoint_is_created_with_its_event_filter_and_secret_shown(operator_client, project):
    response = operator_client.post(
        reverse("dashboard:webhooks"),
        {
            "url": "http://127.0.0.1:9/hook",
            "description": "CRM",
            "event_types": ["room.started", "room.ended"],
            "enabled": "on",
        },
    )
    endpoint = WebhookEndpoint.objects.get(project=project)
    assert response["Location"] == reverse("dashboard:webhook", args=[endpoint.id])
    assert endpoint.event_types == ["room.started", "room.ended"] and endpoint.enabled
    page = operator_client.get(response["Location"]).content.decode()
    assert endpoint.secret in page


def test_a_webhook_endpoint_with_a_bad_url_keeps_the_form(operator_client, project):
    response = operator_client.post(
        reverse("dashboard:webhooks"), {"url": "ftp://example.com/x", "description": "kept text", "enabled": "on"}
    )
    assert response.status_code == 422
    assert "kept text" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_lists_attempts_and_resend_resets_a_delivery(operator_client, project):
    endpoint = WebhookEndpointFactory(project=project, url="http://127.0.0.1:9/hook")
    event = RoomSessionEvent.objects.create(project=project, name="room.started", payload={})
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, status="failed", attempts=3, last_status_code=500, last_response_excerpt="boom"
    )
    page = operator_client.get(reverse("dashboard:webhook", args=[endpoint.id])).content.decode()
    assert "room.started" in page and "HTTP 500" in page and "boom" in page
    operator_client.post(reverse("dashboard:webhook_resend", args=[endpoint.id, delivery.id]))
    delivery.refresh_from_db()
    assert delivery.status in ("pending", "failed", "delivered") and delivery.next_attempt_at is not None
    assert AuditEntry.objects.filter(action="webhook.resend").exists()


def test_rotating_a_webhook_secret_replaces_it(operator_client, project):
    endpoint = WebhookEndpointFactory(project=project)
    old = endpoint.secret
    operator_client.post(reverse("dashboard:webhook_action", args=[endpoint.id, "rotate_secret"]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old


def test_builtin_layouts_are_drawn_from_their_slots(moderator_client):
    page = moderator_client.get(reverse("dashboard:layouts")).content.decode()
    two_by_two = page[page.index('aria-label="Layout 2x2') :]
    two_by_two = two_by_two[: two_by_two.index("</svg>")]
    assert two_by_two.count('class="slot') == 4
    assert '<rect x="180" y="180" width="180" height="180"' in two_by_two
    assert "Create layout" not in page  # moderators do not create layouts


def test_an_operator_creates_a_custom_layout_from_typed_slots(operator_client, project):
    response = operator_client.post(
        reverse("dashboard:layouts"),
        {"name": "stage", "description": "one big", "slots": "0 0 240 360\n240 0 120 180\n240 180 120 180 screen"},
    )
    assert response.status_code == 302
    layout = Layout.objects.get(project=project, name="stage")
    assert [s["width"] for s in layout.slots] == [240, 120, 120]
    assert layout.slots[2]["reservation"] == "screen"
    page = operator_client.get(reverse("dashboard:layouts")).content.decode()
    assert 'aria-label="Layout stage: 3 slots"' in page


@pytest.mark.parametrize(
    ("slots", "message"),
    [("0 0 400 100", "inside the canvas"), ("0 0 ten 10", "must be numbers"), ("", "This field is required")],
)
def test_a_bad_custom_layout_names_the_problem_and_keeps_the_text(operator_client, project, slots, message):
    response = operator_client.post(reverse("dashboard:layouts"), {"name": "bad", "slots": slots})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert 'value="bad"' in response.content.decode()
    assert not Layout.objects.filter(project=project).exists()


def test_a_custom_layout_cannot_take_a_builtin_name(operator_client):
    response = operator_client.post(reverse("dashboard:layouts"), {"name": "2x2", "slots": "0 0 360 360"})
    assert "already exists" in response.content.decode()


def test_a_moderator_cannot_create_a_layout(moderator_client, project):
    response = moderator_client.post(reverse("dashboard:layouts"), {"name": "x", "slots": "0 0 360 360"})
    assert response.status_code == 403
    assert not Layout.objects.filter(project=project).exists()


def test_recordings_list_detail_and_delete(moderator_client, room, project):
    session = RoomSessionFactory(room=room)
    recording = Recording.objects.create(
        project=project,
        room_session=session,
        status="completed",
        duration=75.0,
        size_in_bytes=2_500_000,
        storage_name="recordings/x.mp4",
    )
    listing = moderator_client.get(reverse("dashboard:recordings")).content.decode()
    assert "75 s" in listing and "2.4\xa0MB" in listing
    detail = moderator_client.get(reverse("dashboard:recording", args=[recording.id])).content.decode()
    assert "<video" in detail and f"/api/video/room_recordings/{recording.id}/download?expires=" in detail
    moderator_client.post(reverse("dashboard:recording_delete", args=[recording.id]))
    assert not Recording.objects.filter(id=recording.id).exists()


def test_a_recording_in_progress_is_not_deleted(moderator_client, room, project):
    recording = Recording.objects.create(project=project, room_session=RoomSessionFactory(room=room))
    response = moderator_client.post(reverse("dashboard:recording_delete", args=[recording.id]), follow=True)
    assert "stop it" in response.content.decode()
    assert Recording.objects.filter(id=recording.id).exists()


def test_the_audit_log_filters_by_action_and_actor(operator_client, project):
    AuditEntry.objects.create(
        project=project,
        interface="rest",
        actor_type="api_key",
        actor_name="crm",
        action="room.create",
        target_name="alpha",
    )
    AuditEntry.objects.create(
        project=project,
        interface="dashboard",
        actor_type="user",
        actor_name="olivia",
        action="member.audio_mute",
        target_name="bob",
    )
    page = operator_client.get(reverse("dashboard:audit") + "?action=member.").content.decode()
    assert "member.audio_mute" in page and "room.create" not in page
    rows = operator_client.get(reverse("dashboard:audit") + "?actor=crm", HTTP_HX_REQUEST="true").content.decode()
    assert "room.create" in rows and "member.audio_mute" not in rows and "<html" not in rows


def test_usage_counts_participant_minutes_peak_members_and_recording_minutes(project, room):
    day = dt.date(2030, 3, 10)
    at = lambda h, m=0: dt.datetime(2030, 3, 10, h, m, tzinfo=dt.UTC)  # noqa: E731
    session = RoomSessionFactory(room=room, start_time=at(9))
    MemberFactory(room_session=session, join_time=at(9), leave_time=at(10))  # 60 min
    MemberFactory(room_session=session, join_time=at(9, 30), leave_time=at(9, 45))  # 15 min, overlaps: peak 2
    MemberFactory(room_session=session, join_time=at(10), leave_time=at(10, 30))  # hand-over at 10:00, 30 min
    MemberFactory(room_session=session, join_time=at(23, 50), leave_time=at(23, 50) + dt.timedelta(minutes=20))
    MemberFactory(room_session=session, type="screen", join_time=at(9), leave_time=at(10))  # not a participant
    Recording.objects.create(
        project=project, room_session=session, started_at=at(9), duration=600.0, status="completed"
    )
    rows = {row["day"]: row for row in usage_by_day(project=project, days=2, today=day + dt.timedelta(days=1))}
    assert rows[day] == {"day": day, "participant_minutes": 115.0, "peak_members": 2, "recording_minutes": 10.0}
    assert rows[day + dt.timedelta(days=1)]["participant_minutes"] == 10.0


def test_the_usage_page_charts_the_last_30_days(operator_client, room):
    session = RoomSessionFactory(room=room)
    MemberFactory(room_session=session, join_time=timezone.now() - dt.timedelta(minutes=30), leave_time=timezone.now())
    page = operator_client.get(reverse("dashboard:usage")).content.decode()
    assert 'id="usage-data"' in page and "chart-4.6.1.umd.min.js" in page
    assert '<span class="value">30.0</span>' in page


def test_a_webhook_test_event_is_queued_for_the_endpoint(operator_client, project):
    endpoint = WebhookEndpointFactory(project=project)
    operator_client.post(reverse("dashboard:webhook_action", args=[endpoint.id, "test"]))
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event__name="webhook.test").exists()


def test_deleting_a_webhook_endpoint_removes_it(operator_client, project):
    endpoint = WebhookEndpointFactory(project=project)
    response = operator_client.post(reverse("dashboard:webhook_action", args=[endpoint.id, "delete"]))
    assert response["Location"] == reverse("dashboard:webhooks")
    assert not WebhookEndpoint.objects.filter(id=endpoint.id).exists()


def test_editing_a_webhook_endpoint_changes_its_filter_and_state(operator_client, project):
    endpoint = WebhookEndpointFactory(project=project)
    operator_client.post(
        reverse("dashboard:webhook", args=[endpoint.id]),
        {"url": endpoint.url, "description": "", "event_types": ["member.joined"]},
    )
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["member.joined"] and endpoint.enabled is False
