"""The Origin rule of the dashboard's cookie-authenticated socket (``parley.origins.SessionOriginValidator``):
only Parley's own origins may open it, so a page of another site cannot ride a signed-in operator's cookie."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from dashboard.tests.conftest import session_cookie
from parley.asgi import application
from rooms.events import event_broadcast_async
from rooms.tests.factories import RoomSessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC_URL = "https://parley.example.org"


@pytest.fixture(autouse=True)
def _origin_settings(settings, in_memory_channel_layer):
    settings.PARLEY_PUBLIC_URL = PUBLIC_URL
    settings.ALLOWED_HOSTS = ["parley.example.org", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.fixture
async def live_and_cookie(moderator, project):
    live = await database_sync_to_async(RoomSessionFactory)(room__project=project)
    return live, await database_sync_to_async(session_cookie)(moderator)


async def _open(room_session_id, cookie: bytes, origin: bytes | None):
    headers = [(b"host", b"parley.example.org"), (b"cookie", cookie)]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(application, f"/ws/dashboard/sessions/{room_session_id}/", headers=headers)
    connected, _ = await communicator.connect(timeout=20)
    return communicator, connected


def _event(session) -> dict:
    return {
        "id": "e1",
        "event_type": "member.updated",
        "project_id": str(session.project_id),
        "room_id": str(session.room_id),
        "room_session_id": str(session.id),
        "timestamp": 1.0,
        "params": {"member": {"id": "m1", "audio_muted": True}},
    }


async def test_it_accepts_the_public_urls_origin_and_delivers_events(live_and_cookie):
    live, cookie = live_and_cookie
    communicator, connected = await _open(live.id, cookie, PUBLIC_URL.encode())
    assert connected
    await event_broadcast_async(_event(live))
    message = await communicator.receive_json_from(timeout=20)
    assert message["event_type"] == "member.updated"
    await communicator.disconnect()


async def test_it_refuses_a_foreign_origin_even_with_a_valid_session_cookie(live_and_cookie, caplog):
    live, cookie = live_and_cookie
    communicator, connected = await _open(live.id, cookie, b"https://evil.example.net")
    assert not connected
    assert "https://evil.example.net" in caplog.text
    await communicator.wait()


async def test_it_refuses_a_lookalike_host_and_another_scheme_or_port_of_the_public_url(live_and_cookie):
    live, cookie = live_and_cookie
    for origin in (b"https://parley.example.org.evil.net", b"http://evil.net:443", b"null"):
        _, connected = await _open(live.id, cookie, origin)
        assert not connected, origin


async def test_it_refuses_a_handshake_without_an_origin(live_and_cookie):
    live, cookie = live_and_cookie
    _, connected = await _open(live.id, cookie, None)
    assert not connected


async def test_an_allowed_host_on_another_port_is_parleys_own_origin(live_and_cookie):
    """As Django's ALLOWED_HOSTS and Channels' AllowedHostsOriginValidator: a listed host on any port (a dev
    server on :8000, Daphne behind a proxy)."""
    live, cookie = live_and_cookie
    communicator, connected = await _open(live.id, cookie, b"http://localhost:8765")
    assert connected
    await communicator.disconnect()


async def test_csrf_trusted_origins_open_it_with_djangos_subdomain_wildcard(live_and_cookie, settings):
    live, cookie = live_and_cookie
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.desk.example.com"]
    communicator, connected = await _open(live.id, cookie, b"https://ops.desk.example.com")
    assert connected
    await communicator.disconnect()
    _, connected = await _open(live.id, cookie, b"http://ops.desk.example.com")
    assert not connected, "the scheme is part of a trusted origin"


async def test_a_wildcard_allowed_host_does_not_open_it_to_every_origin(live_and_cookie, settings):
    live, cookie = live_and_cookie
    settings.ALLOWED_HOSTS = ["*"]
    _, connected = await _open(live.id, cookie, b"https://evil.example.net")
    assert not connected
    communicator, connected = await _open(live.id, cookie, PUBLIC_URL.encode())
    assert connected
    await communicator.disconnect()
