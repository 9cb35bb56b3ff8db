"""Reads for the dashboard, always scoped by project (another project's object is ``Http404``).

The filters live in one place, ``rooms.selectors`` (and the webhook reads of ``rooms.services.webhooks``), shared
with the REST API; this module adds what the pages need on top (search, live flags, the order people read in)
and turns the domain's ``rooms.exceptions.NotFound`` into ``Http404``. Writes never happen here: they go through
``rooms.services``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from rooms import selectors as rooms_selectors
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
    WebhookDelivery,
    WebhookEndpoint,
)
from rooms.services import webhooks as webhook_reads


@contextmanager
def _not_found_as_404() -> Iterator[None]:
    """Re-raise the domain's ``NotFound`` (a malformed id, another project's object) as ``Http404``."""
    try:
        yield
    except NotFound as exc:
        raise Http404(exc.message) from exc


def room_list(*, project: Project, search: str = "") -> QuerySet[Room]:
    """Rooms of ``project`` matching ``search`` (name, display name, description), each annotated with
    ``is_live`` (a session in progress); live rooms first, then by name."""
    live = RoomSession.objects.filter(room=OuterRef("pk"), status=RoomSession.Status.IN_PROGRESS)
    rooms = rooms_selectors.room_list(project=project).annotate(is_live=Exists(live))
    if search:
        rooms = rooms.filter(
            Q(name__icontains=search) | Q(display_name__icontains=search) | Q(description__icontains=search)
        )
    return rooms.order_by("-is_live", "name")


def room_get(*, project: Project, room_id) -> Room:
    """The project's room ``room_id`` (a UUID). Raises ``Http404``."""
    with _not_found_as_404():
        return rooms_selectors.room_get(project=project, id_or_name=str(room_id))


def session_list(*, project: Project, status: str = "in-progress") -> QuerySet[RoomSession]:
    """Sessions of ``project`` (``status`` ``in-progress``, ``completed`` or empty for all), newest first."""
    return rooms_selectors.room_session_list(project=project, status=status or None).select_related("room")


def session_get(*, project: Project, room_session_id) -> RoomSession:
    """The project's room session ``room_session_id``, with its room. Raises ``Http404``."""
    with _not_found_as_404():
        return rooms_selectors.room_session_get(project=project, room_session_id=room_session_id)


def session_members(*, room_session: RoomSession) -> QuerySet[Member]:
    """Members present in the session (left ones excluded), hands raised first, then by join time."""
    members = rooms_selectors.member_list(room_session=room_session, present=True)
    return members.order_by("-hand_raised", "join_time", "id")


def session_events(*, room_session: RoomSession, limit: int = 50) -> list[RoomSessionEvent]:
    """The session's latest persisted events, newest first."""
    return list(rooms_selectors.room_session_event_list(room_session=room_session).reverse()[:limit])


def member_get(*, room_session: RoomSession, member_id) -> Member:
    """A member of the session, present or not (the caller checks ``is_present``). Raises ``Http404``."""
    with _not_found_as_404():
        return rooms_selectors.member_get(room_session=room_session, member_id=member_id)


def _of_session(room_session: RoomSession, get, object_id, label: str):
    """``get(project=…, <label>_id=object_id)`` of the session's project, when it belongs to the session itself.
    Raises ``Http404``."""
    with _not_found_as_404():
        obj = get(project=room_session.project, **{f"{label}_id": object_id})
    if obj.room_session_id != room_session.id:
        raise Http404(f"{label.capitalize()} not found.")
    return obj


def stream_get(*, room_session: RoomSession, stream_id) -> Stream:
    """A stream of the session (not a standing output of its room, nor another session's). Raises ``Http404``."""
    return _of_session(room_session, rooms_selectors.stream_get, stream_id, "stream")


def playback_get(*, room_session: RoomSession, playback_id) -> Playback:
    """A playback of the session (not another session's). Raises ``Http404``."""
    return _of_session(room_session, rooms_selectors.playback_get, playback_id, "playback")


def recording_list(*, project: Project) -> QuerySet[Recording]:
    """The project's recordings with their sessions, newest first."""
    return rooms_selectors.recording_list(project=project).select_related("room_session")


def recording_get(*, project: Project, recording_id) -> Recording:
    with _not_found_as_404():
        return rooms_selectors.recording_get(project=project, recording_id=recording_id)


