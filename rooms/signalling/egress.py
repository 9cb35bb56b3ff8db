"""Egress objects seen from the signalling socket: recordings, RTMP streams and playbacks of the member's own
session (DESIGN §5). Sync functions, called through ``database_sync_to_async``.

Starting one needs the session's media worker: without a placed worker ``MediaUnavailable`` (-32010) is raised
before anything is written. The object row is created, the consumer sends ``media.egress`` and waits for the
worker's acknowledgement (``media.answer`` with the same ``request_id``); then ``egress_started`` emits
``recording.started`` / ``playback.started``. A stream stays ``pending`` until the RTMP server accepts it: the
media worker then writes ``streaming`` and emits ``stream.started`` (``media.egress.services.stream_connected``).
No acknowledgement in time → ``egress_start_failed`` marks the row failed and the caller answers -32010.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from media import protocol
from rooms.actors import Actor
from rooms.events import audit_record, event_emit
from rooms.exceptions import InvalidParameter, MediaUnavailable, NotFound
from rooms.models import Playback, Recording, RoomSession, Stream
from rooms.services.members import position_validate
from rooms.validators import validate_stream_url

logger = logging.getLogger(__name__)

KINDS = ("recording", "stream", "playback")
MODELS = {"recording": Recording, "stream": Stream, "playback": Playback}
PERMISSIONS = {"recording": "room.recording", "stream": "room.stream", "playback": "room.playback"}
PLURALS = {"recording": "recordings", "stream": "streams", "playback": "playbacks"}

# per-object action → (kind, permission)
OBJECT_ACTIONS = {
    "recording.pause": ("recording", "room.recording"),
    "recording.resume": ("recording", "room.recording"),
    "recording.stop": ("recording", "room.recording"),
    "stream.stop": ("stream", "room.stream"),
    "playback.pause": ("playback", "room.playback"),
    "playback.resume": ("playback", "room.playback"),
    "playback.set_volume": ("playback", "room.playback"),
    "playback.seek": ("playback", "room.playback_seek"),
    "playback.stop": ("playback", "room.playback"),
}


def recording_payload(r: Recording) -> dict:
    return {
        "id": str(r.id),
        "room_session_id": str(r.room_session_id),
        "state": r.status,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "ended_at": r.finished_at.isoformat() if r.finished_at else None,
        "duration": r.duration,
        "format": r.format,
        "failure_reason": r.failure_reason or None,
    }


def stream_payload(s: Stream) -> dict:
    return {
        "id": str(s.id),
        "room_session_id": str(s.room_session_id) if s.room_session_id else None,
        "url": s.masked_url,
        "state": s.state,
        "started_at": s.started_at.isoformat() if s.started_at else None,
        "ended_at": s.ended_at.isoformat() if s.ended_at else None,
        "restarts": s.restarts,
        "failure_reason": s.failure_reason or None,
    }


def playback_payload(p: Playback) -> dict:
    return {
        "id": str(p.id),
        "room_session_id": str(p.room_session_id),
        "url": p.url,
        "state": p.state,
        "volume": p.volume,
        "position_ms": p.position_ms,
        "layout": p.layout or None,
        "positions": p.positions,
        "started_at": p.started_at.isoformat() if p.started_at else None,
        "ended_at": p.ended_at.isoformat() if p.ended_at else None,
        "failure_reason": p.failure_reason or None,
    }


PAYLOADS = {"recording": recording_payload, "stream": stream_payload, "playback": playback_payload}


def _session(actor: Actor) -> RoomSession:
    session = RoomSession.objects.filter(
        id=actor.room_session_id, project_id=actor.project_id, status=RoomSession.Status.IN_PROGRESS
    ).first()
    if session is None:
        raise NotFound("Room session not found.")
    return session


def _emit(session: RoomSession, event_type: str, kind: str, obj) -> None:
    event_emit(
        event_type,
        project_id=session.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        recording_id=obj.id if kind == "recording" else None,
        params={"room_session_id": session.id, "room_id": session.room_id, kind: PAYLOADS[kind](obj)},
    )


def egress_list(*, actor: Actor, kind: str) -> dict:
    """``{"recordings"|"streams"|"playbacks": [...]}`` of the actor's session. Permission ``room.<kind>``."""
    actor.require(PERMISSIONS[kind])
    session = _session(actor)
    rows = MODELS[kind].objects.filter(room_session=session).order_by("created_at")
    return {PLURALS[kind]: [PAYLOADS[kind](r) for r in rows]}


