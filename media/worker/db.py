"""The media worker's one bridge to Django: small sync functions wrapped with ``sync_to_async``.

Each starts with ``close_stale_connections()`` (the worker is a long-running process: a connection dropped by the
database or past ``CONN_MAX_AGE`` is replaced before use). Writes run in a transaction; events leave through
``rooms.events.event_emit`` (broadcast after commit). Call them as ``await db.session_take(...)``.

Placement and liveness without an extra table: a worker owns a session when ``RoomSession.media_worker`` holds
the worker's channel name; it heartbeats by touching ``updated_at`` of its live sessions every
``HEARTBEAT_SECONDS``. A session whose owner has not touched it for ``STALE_AFTER_SECONDS`` may be taken over.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from parley.db import close_stale_connections
from rooms.events import event_emit
from rooms.models import Layout, Member, RoomSession

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
STALE_AFTER_SECONDS = 45

MEMBER_MEDIA_FIELDS = (
    "name",
    "type",
    "join_as",
    "media_allowed",
    "audio_muted",
    "video_muted",
    "deaf",
    "visible",
    "input_volume",
    "output_volume",
    "input_sensitivity",
    "position",
)


def _session_config(session: RoomSession) -> dict[str, Any]:
    custom = {
        layout.name: {"slots": layout.slots, "group": layout.group}
        for layout in Layout.objects.filter(project_id=session.project_id)
    }
    return {
        "room_session_id": str(session.id),
        "room_id": str(session.room_id) if session.room_id else None,
        "project_id": str(session.project_id),
        "quality": session.quality,
        "fps": session.fps,
        "layout_name": session.layout_name,
        "hide_video_muted": session.hide_video_muted,
        "enable_room_previews": session.enable_room_previews,
        "audio_only": session.audio_only,
        "custom_layouts": custom,
        "media_worker": session.media_worker,
    }


def _session_take(room_session_id: str, worker_channel: str) -> dict[str, Any] | None:
    """Place the live session on ``worker_channel`` unless another live worker holds it.

    Returns the session config (``_session_config``) with ``media_worker`` = the owner after the attempt
    (``worker_channel`` when taken), or None when the session does not exist or is not live.

    Taking a session that another worker held (and stopped heartbeating) or that none held fails the playbacks
    still live in it with ``worker_lost`` (``playback.ended``): a playback is never re-opened on another worker,
    and the orphan sweep no longer sees them once this worker heartbeats the session.
    """
    from rooms.models import Playback

    close_stale_connections()
    stale_before = timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)
    with transaction.atomic():
        previous = (
            RoomSession.objects.select_for_update(no_key=True)
            .filter(id=room_session_id, status=RoomSession.Status.IN_PROGRESS)
            .values_list("media_worker", flat=True)
            .first()
        )
        taken = (
            RoomSession.objects.filter(id=room_session_id, status=RoomSession.Status.IN_PROGRESS)
            .filter(Q(media_worker="") | Q(media_worker=worker_channel) | Q(updated_at__lt=stale_before))
            .update(media_worker=worker_channel, updated_at=timezone.now())
        )
        session = RoomSession.objects.filter(id=room_session_id, status=RoomSession.Status.IN_PROGRESS).first()
        if session is None:
            return None
        if taken and previous != worker_channel:  # no other worker plays them: a holder would hold the session
            left_live = Playback.objects.filter(
                room_session_id=room_session_id,
                state__in=(Playback.State.OPENING, Playback.State.PLAYING, Playback.State.PAUSED),
            ).values_list("id", flat=True)
            for playback_id in left_live:
                logger.warning(
                    "playback left by a lost worker playback_id=%s room_session_id=%s previous_worker=%s",
                    playback_id,
                    room_session_id,
                    previous,
                )
                _playback_failed(str(playback_id), "worker_lost")
        return _session_config(session)


def _session_release(room_session_id: str, worker_channel: str) -> bool:
    """Clear the placement if this worker still holds it. Returns True when released."""
    close_stale_connections()
    return bool(RoomSession.objects.filter(id=room_session_id, media_worker=worker_channel).update(media_worker=""))


def _session_release_on_own_connection(room_session_id: str, worker_channel: str) -> bool:
    """``_session_release`` on a connection closed afterwards (for a thread outside the shared one)."""
    try:
        return _session_release(room_session_id, worker_channel)
    finally:
        connection.close()


def _sessions_heartbeat(worker_channel: str) -> int:
    """Touch ``updated_at`` of this worker's live sessions. Returns how many."""
    close_stale_connections()
    return RoomSession.objects.filter(media_worker=worker_channel, status=RoomSession.Status.IN_PROGRESS).update(
        updated_at=timezone.now()
    )


