"""Recording and stream control from sync callers (REST views, dashboard): send ``media.egress`` to the
session's media worker and wait for its acknowledgement.

The row-level work (checks, validation, the object row, audit and events) is ``rooms.signalling.egress``; this
module adds the round trip to the worker (``media/protocol.py``): the command goes out on a fresh reply channel
and the caller blocks until the worker answers ``media.answer`` with the same ``request_id`` (or ``media.error``),
at most ``timeout_seconds`` (default ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``).

Errors: ``MediaUnavailable`` (503 / -32010) when no worker is placed for the session, none answers in time or the
worker refuses; ``Conflict`` (409) when a second live recording of a session is started; ``NotFound``,
``InvalidParameter``, ``PermissionMissing`` from the row-level checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from media import protocol
from rooms.actors import Actor
from rooms.exceptions import Conflict, MediaUnavailable, NotFound
from rooms.models import Recording, RoomSession

logger = logging.getLogger(__name__)

LIVE_RECORDING_STATUSES = (Recording.Status.RECORDING, Recording.Status.PAUSED)
# Object actions the caller waits for: the worker must have applied them before the answer is given.
ACKNOWLEDGED_ACTIONS = ("recording.pause", "recording.resume", "recording.stop", "stream.stop")


def answer_timeout_seconds() -> float:
    """How long a sync caller waits for the worker (``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``), in seconds."""
    from rooms.signalling.consumers import answer_timeout_seconds as configured

    return configured()


def _in_session(actor: Actor, room_session_id) -> Actor:
    """``actor`` scoped to one session, as ``rooms.signalling.egress`` expects."""
    return dataclasses.replace(actor, room_session_id=uuid.UUID(str(room_session_id)))


async def _request(channel: str, command: dict, timeout_seconds: float) -> dict:
    layer = get_channel_layer()
    # The default prefix, shared with the consumers and an embedded worker: see ``media.worker.worker``.
    reply_channel = await layer.new_channel()
    request_id = uuid.uuid4().hex
    try:
        await layer.send(channel, {**command, "reply_channel": reply_channel, "request_id": request_id})
        async with asyncio.timeout(timeout_seconds):
            while True:
                reply = await layer.receive(reply_channel)
                if str(reply.get("request_id")) == request_id:
                    break
    except (TimeoutError, ChannelFull) as exc:
        raise MediaUnavailable() from exc
    except RedisError as exc:  # the Redis channel layer is unreachable: no worker can be asked
        logger.warning("media request failed: channel layer error %s: %s", type(exc).__name__, exc)
        raise MediaUnavailable() from exc
    if reply.get("type") == protocol.ERROR:
        refused = MediaUnavailable(str(reply.get("message") or "The media worker refused the request.")[:300])
        refused.reply = reply  # the worker's ``media.error`` (``code``), for callers that map refusals
        raise refused
    return reply


def media_request(channel: str, command: dict, *, timeout_seconds: float) -> dict:
    """Send ``command`` (a ``media.protocol`` message without ``reply_channel``/``request_id``) to ``channel``
    and return the worker's ``media.answer``. Blocks at most ``timeout_seconds``. Raises ``MediaUnavailable``
    (503 / -32010) on timeout, a full channel, an unreachable Redis channel layer or a ``media.error`` (its
    message is kept; the error itself is the exception's ``reply``)."""
    return async_to_sync(_request)(channel, command, timeout_seconds)


def recording_check_none_live(room_session_id) -> None:
    """409 when the session already has a live recording (one per session). Locks the session row (NO KEY UPDATE,
    as ``playbacks._live_session``: concurrent inserts referencing the session commit without waiting for it)."""
    RoomSession.objects.select_for_update(no_key=True).filter(id=room_session_id).first()
    if Recording.objects.filter(room_session_id=room_session_id, status__in=LIVE_RECORDING_STATUSES).exists():
        raise Conflict("The room session is already being recorded.")


def egress_start(
    *, actor: Actor, room_session_id, kind: str, params: dict, timeout_seconds: float | None = None
) -> dict:
    """Start a ``recording`` or ``stream`` (``params``: ``{"url": "rtmp(s)://…"}``) of the live session and
    return its payload (``rooms.signalling.egress.recording_payload`` / ``stream_payload``) once the media worker
    acknowledged; ``recording.started`` is emitted then, ``stream.started`` once the RTMP server accepted the
    stream (``pending`` until then). Without an acknowledgement the row is marked failed (``media_unavailable``)
    and ``MediaUnavailable`` is raised."""
    from rooms.signalling import egress

    scoped = _in_session(actor, room_session_id)
    with transaction.atomic():
        if kind == "recording":
            recording_check_none_live(room_session_id)
        channel, payload, command = egress.egress_start(actor=scoped, kind=kind, params=params)
    if timeout_seconds is None:
        timeout_seconds = answer_timeout_seconds()
    try:
        media_request(channel, command, timeout_seconds=timeout_seconds)
    except MediaUnavailable:
        egress.egress_start_failed(kind=kind, object_id=payload["id"], reason="media_unavailable")
        logger.warning("%s start: no media worker answer room_session_id=%s", kind, room_session_id)
        raise
    return egress.egress_started(kind=kind, object_id=payload["id"])


def egress_action(
    *,
    actor: Actor,
    room_session_id,
    action: str,
    object_id,
    params: dict | None = None,
    timeout_seconds: float | None = None,
) -> dict:
    """Run ``action`` (``recording.pause|resume|stop``, ``stream.stop``) on a live object of the session and
    return its payload. The new state is written and ``<kind>.updated`` / ``<kind>.ended`` emitted
    (``rooms.signalling.egress.egress_object_action``); the command then goes to the placed worker, and the
    caller waits for its acknowledgement.

    A ``*.stop`` always ends the object: with no worker carrying it (none placed, or a recording whose progress
    heartbeat is stale) the final state is written and a recording is finalised from what is on disk (``completed``
    with the partial duration, or ``failed`` ``no_media``); when the placed worker does not answer the stop in
    time, the stop stands (logged) and the orphan sweep (``media.tasks.recordings_recover_orphans``) finalises a
    recording no worker closes. Raises ``MediaUnavailable`` when a pause/resume finds no worker placed (nothing
    is written) or no worker answers it, ``NotFound`` when the object is not live in the session."""
    from rooms.signalling import egress

    kind = action.split(".", 1)[0]
    session = RoomSession.objects.filter(id=room_session_id, status=RoomSession.Status.IN_PROGRESS).first()
    if session is None:
        raise NotFound("Room session not found.")
    if not session.media_worker and not action.endswith(".stop"):
        raise MediaUnavailable()
    channel, payload, command = egress.egress_object_action(
        actor=_in_session(actor, room_session_id),
        action=action,
        params={**(params or {}), f"{kind}_id": str(object_id)},
    )
    if not channel:
        return payload
    if action in ACKNOWLEDGED_ACTIONS:
        try:
            media_request(
                channel,
                command,
                timeout_seconds=answer_timeout_seconds() if timeout_seconds is None else timeout_seconds,
            )
        except MediaUnavailable:
            if not action.endswith(".stop"):
                raise
            logger.warning(
                "%s: no media worker answer, the stop stands room_session_id=%s object_id=%s",
                action,
                room_session_id,
                object_id,
            )
    else:
        try:
            async_to_sync(get_channel_layer().send)(channel, command)
        except (ChannelFull, RedisError) as exc:
            raise MediaUnavailable() from exc
    return payload