def api_key_list(*, project: Project) -> QuerySet[ApiKey]:
    """The project's keys: usable ones first, then revoked ones; newest first within each."""
    keys = rooms_selectors.api_key_list(project=project)
    return keys.order_by(F("revoked_at").asc(nulls_first=True), "-created_at", "-id")


def api_key_get(*, project: Project, api_key_id) -> ApiKey:
    with _not_found_as_404():
        return rooms_selectors.api_key_get(project=project, api_key_id=api_key_id)


def webhook_endpoint_list(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return webhook_reads.webhook_endpoint_list(project=project)


def webhook_endpoint_get(*, project: Project, endpoint_id) -> WebhookEndpoint:
    with _not_found_as_404():
        return webhook_reads.webhook_endpoint_get(project=project, endpoint_id=endpoint_id)


def webhook_delivery_list(*, endpoint: WebhookEndpoint, limit: int = 100) -> list[WebhookDelivery]:
    """The endpoint's latest ``limit`` deliveries with their events, newest first."""
    return list(webhook_reads.webhook_delivery_list(endpoint=endpoint)[:limit])


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery:
    with _not_found_as_404():
        return webhook_reads.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)


def layout_list(*, project: Project) -> tuple[list[Layout], list[Layout]]:
    """``(built-ins, the project's own)``, each by name."""
    layouts = list(rooms_selectors.layout_list(project=project))
    return [lay for lay in layouts if lay.project_id is None], [lay for lay in layouts if lay.project_id]


def layout_names(*, project: Project) -> list[str]:
    builtins, custom = layout_list(project=project)
    return [layout.name for layout in builtins] + [layout.name for layout in custom]


def audit_list(
    *,
    project: Project,
    action: str = "",
    actor: str = "",
    interface: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Audit entries of ``project``, newest first, filtered by action prefix, actor name (substring),
    interface, and an inclusive day range (UTC)."""
    entries = rooms_selectors.audit_entry_list(
        project=project,
        action_prefix=action,
        actor_name_matches=actor,
        interface=interface,
        since=since,
        until=until,
    )
    return list(entries[:limit])


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def usage_by_day(*, project: Project, days: int = 30, today: dt.date | None = None) -> list[dict]:
    """Per UTC day for the last ``days`` days (oldest first):
    ``{"day": date, "participant_minutes": float, "peak_members": int, "recording_minutes": float}``.

    Participant-minutes: time members (type ``member``, audience included) spent in sessions that day, cut at
    midnight; a member still present counts until now. Peak: the most members present at once that day.
    Recording minutes: ``Recording.duration`` of recordings started that day. Source: Member and Recording rows.
    """
    now = timezone.now()
    today = today or now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start, end = _day_start(first), _day_start(today + dt.timedelta(days=1))
    members = Member.objects.filter(room_session__project=project, type=Member.Type.MEMBER, join_time__lt=end).filter(
        Q(leave_time__isnull=True) | Q(leave_time__gt=start)
    )
    minutes: dict[dt.date, float] = defaultdict(float)
    changes: dict[dt.date, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for joined, left in members.values_list("join_time", "leave_time"):
        left = min(left or now, end)
        joined = max(joined, start)
        if left <= joined:
            continue
        day = joined.astimezone(dt.UTC).date()
        while _day_start(day) < left:
            lo = max(joined, _day_start(day))
            hi = min(left, _day_start(day + dt.timedelta(days=1)))
            minutes[day] += (hi - lo).total_seconds() / 60
            changes[day] += [(lo, 1), (hi, -1)]
            day += dt.timedelta(days=1)
    recordings: dict[dt.date, float] = defaultdict(float)
    for started, duration in Recording.objects.filter(
        project=project, started_at__gte=start, started_at__lt=end, duration__isnull=False
    ).values_list("started_at", "duration"):
        recordings[started.astimezone(dt.UTC).date()] += duration / 60
    rows = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        present = peak = 0
        # Leaves sort before joins at the same instant: a hand-over is not a peak.
        for _, delta in sorted(changes[day], key=lambda change: (change[0], change[1])):
            present += delta
            peak = max(peak, present)
        rows.append(
            {
                "day": day,
                "participant_minutes": round(minutes[day], 1),
                "peak_members": peak,
                "recording_minutes": round(recordings[day], 1),
            }
        )
    return rows
