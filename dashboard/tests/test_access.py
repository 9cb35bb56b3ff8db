"""Sign-in, roles and project scoping: outsiders get 404, moderators get 403 on operator pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.access import SESSION_PROJECT_KEY
from rooms.models import ProjectMembership
from rooms.tests.factories import MemberFactory, RoomSessionFactory, WebhookEndpointFactory, api_key_create

pytestmark = pytest.mark.django_db

OPERATOR_PAGES = [
    "dashboard:room_create",
    "dashboard:api_keys",
    "dashboard:webhooks",
    "dashboard:audit",
    "dashboard:usage",
]
SHARED_PAGES = ["dashboard:rooms", "dashboard:sessions", "dashboard:recordings", "dashboard:layouts"]


def test_it_sends_anonymous_visitors_to_the_sign_in_page(client):
    response = client.get(reverse("dashboard:rooms"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("dashboard:login"))


def test_it_signs_an_operator_in_with_username_and_password(client, operator):
    page = client.get(reverse("dashboard:login"))
    assert b'name="csrfmiddlewaretoken"' in page.content
    response = client.post(reverse("dashboard:login"), {"username": "olivia", "password": "s3cret-Pass-word"})
    assert response.status_code == 302
    assert client.get(reverse("dashboard:rooms")).status_code == 200


def test_it_refuses_a_wrong_password_and_keeps_the_username(client, operator):
    response = client.post(reverse("dashboard:login"), {"username": "olivia", "password": "nope"})
    assert response.status_code == 200
    assert b'value="olivia"' in response.content
    assert client.get(reverse("dashboard:rooms")).status_code == 302


def test_it_shows_404_to_a_signed_in_user_without_any_project(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    assert client.get(reverse("dashboard:rooms")).status_code == 404


@pytest.mark.parametrize("name", OPERATOR_PAGES + SHARED_PAGES)
def test_it_lets_an_operator_open_every_page(operator_client, name):
    assert operator_client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", OPERATOR_PAGES)
def test_it_answers_403_with_a_link_back_to_a_moderator_on_operator_pages(moderator_client, name):
    response = moderator_client.get(reverse(name))
    assert response.status_code == 403
    assert reverse("dashboard:sessions").encode() in response.content


@pytest.mark.parametrize("name", SHARED_PAGES)
def test_it_lets_a_moderator_open_the_moderation_pages(moderator_client, name):
    assert moderator_client.get(reverse(name)).status_code == 200


def test_it_hides_room_settings_links_from_a_moderator(moderator_client, room):
    response = moderator_client.get(reverse("dashboard:rooms"))
    assert b"Daily standup" in response.content
    assert reverse("dashboard:room_edit", args=[room.id]).encode() not in response.content
    assert moderator_client.get(reverse("dashboard:room_edit", args=[room.id])).status_code == 403


def test_it_answers_404_for_every_object_of_a_project_the_user_is_not_in(outsider_client, project, room):
    session = RoomSessionFactory(room=room)
    member = MemberFactory(room_session=session)
    key, _ = api_key_create(project)
    endpoint = WebhookEndpointFactory(project=project)
    urls = [
        reverse("dashboard:room_edit", args=[room.id]),
        reverse("dashboard:room_delete", args=[room.id]),
        reverse("dashboard:room_link", args=[room.id]),
        reverse("dashboard:session", args=[session.id]),
        reverse("dashboard:session_members", args=[session.id]),
        reverse("dashboard:session_preview", args=[session.id]),
        reverse("dashboard:webhook", args=[endpoint.id]),
    ]
    for url in urls:
        assert outsider_client.get(url).status_code == 404, url
    posts = [
        reverse("dashboard:member_action", args=[session.id, member.id, "audio_mute"]),
        reverse("dashboard:session_action", args=[session.id, "lock"]),
        reverse("dashboard:api_key_revoke", args=[key.id]),
        reverse("dashboard:room_join", args=[room.id]),
    ]
    for url in posts:
        assert outsider_client.post(url).status_code == 404, url
    member.refresh_from_db()
    key.refresh_from_db()
    assert member.audio_muted is False and key.revoked_at is None


def test_it_lists_only_the_current_projects_rooms(outsider_client, room):
    response = outsider_client.get(reverse("dashboard:rooms"))
    assert response.status_code == 200
    assert b"standup" not in response.content


def test_it_switches_the_current_project_kept_in_the_session(operator_client, operator, other_project, room):
    ProjectMembership.objects.create(project=other_project, user=operator, role="moderator")
    response = operator_client.post(reverse("dashboard:switch_project"), {"project_id": str(other_project.id)})
    assert response.status_code == 302
    assert operator_client.session[SESSION_PROJECT_KEY] == str(other_project.id)
    assert b"standup" not in operator_client.get(reverse("dashboard:rooms")).content
    # In the other project the user is a moderator: operator pages are refused there.
    assert operator_client.get(reverse("dashboard:api_keys")).status_code == 403


def test_it_refuses_to_switch_to_a_project_the_user_is_not_in(operator_client, other_project, project):
    response = operator_client.post(reverse("dashboard:switch_project"), {"project_id": str(other_project.id)})
    assert response.status_code == 404
    assert operator_client.session.get(SESSION_PROJECT_KEY) in (None, str(project.id))


def test_it_refuses_a_post_without_csrf_token(operator, room):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(reverse("dashboard:room_delete", args=[room.id]))
    assert response.status_code == 403
    assert room.__class__.objects.filter(id=room.id).exists()