def _member_media_state(member_id: str) -> dict[str, Any] | None:
    """The member's media-relevant fields (``MEMBER_MEDIA_FIELDS``), or None if unknown or gone."""
    close_stale_connections()
    row = Member.objects.filter(id=member_id, leave_time__isnull=True).values(*MEMBER_MEDIA_FIELDS).first()
    return dict(row) if row else None


def _layout_changed_emit(config: dict[str, Any], layout_name: str, layers: list[dict]) -> dict:
    """Emit ``layout.changed`` ``{"layout": {name, room_session_id, room_id, layers}}``; returns the body."""
    close_stale_connections()
    with transaction.atomic():
        return event_emit(
            "layout.changed",
            project_id=config["project_id"],
            room_id=config["room_id"],
            room_session_id=config["room_session_id"],
            params={
                "layout": {
                    "name": layout_name,
                    "room_session_id": config["room_session_id"],
                    "room_id": config["room_id"],
                    "layers": layers,
                }
            },
        )


def _member_talking_emit(config: dict[str, Any], member_id: str, talking: bool) -> None:
    """Store ``Member.talking`` and emit ``member.talking`` ``{"member": {id, room_session_id, room_id,
    talking}}`` (ephemeral: broadcast, not persisted)."""
    close_stale_connections()
    with transaction.atomic():
        Member.objects.filter(id=member_id).update(talking=talking)
        event_emit(
            "member.talking",
            project_id=config["project_id"],
            room_id=config["room_id"],
            room_session_id=config["room_session_id"],
            member_id=member_id,
            params={
                "member": {
                    "id": member_id,
                    "room_session_id": config["room_session_id"],
                    "room_id": config["room_id"],
                    "talking": talking,
                }
            },
        )


def _member_stats_save(member_id: str, stats: dict[str, Any]) -> None:
    close_stale_connections()
    Member.objects.filter(id=member_id).update(stats=stats)


def _preview_save(room_session_id: str, path: str) -> None:
    close_stale_connections()
    RoomSession.objects.filter(id=room_session_id).update(preview_path=path)


def _session_egress_autostart(room_session_id: str, worker_channel: str) -> list[tuple[str, dict]]:
    """The egress a session starts with once placed on ``worker_channel``: a recording when
    ``RoomSession.record_on_start`` (and none is live yet) and one session-bound copy of each of the room's
    standing streams (``Stream`` with ``room`` set, ``room_session`` null) not already live with the same URL.

    Rows are created through ``rooms.signalling.egress.egress_start`` (system actor, audited). Returns
    ``[(kind, media.egress command)]`` for the worker to run; a start that fails its checks is logged and left out.
    """
    from rooms.actors import Actor
    from rooms.exceptions import ParleyError
    from rooms.models import Recording, Stream
    from rooms.signalling import egress

    close_stale_connections()
    session = RoomSession.objects.filter(
        id=room_session_id, status=RoomSession.Status.IN_PROGRESS, media_worker=worker_channel
    ).first()
    if session is None:
        return []
    actor = dataclasses.replace(Actor.system(session.project_id), room_session_id=session.id)
    starts: list[tuple[str, dict]] = []
    if (
        session.record_on_start
        and not Recording.objects.filter(
            room_session=session, status__in=(Recording.Status.RECORDING, Recording.Status.PAUSED)
        ).exists()
    ):
        starts.append(("recording", {}))
    if session.room_id:
        live_urls = set(
            Stream.objects.filter(
                room_session=session,
                state__in=(Stream.State.PENDING, Stream.State.STREAMING, Stream.State.RETRYING),
            ).values_list("url", flat=True)
        )
        for standing in Stream.objects.filter(room_id=session.room_id, room_session__isnull=True).order_by(
            "created_at"
        ):
            if standing.url not in live_urls:
                starts.append(("stream", {"url": standing.url}))
    commands: list[tuple[str, dict]] = []
    for kind, params in starts:
        try:
            _channel, _payload, command = egress.egress_start(actor=actor, kind=kind, params=params)
        except ParleyError as exc:
            logger.warning("%s autostart refused room_session_id=%s code=%s", kind, room_session_id, exc.code)
            continue
        commands.append((kind, command))
    return commands


