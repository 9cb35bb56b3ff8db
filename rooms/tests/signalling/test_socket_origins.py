"""The Origin rule of the token-authenticated sockets (``parley.origins.TokenOriginValidator``): any origin by
default; ``PARLEY_WS_ALLOWED_ORIGINS`` narrows browsers to the listed origins and Parley's own, while clients that
send no Origin (servers, bots) still connect."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from parley.asgi import application
from rooms.models import Member
from rooms.tests.factories import api_key_create
from rooms.tests.signalling.conftest import Client, mint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.PARLEY_PUBLIC_URL = "https://parley.example.org"
    settings.ALLOWED_HOSTS = ["parley.example.org"]
    settings.CSRF_TRUSTED_ORIGINS = []


async def _video(project, origin: bytes | None) -> tuple[WebsocketCommunicator, bool]:
    token = await database_sync_to_async(mint)(project, "standup", user_name="Ada")
    headers = [(b"origin", origin)] if origin is not None else []
    communicator = WebsocketCommunicator(application, f"/ws/video/?token={token}", headers=headers)
    connected, _ = await communicator.connect(timeout=20)
    return communicator, connected


async def _events(project, origin: bytes | None) -> tuple[WebsocketCommunicator, bool]:
    _, key = await database_sync_to_async(api_key_create)(project)
    headers = [(b"origin", origin)] if origin is not None else []
    communicator = WebsocketCommunicator(application, f"/ws/events/?api_key={key}", headers=headers)
    connected, _ = await communicator.connect(timeout=20)
    return communicator, connected


async def test_by_default_an_integrators_origin_joins_a_room(project, room):
    communicator, connected = await _video(project, b"https://app.integrator.example")
    assert connected
    client = Client(communicator)
    result = await client.join()
    assert result["member_id"]
    await client.close()


async def test_by_default_any_origin_opens_the_events_socket(project):
    communicator, connected = await _events(project, b"https://ops.integrator.example")
    assert connected
    await communicator.disconnect()


async def test_a_configured_list_admits_its_origins_and_parleys_own(project, room, settings):
    settings.PARLEY_WS_ALLOWED_ORIGINS = ["https://app.integrator.example", "https://*.partner.example"]
    for origin in (b"https://app.integrator.example", b"https://meet.partner.example", b"https://parley.example.org"):
        communicator, connected = await _video(project, origin)
        assert connected, origin
        await communicator.disconnect()


async def test_a_configured_list_refuses_other_browsers_before_anything_happens(project, room, settings):
    settings.PARLEY_WS_ALLOWED_ORIGINS = ["https://app.integrator.example"]
    for opener in (_video, _events):
        for origin in (b"https://evil.example.net", b"http://app.integrator.example", b"null"):
            _, connected = await opener(project, origin)
            assert not connected, (opener.__name__, origin)
    assert not await database_sync_to_async(Member.objects.exists)()


async def test_a_configured_list_still_admits_clients_without_an_origin(project, room, settings):
    settings.PARLEY_WS_ALLOWED_ORIGINS = ["https://app.integrator.example"]
    communicator, connected = await _video(project, None)
    assert connected
    client = Client(communicator)
    await client.join()
    await client.close()
    communicator, connected = await _events(project, None)
    assert connected
    await communicator.disconnect()
