"""The one place events leave from (DESIGN §5, §7).

``event_emit`` records a ``RoomSessionEvent`` (unless the event is ephemeral), and **after commit** broadcasts
the JSON-RPC notification to the room session's channel group, the integrators' project group
(``/ws/events/``) and enqueues webhook deliveries (the durable outbox in ``rooms.webhooks``). Inside an ASGI
server the broadcast is handed to ``rooms.event_sender`` (in commit order, without blocking the ORM thread;
``memberList.updated`` coalesced to one per room session per 50 ms).
``audit_record`` writes the audit trail in the same transaction as the change it describes.

Group names (channel layer): ``room_session_group(id)`` for members of a live session,
``project_group(id)`` for integrators' notification sockets. Group messages are
``{"type": "parley.event", "event": <body>}`` where body is the webhook body of DESIGN §7:
``{"id", "event_type", "project_id", "room_id", "room_session_id", "timestamp", "params"}``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from rooms import event_sender
from rooms.models import AuditEntry, RoomSessionEvent

logger = logging.getLogger(__name__)

# Sent to the room and to integrators' sockets, but not persisted and not sent as webhooks: too frequent.
EPHEMERAL_EVENTS = frozenset({"member.talking", "room.audience_count", "memberList.updated", "member.reaction"})

# Events integrators may subscribe webhooks to (DESIGN §7).
WEBHOOK_EVENTS = (
    "room.started",
    "room.ended",
    "member.joined",
    "member.left",
    "member.updated",
    "layout.changed",
    "recording.started",
    "recording.updated",
    "recording.ended",
    "stream.started",
    "stream.ended",
    "playback.started",
    "playback.ended",
)


def room_session_group(room_session_id) -> str:
    return f"rs.{uuid.UUID(str(room_session_id)).hex}"


def project_group(project_id) -> str:
    return f"project.{uuid.UUID(str(project_id)).hex}"


def member_channel_group(member_id) -> str:
    """A group holding the one socket of a member, for events addressed to it alone (promote/demote)."""
    return f"member.{uuid.UUID(str(member_id)).hex}"


def _jsonable(value: Any) -> Any:
    """Round-trip through Django's JSON encoder so UUIDs and datetimes become strings."""
    import json

    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def event_emit(
    event_type: str,
    *,
    project_id,
    params: dict,
    room_id=None,
    room_session_id=None,
    member_id=None,
    recording_id=None,
    to_member_id=None,
    level: str = "info",
) -> dict:
    """Record and (after commit) broadcast one event. Returns the event body.

    ``params``: the event's payload, shaped as in the seed (``{"member": {...}}``, ``{"layout": {...}}``).
    ``to_member_id``: deliver to that member's socket only instead of the whole room (promote/demote).
    """
    params = _jsonable(params)
    event_id = uuid.uuid4()
    now = timezone.now()
    body = {
        "id": str(event_id),
        "event_type": event_type,
        "project_id": str(project_id),
        "room_id": str(room_id) if room_id else None,
        "room_session_id": str(room_session_id) if room_session_id else None,
        "timestamp": now.timestamp(),
        "params": params,
    }
    persisted = event_type not in EPHEMERAL_EVENTS and to_member_id is None
    if persisted:
        RoomSessionEvent.objects.create(
            id=event_id,
            project_id=project_id,
            room_id=room_id,
            room_session_id=room_session_id,
            recording_id=recording_id,
            member_id=member_id,
            name=event_type,
            level=level,
            payload=params,
            created_at=now,
        )

    def _after_commit() -> None:
        # In a server's sync thread the event is queued, in order, for the event loop (rooms.event_sender);
        # elsewhere it is sent now.
        if not event_sender.submit(body, to_member_id=to_member_id):
            event_broadcast(body, to_member_id=to_member_id)
        if persisted and event_type in WEBHOOK_EVENTS:
            from rooms import webhooks

            webhooks.deliveries_enqueue(event_id=event_id)

    transaction.on_commit(_after_commit)
    return body


def event_broadcast(body: dict, *, to_member_id=None) -> None:
    """Send an event body to its room session group (or one member) and the project group, now.

    Safe to call from sync code only; async callers use ``event_broadcast_async``.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_broadcast)(layer, body, to_member_id)
    except Exception:  # a broken channel layer must not undo a committed change
        logger.exception("event broadcast failed event=%s id=%s", body["event_type"], body["id"])


async def event_broadcast_async(body: dict, *, to_member_id=None) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await _broadcast(layer, body, to_member_id)


async def _broadcast(layer, body: dict, to_member_id) -> None:
    message = {"type": "parley.event", "event": body}
    if to_member_id is not None:
        await layer.group_send(member_channel_group(to_member_id), message)
    elif body.get("room_session_id"):
        await layer.group_send(room_session_group(body["room_session_id"]), message)
    if to_member_id is None:
        await layer.group_send(project_group(body["project_id"]), message)


def audit_record(
    *,
    project_id,
    action: str,
    interface: str,
    actor_type: str,
    actor_id: str = "",
    actor_name: str = "",
    room_session_id=None,
    target_type: str = "",
    target_id: str = "",
    target_name: str = "",
    details: dict | None = None,
) -> AuditEntry:
    """Write an audit entry (who did what to whom, through which interface). Call inside the change's
    transaction. ``details`` must hold no secrets."""
    return AuditEntry.objects.create(
        project_id=project_id,
        room_session_id=room_session_id,
        interface=interface,
        actor_type=actor_type,
        actor_id=str(actor_id or ""),
        actor_name=actor_name[:150],
        action=action,
        target_type=target_type,
        target_id=str(target_id or ""),
        target_name=target_name[:150],
        details=_jsonable(details or {}),
    )