def _playback_params(params: dict) -> dict:
    url = params.get("url")
    if not isinstance(url, str) or len(url) > 1000 or urlsplit(url).scheme not in ("http", "https", "file"):
        raise InvalidParameter("Must be an http(s) URL of at most 1000 characters.", attribute="url")
    volume = params.get("volume", 0)
    if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not -50 <= volume <= 50:
        raise InvalidParameter("Must be a number from -50 to 50 (dB).", attribute="volume")
    positions = params.get("positions") or {}
    if not isinstance(positions, dict) or len(positions) > 300:
        raise InvalidParameter("Must be an object {member_id: position}.", attribute="positions")
    for position in positions.values():
        position_validate(position, attribute="positions")
    layout = params.get("layout") or ""
    if not isinstance(layout, str) or len(layout) > 100:
        raise InvalidParameter("Must be a layout name.", attribute="layout")
    return {"url": url, "volume": float(volume), "positions": positions, "layout": layout}


@transaction.atomic
def egress_start(*, actor: Actor, kind: str, params: dict) -> tuple[str, dict, dict]:
    """Check, validate and create a starting egress object. Returns ``(worker_channel, payload, command)``
    where ``command`` is the ``media.egress`` message to send. Raises ``PermissionMissing``,
    ``InvalidParameter``, ``MediaUnavailable`` (no worker placed for the session)."""
    actor.require(PERMISSIONS[kind])
    session = _session(actor)
    extra: dict = {}
    if kind == "stream":
        url = validate_stream_url(params.get("url"))
        extra = {"url": url}
    elif kind == "playback":
        extra = _playback_params(params)
    if not session.media_worker:
        raise MediaUnavailable()
    if kind == "recording":
        obj = Recording.objects.create(project_id=session.project_id, room_session=session)
    elif kind == "stream":
        # ``pending`` and no ``started_at`` until the RTMP server accepts the output.
        obj = Stream.objects.create(project_id=session.project_id, room_session=session, url=extra["url"])
    else:
        obj = Playback.objects.create(project_id=session.project_id, room_session=session, **extra)
    audit_record(
        project_id=session.project_id,
        room_session_id=session.id,
        action=f"{kind}.start",
        target_type=kind,
        target_id=str(obj.id),
        **actor.audit_fields(),
    )
    command = {
        "type": protocol.EGRESS,
        "room_session_id": str(session.id),
        "action": f"{kind}.start",
        "object_id": str(obj.id),
        **extra,
    }
    return session.media_worker, PAYLOADS[kind](obj), command


@transaction.atomic
def egress_started(*, kind: str, object_id) -> dict:
    """The worker acknowledged the start: emit ``recording.started`` / ``playback.started``; return the payload.
    A stream's ``stream.started`` waits for the RTMP server's acceptance (the media worker emits it), so its
    payload is returned as it stands (``pending``, or already ``streaming``)."""
    obj = MODELS[kind].objects.select_related("room_session").get(id=object_id)
    if kind != "stream":
        _emit(obj.room_session, f"{kind}.started", kind, obj)
    return PAYLOADS[kind](obj)


def egress_start_failed(*, kind: str, object_id, reason: str) -> None:
    """No worker acknowledged the start: the object is failed (and never emitted as started)."""
    model = MODELS[kind]
    now = timezone.now()
    if kind == "recording":
        model.objects.filter(id=object_id).update(status="failed", failure_reason=reason, finished_at=now)
    elif kind == "stream":
        model.objects.filter(id=object_id).update(state="failed", failure_reason=reason, ended_at=now)
    else:
        model.objects.filter(id=object_id).update(state="failed", failure_reason=reason, ended_at=now)


