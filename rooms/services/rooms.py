"""Writes for rooms and their standing outputs (DESIGN §2, §4; reference §1.2, §1.7).

Every function is keyword-only, runs in one transaction, records an audit entry for ``actor`` and raises
``rooms.exceptions`` errors (``InvalidParameter`` 422, ``Conflict`` 409) that every transport translates.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q

from rooms.actors import Actor
from rooms.events import audit_record
from rooms.exceptions import Conflict, InvalidParameter, NotFound
from rooms.models import Layout, Project, Recording, Room, RoomSession, Stream
from rooms.validators import validate_meta, validate_stream_url

logger = logging.getLogger(__name__)

# Fields a caller may set on a room (create and update); ``name`` only on create.
ROOM_FIELDS = (
    "display_name",
    "description",
    "max_members",
    "quality",
    "fps",
    "layout",
    "record_on_start",
    "enable_room_previews",
    "locked",
    "prioritize_handraise",
    "join_from",
    "join_until",
    "remove_at",
    "remove_after_seconds_elapsed",
    "audio_only",
    "stage_only",
    "meta",
    "sync_audio_video",
    "tone_on_entry_and_exit",
    "room_join_video_off",
    "user_join_video_off",
)


def _check_room(project: Project, room: Room) -> None:
    """Cross-field rules: a known layout, a join window that is not inverted, meta ≤ 2000 characters."""
    if not Layout.objects.filter(Q(project=project) | Q(project__isnull=True), name=room.layout).exists():
        raise InvalidParameter(f"Unknown layout '{room.layout}'.", attribute="layout")
    if room.join_from and room.join_until and room.join_until <= room.join_from:
        raise InvalidParameter("join_until must be after join_from.", attribute="join_until")
    validate_meta(room.meta, attribute="meta")


def _audit(actor: Actor, action: str, *, target_type: str, target_id, target_name: str = "", details=None) -> None:
    audit_record(
        project_id=actor.project_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_name=target_name,
        details=details,
        **actor.audit_fields(),
    )


@transaction.atomic
def room_create(*, actor: Actor, project: Project, name: str, **fields) -> Room:
    """Create the room ``name`` in ``project`` with ``fields`` (see ``ROOM_FIELDS``; SignalWire defaults
    otherwise, ``display_name`` = name). Raises ``Conflict`` when the name is taken in this project."""
    unknown = set(fields) - set(ROOM_FIELDS)
    if unknown:
        raise InvalidParameter(f"Unknown room fields: {', '.join(sorted(unknown))}.")
    room = Room(project=project, name=name, **fields)
    if not room.display_name:
        room.display_name = name
    _check_room(project, room)
    if Room.objects.filter(project=project, name=name).exists():
        raise Conflict(f"A room named '{name}' already exists.", attribute="name")
    try:
        with transaction.atomic():
            room.save()
    except IntegrityError as e:  # a concurrent create of the same name
        raise Conflict(f"A room named '{name}' already exists.", attribute="name") from e
    _audit(actor, "room.create", target_type="room", target_id=room.id, target_name=room.name)
    logger.info("room created project_id=%s room_id=%s", project.id, room.id)
    return room


@transaction.atomic
def room_update(*, actor: Actor, room: Room, **fields) -> Room:
    """Update ``room`` with ``fields`` (a subset of ``ROOM_FIELDS``). The live session, if any, keeps its own
    settings; the new ones apply from the next session."""
    unknown = set(fields) - set(ROOM_FIELDS)
    if unknown:
        raise InvalidParameter(f"Unknown room fields: {', '.join(sorted(unknown))}.")
    for key, value in fields.items():
        setattr(room, key, value)
    if "display_name" in fields and not room.display_name:
        room.display_name = room.name
    _check_room(room.project, room)
    room.save()
    _audit(
        actor,
        "room.update",
        target_type="room",
        target_id=room.id,
        target_name=room.name,
        details={"fields": sorted(fields)},
    )
    return room


@transaction.atomic
def room_delete(*, actor: Actor, room: Room) -> None:
    """Delete ``room`` and its standing outputs. Past sessions stay (``room_id`` becomes null).
    Raises ``Conflict`` while a session of the room is in progress."""
    if RoomSession.objects.filter(room=room, status=RoomSession.Status.IN_PROGRESS).exists():
        raise Conflict("The room has a session in progress; end it before deleting the room.")
    _audit(actor, "room.delete", target_type="room", target_id=room.id, target_name=room.name)
    logger.info("room deleted project_id=%s room_id=%s", room.project_id, room.id)
    room.delete()


@transaction.atomic
def room_stream_create(*, actor: Actor, room: Room, url: str) -> Stream:
    """Add a standing RTMP/RTMPS output to ``room`` (started with each session). ``url``: ``rtmp://`` or
    ``rtmps://`` with a host, else ``InvalidParameter``."""
    validate_stream_url(url)
    stream = Stream.objects.create(project_id=room.project_id, room=room, url=url)
    _audit(actor, "stream.create", target_type="stream", target_id=stream.id, target_name=stream.masked_url)
    return stream


@transaction.atomic
def stream_update(*, actor: Actor, stream: Stream, url: str) -> Stream:
    """Change the URL of a stream. Only a room's standing output (no session) can change; a session's
    stream is live and answers ``Conflict``."""
    validate_stream_url(url)
    if stream.room_session_id is not None:
        raise Conflict("A session's stream cannot change its URL; stop it and start another.")
    stream.url = url
    stream.save(update_fields=["url", "updated_at"])
    _audit(actor, "stream.update", target_type="stream", target_id=stream.id, target_name=stream.masked_url)
    return stream


@transaction.atomic
def stream_delete(*, actor: Actor, stream: Stream) -> None:
    """Delete a standing output, or the record of a session's stream that has ended. A stream still
    running answers ``Conflict`` (stop it first)."""
    if stream.room_session_id is not None and stream.state in (
        Stream.State.PENDING,
        Stream.State.STREAMING,
        Stream.State.RETRYING,
    ):
        raise Conflict("The stream is running; stop it first.")
    _audit(actor, "stream.delete", target_type="stream", target_id=stream.id, target_name=stream.masked_url)
    stream.delete()


@transaction.atomic
def room_recording_delete(*, actor: Actor, recording: Recording) -> None:
    """Delete a recording: its poster and file in default storage, its working file (the fragmented MP4 under
    ``PARLEY_DATA_DIR`` a failed recording leaves behind), then its row (``media.egress.services.recording_delete``).
    A recording still being written (``recording``/``paused``/``processing``) answers ``Conflict``. When the
    storage refuses or cannot be reached, ``StorageUnavailable`` (503) is raised and the row stays (a retry
    finishes: each file removal is idempotent)."""
    from media.egress.services import recording_delete

    recording = Recording.objects.select_for_update(no_key=True).filter(pk=recording.pk).first()
    if recording is None:  # deleted meanwhile
        raise NotFound("Recording not found.")
    if recording.status in (Recording.Status.RECORDING, Recording.Status.PAUSED, Recording.Status.PROCESSING):
        raise Conflict(f"The recording is {recording.status}; stop it and wait for it to complete.")
    recording_id = recording.id
    recording_delete(recording)
    _audit(actor, "recording.delete", target_type="recording", target_id=recording_id)
