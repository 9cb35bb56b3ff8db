"""Personas for the dashboard tests: an operator and a moderator of one project, an outsider who belongs to
another project only, and signed-in clients for each."""

from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client

from rooms.models import ProjectMembership
from rooms.tests.factories import ProjectFactory, RoomFactory

PASSWORD = "s3cret-Pass-word"


def user_in(project, username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if project is not None:
        ProjectMembership.objects.create(project=project, user=user, role=role)
    return user


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Password hashing at production cost would dominate these tests' run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def project(db):
    return ProjectFactory(name="acme")


@pytest.fixture
def other_project(db):
    return ProjectFactory(name="globex")


@pytest.fixture
def operator(project):
    return user_in(project, "olivia", ProjectMembership.Role.OPERATOR)


@pytest.fixture
def moderator(project):
    return user_in(project, "mo", ProjectMembership.Role.MODERATOR)


@pytest.fixture
def outsider(other_project):
    return user_in(other_project, "otto", ProjectMembership.Role.OPERATOR)


def session_cookie(user) -> bytes:
    """A ``Cookie`` header value carrying a signed-in Django session of ``user`` (for WebSocket handshakes)."""
    client = Client()
    client.force_login(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.fixture
def in_memory_channel_layer(settings):
    """A fresh in-memory channel layer for the test, also when ``REDIS_URL`` configures Redis."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(operator):
    return _client_for(operator)


@pytest.fixture
def moderator_client(moderator):
    return _client_for(moderator)


@pytest.fixture
def outsider_client(outsider):
    return _client_for(outsider)


@pytest.fixture
def room(project):
    return RoomFactory(project=project, name="standup", display_name="Daily standup")
