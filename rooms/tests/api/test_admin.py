"""The Django admin lists every rooms model and never shows secrets."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model

from rooms.models import Stream
from rooms.tests.factories import RoomFactory


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    client.force_login(user)
    return client


def test_every_rooms_model_has_a_working_changelist(staff_client, owner):
    from django.apps import apps

    for model in apps.get_app_config("rooms").get_models():
        assert model in admin.site._registry, model
        url = f"/admin/rooms/{model._meta.model_name}/"
        assert staff_client.get(url).status_code == 200, url


def test_secrets_never_show_in_the_admin(staff_client, owner):
    room = RoomFactory(project=owner.project)
    stream = Stream.objects.create(project=owner.project, room=room, url="rtmp://h/app/STREAMKEY123")
    pages = [
        f"/admin/rooms/apikey/{owner.key.id}/change/",
        f"/admin/rooms/project/{owner.project.id}/change/",
        f"/admin/rooms/stream/{stream.id}/change/",
        "/admin/rooms/stream/",
    ]
    for url in pages:
        html = staff_client.get(url).content.decode()
        assert owner.key.key_hash not in html and owner.project.token_secret not in html, url
        assert "STREAMKEY123" not in html, url
