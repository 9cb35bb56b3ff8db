"""Reads of the rooms domain, always scoped to a project (what a caller may not see is 404).

Getters raise ``rooms.exceptions.NotFound``; list selectors return querysets the REST layer paginates.
Time filters take aware ``datetime`` values.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.db.models import Q, QuerySet

from rooms.exceptions import NotFound
from rooms.models import (
    ApiKey,
    AuditEntry,
    Layout,
    Member,
    Playback,
    Project,
    Recording,
    Room,
    RoomSession,
    RoomSessionEvent,
    Stream,
)


def _uuid(value) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _filter_given(qs: QuerySet, **lookups) -> QuerySet:
    """``qs.filter(**lookups)`` with only the lookups whose value is given (truthy): optional filters of lists."""
    given = {lookup: value for lookup, value in lookups.items() if value}
    return qs.filter(**given) if given else qs


def _get(qs: QuerySet, object_id, what: str):
    pk = _uuid(object_id)
    obj = qs.filter(pk=pk).first() if pk else None
    if obj is None:
        raise NotFound(f"{what} not found.")
    return obj


# Rooms -------------------------------------------------------------------------------------------------------


def room_list(
    *,
    project: Project,
    name: str | None = None,
    starts_after: datetime | None = None,
    ends_before: datetime | None = None,
) -> QuerySet[Room]:
    """The project's rooms, newest first. ``name``: exact name; ``starts_after``/``ends_before``: rooms whose
    join window (``join_from``/``join_until``) starts after / ends before the instant."""
    qs = Room.objects.filter(project=project).order_by("-created_at", "-id")
    return _filter_given(qs, name=name, join_from__gt=starts_after, join_until__lt=ends_before)


def room_get(*, project: Project, id_or_name: str) -> Room:
    """A room of ``project`` by id (UUID) or, failing that, by name. Raises ``NotFound``."""
    qs = Room.objects.filter(project=project).select_related("project")
    pk = _uuid(id_or_name)
    room = qs.filter(pk=pk).first() if pk else None
    room = room or qs.filter(name=id_or_name).first()
    if room is None:
        raise NotFound("Room not found.")
    return room


def room_active_sessions(*, rooms: list[Room]) -> dict[uuid.UUID, RoomSession]:
    """``{room_id: in-progress session}`` for ``rooms`` in one query."""
    sessions = RoomSession.objects.filter(room__in=rooms, status=RoomSession.Status.IN_PROGRESS)
    return {s.room_id: s for s in sessions}


def room_stream_list(*, room: Room) -> QuerySet[Stream]:
    """The standing outputs of ``room`` (streams with no session)."""
    return Stream.objects.filter(room=room, room_session__isnull=True).order_by("-created_at", "-id")


def stream_get(*, project: Project, stream_id) -> Stream:
    return _get(Stream.objects.filter(project=project), stream_id, "Stream")


# Sessions ----------------------------------------------------------------------------------------------------


def room_session_list(
    *,
    project: Project,
    room_id: uuid.UUID | None = None,
    room_name: str | None = None,
    room_name_matches: str | None = None,
    status: str | None = None,
    starts_after: datetime | None = None,
    ends_before: datetime | None = None,
) -> QuerySet[RoomSession]:
    """The project's room sessions, newest first, filtered by room id, exact name, name substring, status,
    start after / end before an instant."""
    qs = RoomSession.objects.filter(project=project).order_by("-start_time", "-id")
    return _filter_given(
        qs,
        room_id=room_id,
        name=room_name,
        name__icontains=room_name_matches,
        status=status,
        start_time__gt=starts_after,
        end_time__lt=ends_before,
    )


def room_session_get(*, project: Project, room_session_id) -> RoomSession:
    """The project's room session, with its room. Raises ``NotFound``."""
    return _get(RoomSession.objects.filter(project=project).select_related("room"), room_session_id, "Room session")


def member_list(*, room_session: RoomSession, present: bool | None = None) -> QuerySet[Member]:
    """The session's members by join time; ``present``: only those still in it (``True``) or gone (``False``)."""
    qs = Member.objects.filter(room_session=room_session).order_by("join_time", "id")
    if present is not None:
        qs = qs.filter(leave_time__isnull=present)
    return qs


def member_get(*, room_session: RoomSession, member_id) -> Member:
    return _get(Member.objects.filter(room_session=room_session), member_id, "Member")


def room_session_event_list(*, room_session: RoomSession) -> QuerySet[RoomSessionEvent]:
    return RoomSessionEvent.objects.filter(room_session=room_session).order_by("created_at", "id")


def room_session_stream_list(*, room_session: RoomSession) -> QuerySet[Stream]:
    return Stream.objects.filter(room_session=room_session).order_by("-created_at", "-id")


# Recordings and playbacks ------------------------------------------------------------------------------------


def recording_list(
    *, project: Project, room_session_id: uuid.UUID | None = None, status: str | None = None
) -> QuerySet[Recording]:
    """The project's recordings, newest first, optionally of one room session and in one ``status``."""
    qs = Recording.objects.filter(project=project).order_by("-started_at", "-id")
    return _filter_given(qs, room_session_id=room_session_id, status=status)


def recording_get(*, project: Project, recording_id) -> Recording:
    return _get(Recording.objects.filter(project=project), recording_id, "Recording")


def recording_event_list(*, recording: Recording) -> QuerySet[RoomSessionEvent]:
    return RoomSessionEvent.objects.filter(recording=recording).order_by("created_at", "id")


def playback_get(*, project: Project, playback_id) -> Playback:
    return _get(Playback.objects.filter(project=project), playback_id, "Playback")


def playback_list(*, project: Project, room_session: RoomSession) -> QuerySet[Playback]:
    """The playbacks of one of the project's sessions, newest first."""
    return Playback.objects.filter(project=project, room_session=room_session).order_by("-started_at", "-id")


# Layouts and keys --------------------------------------------------------------------------------------------


def layout_list(*, project: Project) -> QuerySet[Layout]:
    """Built-in layouts and the project's own, by name."""
    return Layout.objects.filter(Q(project__isnull=True) | Q(project=project)).order_by("name", "id")


def layout_get(*, project: Project, name: str) -> Layout:
    """The project's layout ``name``, else the built-in one. Raises ``NotFound``."""
    layout = Layout.objects.filter(project=project, name=name).first()
    layout = layout or Layout.objects.filter(project__isnull=True, name=name).first()
    if layout is None:
        raise NotFound(f"Layout '{name}' not found.")
    return layout


def api_key_list(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).order_by("-created_at", "-id")


def api_key_get(*, project: Project, api_key_id) -> ApiKey:
    return _get(ApiKey.objects.filter(project=project), api_key_id, "API key")


# Audit -------------------------------------------------------------------------------------------------------


def audit_entry_list(
    *,
    project: Project,
    action_prefix: str | None = None,
    actor_name_matches: str | None = None,
    interface: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEntry]:
    """The project's audit entries, newest first, filtered by action prefix (``member.``), actor name substring,
    interface (``api``, ``signalling``, ``dashboard``…) and an inclusive range of UTC days."""
    qs = AuditEntry.objects.filter(project=project).order_by("-created_at", "-id")
    return _filter_given(
        qs,
        action__startswith=action_prefix,
        actor_name__icontains=actor_name_matches,
        interface=interface,
        created_at__date__gte=since,
        created_at__date__lte=until,
    )