def _egress_started(kind: str, object_id: str) -> dict:
    close_stale_connections()
    from rooms.signalling import egress

    return egress.egress_started(kind=kind, object_id=object_id)


def _egress_start_failed(kind: str, object_id: str, reason: str) -> None:
    close_stale_connections()
    from rooms.signalling import egress

    egress.egress_start_failed(kind=kind, object_id=object_id, reason=reason)


def _playback_emit(playback_id: str, *, ended: bool, **fields: Any) -> dict | None:
    """Write ``fields`` (``state``, ``position_ms``, ``failure_reason``…) to the ``Playback`` row and emit
    ``playback.updated`` or (``ended``: state ``completed`` unless ``fields`` name one, ``ended_at`` now)
    ``playback.ended`` with
    ``{"room_session_id", "room_id", "playback": {…}}``. Returns the event body, or None when the row is gone or
    already ended."""
    from rooms.models import Playback
    from rooms.signalling.egress import playback_payload

    close_stale_connections()
    with transaction.atomic():
        playback = (
            Playback.objects.select_for_update(of=("self",))
            .select_related("room_session")
            .filter(id=playback_id)
            .exclude(state__in=(Playback.State.COMPLETED, Playback.State.FAILED))
            .first()
        )
        if playback is None:
            return None
        for name, value in fields.items():
            setattr(playback, name, value)
        if ended:
            if "state" not in fields:
                playback.state = Playback.State.COMPLETED
            playback.ended_at = timezone.now()
        playback.save()
        session = playback.room_session
        return event_emit(
            "playback.ended" if ended else "playback.updated",
            project_id=session.project_id,
            room_id=session.room_id,
            room_session_id=session.id,
            params={
                "room_session_id": session.id,
                "room_id": session.room_id,
                "playback": playback_payload(playback),
            },
        )


def _playback_ended(playback_id: str, position_ms: int) -> dict | None:
    """End of file: the playback is ``completed``; emits ``playback.ended``."""
    return _playback_emit(playback_id, ended=True, position_ms=position_ms)


def _playback_failed(playback_id: str, reason: str) -> dict | None:
    """The URL did not open or holds no media: the playback is ``failed`` with ``failure_reason`` ``reason``;
    emits ``playback.ended``."""
    return _playback_emit(playback_id, ended=True, state="failed", failure_reason=reason[:500])


def _playback_updated(playback_id: str, position_ms: int) -> dict | None:
    """The worker's position after a seek (the nearest keyframe); emits ``playback.updated``."""
    return _playback_emit(playback_id, ended=False, position_ms=position_ms)


session_take = sync_to_async(_session_take)
session_release = sync_to_async(_session_release)
# On a thread (and database connection) of its own: used when the shared thread may be held by a stalled call.
session_release_unshared = sync_to_async(_session_release_on_own_connection, thread_sensitive=False)
sessions_heartbeat = sync_to_async(_sessions_heartbeat)
member_media_state = sync_to_async(_member_media_state)
layout_changed_emit = sync_to_async(_layout_changed_emit)
member_talking_emit = sync_to_async(_member_talking_emit)
member_stats_save = sync_to_async(_member_stats_save)
preview_save = sync_to_async(_preview_save)
session_egress_autostart = sync_to_async(_session_egress_autostart)
egress_started = sync_to_async(_egress_started)
egress_start_failed = sync_to_async(_egress_start_failed)
playback_ended = sync_to_async(_playback_ended)
playback_updated = sync_to_async(_playback_updated)
playback_failed = sync_to_async(_playback_failed)