@transaction.atomic
def egress_object_action(*, actor: Actor, action: str, params: dict) -> tuple[str, dict, dict]:
    """A per-object action (``recording.pause|resume|stop``, ``stream.stop``, ``playback.pause|resume|
    set_volume|seek|stop``) on an object of the actor's session, by ``<kind>_id``.

    Writes the new state, emits ``<kind>.updated`` or ``<kind>.ended``, and returns ``(worker_channel or "",
    payload, command)``; the caller sends ``command`` (``media.egress``) when a worker is placed.
    ``recording.stop`` of a recording no worker carries any more — none placed, or its progress heartbeat
    (``updated_at``) older than ``PARLEY_RECORDING_ORPHAN_AFTER_SECONDS`` — returns no channel and, after commit,
    hands the recording to finalisation (``media.tasks.recording_finalize``), which keeps what is on disk
    (``completed`` with the partial duration) or fails it with a reason (``no_media``).
    Raises ``PermissionMissing``, ``InvalidParameter``, ``NotFound`` (another session's object too)."""
    kind, permission = OBJECT_ACTIONS[action]
    actor.require(permission)
    session = _session(actor)
    key = f"{kind}_id"
    from rooms.signalling.schemas import uuid_param

    object_id = uuid_param(params, key)
    obj = MODELS[kind].objects.select_for_update(no_key=True).filter(id=object_id, room_session=session).first()
    if obj is None:
        raise NotFound(f"{kind.title()} not found.", attribute=key)
    verb = action.split(".", 1)[1]
    extra: dict = {}
    now = timezone.now()
    ended = orphaned = False
    if kind == "recording":
        if obj.status in (Recording.Status.PROCESSING, Recording.Status.COMPLETED, Recording.Status.FAILED):
            raise NotFound("Recording is not live.", attribute=key)
        if verb == "pause":
            obj.status = Recording.Status.PAUSED
        elif verb == "resume":
            obj.status = Recording.Status.RECORDING
        else:
            orphaned = recording_is_orphaned(session, obj, now=now)
            obj.status = Recording.Status.PROCESSING
            obj.finished_at = now
    elif kind == "stream":
        if obj.state in (Stream.State.COMPLETED, Stream.State.FAILED):
            raise NotFound("Stream is not live.", attribute=key)
        obj.state = Stream.State.COMPLETED
        obj.ended_at = now
        ended = True
    else:
        if obj.state in (Playback.State.COMPLETED, Playback.State.FAILED):
            raise NotFound("Playback is not live.", attribute=key)
        if verb == "pause":
            obj.state = Playback.State.PAUSED
        elif verb == "resume" and obj.state != Playback.State.OPENING:
            obj.state = Playback.State.PLAYING
        elif verb == "set_volume":
            volume = params.get("volume")
            if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not -50 <= volume <= 50:
                raise InvalidParameter("Must be a number from -50 to 50 (dB).", attribute="volume")
            obj.volume = float(volume)
            extra = {"volume": obj.volume}
        elif verb == "seek":
            position_ms = params.get("position_ms")
            if isinstance(position_ms, bool) or not isinstance(position_ms, int) or position_ms < 0:
                raise InvalidParameter("Must be a whole number of milliseconds ≥ 0.", attribute="position_ms")
            obj.position_ms = position_ms
            extra = {"position_ms": position_ms}
        else:
            obj.state = Playback.State.COMPLETED
            obj.ended_at = now
            ended = True
    obj.save()
    audit_record(
        project_id=session.project_id,
        room_session_id=session.id,
        action=action,
        target_type=kind,
        target_id=str(obj.id),
        details=extra,
        **actor.audit_fields(),
    )
    _emit(session, f"{kind}.{'ended' if ended else 'updated'}", kind, obj)
    command = {
        "type": protocol.EGRESS,
        "room_session_id": str(session.id),
        "action": action,
        "object_id": str(obj.id),
        **extra,
    }
    if orphaned:
        logger.warning("recording stopped without a worker recording_id=%s: finalising what is on disk", obj.id)
        transaction.on_commit(functools.partial(_recording_finalize_enqueue, str(obj.id)))
        return "", PAYLOADS[kind](obj), command
    return session.media_worker, PAYLOADS[kind](obj), command


def recording_is_orphaned(session: RoomSession, recording: Recording, *, now) -> bool:
    """True when no media worker carries ``recording`` any more: the session has no worker placed, or the
    worker's progress heartbeat on the row (``updated_at``, every few seconds while it records or pauses) is
    older than ``PARLEY_RECORDING_ORPHAN_AFTER_SECONDS``."""
    if not session.media_worker:
        return True
    stale_after = timedelta(seconds=settings.PARLEY_RECORDING_ORPHAN_AFTER_SECONDS)
    return recording.updated_at is not None and recording.updated_at < now - stale_after


def _recording_finalize_enqueue(recording_id: str) -> None:
    from media.tasks import recording_finalize

    recording_finalize.delay(recording_id)
