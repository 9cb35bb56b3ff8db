"""``event_emit``: persisted in the caller's transaction, broadcast and sent to the outbox only after commit."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms.events import event_emit, member_channel_group, project_group, room_session_group
from rooms.models import RoomSessionEvent, WebhookDelivery
from rooms.tests import test_webhooks
from rooms.tests.factories import RoomSessionFactory, WebhookEndpointFactory

RECEIVE_TIMEOUT_S = 2.0

# Fixtures shared with the outbox tests: the loopback HTTP receiver and in-process Celery.
receiver = test_webhooks.receiver
celery_in_process = test_webhooks.celery_in_process


class Boom(Exception):
    pass


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


def listen(layer, *groups: str) -> str:
    """A new channel added to ``groups``; returns its name."""
    channel = async_to_sync(layer.new_channel)()
    for group in groups:
        async_to_sync(layer.group_add)(group, channel)
    return channel


def receive(layer, channel: str, timeout_s: float = RECEIVE_TIMEOUT_S) -> dict | None:
    """The next message on ``channel``, or None after ``timeout_s``."""

    async def _receive():
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout_s)
        except TimeoutError:
            return None

    return async_to_sync(_receive)()


def _emit(session, event_type="member.joined", **kw) -> dict:
    return event_emit(
        event_type,
        project_id=session.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        params=kw.pop("params", {"member": {"id": str(uuid.uuid4()), "name": "Grace"}}),
        **kw,
    )


def test_the_event_is_persisted_inside_the_callers_transaction(db, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            body = _emit(session, member_id=uuid.uuid4())
            event = RoomSessionEvent.objects.get(id=body["id"])  # visible before commit, in the same transaction
            assert callbacks == []  # nothing leaves before commit
    assert len(callbacks) == 1
    assert event.name == "member.joined" and event.room_session_id == session.id
    assert event.payload == body["params"] and event.created_at.timestamp() == body["timestamp"]
    assert body["project_id"] == str(session.project_id) and body["room_id"] == str(session.room_id)


def test_nothing_is_persisted_broadcast_or_enqueued_when_the_transaction_rolls_back(
    db, in_memory_layer, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)
    channel = listen(in_memory_layer, room_session_group(session.id), project_group(session.project_id))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom):
            with transaction.atomic():
                body = _emit(session)
                raise Boom

    assert callbacks == []
    assert not RoomSessionEvent.objects.filter(id=body["id"]).exists()
    assert not WebhookDelivery.objects.exists()
    assert receive(in_memory_layer, channel, timeout_s=0.2) is None
    assert receiver.requests == []


def test_the_room_and_project_groups_receive_the_notification_after_commit(
    db, in_memory_layer, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)
    room_channel = listen(in_memory_layer, room_session_group(session.id))
    project_channel = listen(in_memory_layer, project_group(session.project_id))
    probe = listen(in_memory_layer, room_session_group(session.id))

    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            body = _emit(session)
    assert receive(in_memory_layer, probe, timeout_s=0.1) is None  # the after-commit work has not run yet
    for callback in callbacks:
        callback()

    assert receive(in_memory_layer, room_channel) == {"type": "parley.event", "event": body}
    assert receive(in_memory_layer, project_channel) == {"type": "parley.event", "event": body}
    assert [r.json() for r in receiver.requests] == [body]


def test_an_event_for_one_member_reaches_only_that_member_and_is_not_persisted(
    db, in_memory_layer, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)
    member_id = uuid.uuid4()
    member_channel = listen(in_memory_layer, member_channel_group(member_id))
    room_channel = listen(in_memory_layer, room_session_group(session.id), project_group(session.project_id))

    with django_capture_on_commit_callbacks(execute=True):
        body = _emit(session, "member.promoted", to_member_id=member_id)

    assert receive(in_memory_layer, member_channel) == {"type": "parley.event", "event": body}
    assert receive(in_memory_layer, room_channel, timeout_s=0.2) is None
    assert not RoomSessionEvent.objects.filter(id=body["id"]).exists()
    assert receiver.requests == []


def test_ephemeral_events_are_broadcast_but_neither_persisted_nor_sent_as_webhooks(
    db, in_memory_layer, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)
    channel = listen(in_memory_layer, room_session_group(session.id))

    with django_capture_on_commit_callbacks(execute=True):
        body = _emit(session, "member.talking", params={"member": {"id": "m1", "talking": True}})

    assert receive(in_memory_layer, channel)["event"] == body
    assert not RoomSessionEvent.objects.filter(id=body["id"]).exists()
    assert receiver.requests == []


def test_the_room_group_receives_the_notification_through_redis(
    db, redis_channel_layer, receiver, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)
    room_channel = listen(layer, room_session_group(session.id))
    project_channel = listen(layer, project_group(session.project_id))

    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            body = _emit(session, "layout.changed", params={"layout": {"name": "2x2", "layers": []}})
    assert len(callbacks) == 1 and receiver.requests == []  # held until commit
    callbacks[0]()

    async def _receive_both():
        # One event loop for both reads: channels_redis keeps per-loop receive state.
        return [await asyncio.wait_for(layer.receive(c), RECEIVE_TIMEOUT_S) for c in (room_channel, project_channel)]

    assert async_to_sync(_receive_both)() == [{"type": "parley.event", "event": body}] * 2
    assert [r.json() for r in receiver.requests] == [body]
    async_to_sync(layer.flush)()
