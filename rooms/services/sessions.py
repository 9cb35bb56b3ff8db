"""Room session workflows: join, leave, end, and the room-level actions of the signalling protocol and REST API.

Every function is sync (call it through ``database_sync_to_async`` from async code), writes inside one
transaction, audits, and emits its events after commit through ``rooms.events``.

Row locks are ``FOR NO KEY UPDATE`` (no key column is ever updated): they serialise the actions on a room, a
session or a member among themselves, while concurrent inserts of rows that reference the locked row (events,
members, recordings; their foreign-key checks take ``FOR KEY SHARE`` on PostgreSQL) neither wait for them nor
deadlock with them (``rooms/tests/test_row_locks.py``).

Events: ``room.started`` (first join; webhook name), ``member.joined``, ``memberList.updated``,
``member.left`` (``{"member": {...}, "reason"}``), ``room.updated`` (``{"room_session": {..., "updated":
[...]}}``), ``room.ended``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from media import protocol
from rooms.actors import Actor
from rooms.events import audit_record, event_emit
from rooms.exceptions import InvalidParameter, NotFound, RoomFull, RoomLocked, RoomNotJoinable
from rooms.models import Layout, Member, Room, RoomSession
from rooms.services.members import (
    audience_count_emit,
    is_own_child,
    media_command,
    member_action,
    member_payload,
    member_resolve,
    position_validate,
)
from rooms.tokens import RoomGrant
from rooms.validators import validate_meta

logger = logging.getLogger(__name__)

# Above this many present members ``memberList.updated`` carries only the count (``members: null``,
# ``truncated: true``): a full list per join would make a large room's joins quadratic. Clients then call
# ``room.get_members``.
MEMBER_LIST_EVENT_MAX = 50


def room_session_payload(session: RoomSession, *, members: list[Member] | None = None) -> dict:
    """The seed's ``room_session`` shape: ``{id, room_session_id, room_id, name, display_name, status,
    start_time, end_time, layout_name, hide_video_muted, locked, meta, recording (bool), members?}``."""
    payload = {
        "id": str(session.id),
        "room_session_id": str(session.id),
        "room_id": str(session.room_id) if session.room_id else None,
        "name": session.name,
        "display_name": session.display_name,
        "status": session.status,
        "start_time": session.start_time.isoformat(),
        "end_time": session.end_time.isoformat() if session.end_time else None,
        "layout_name": session.layout_name,
        "hide_video_muted": session.hide_video_muted,
        "locked": session.locked,
        "prioritize_handraise": session.prioritize_handraise,
        "meta": session.meta,
        "recording": session.recordings.filter(status__in=("recording", "paused")).exists(),
    }
    if members is not None:
        payload["members"] = [member_payload(m, room_id=session.room_id) for m in members]
    return payload


def present_members(session: RoomSession) -> list[Member]:
    return list(session.members.filter(leave_time__isnull=True).order_by("join_time", "id"))


def _emit(session: RoomSession, event_type: str, params: dict, *, member_id=None) -> None:
    event_emit(
        event_type,
        project_id=session.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        member_id=member_id,
        params={"room_session_id": session.id, "room_id": session.room_id, **params},
    )


def member_list_emit(session: RoomSession) -> None:
    """Emit ``memberList.updated`` ``{room_session_id, room_id, total, members: [...] | null, truncated}``."""
    qs = session.members.filter(leave_time__isnull=True)
    total = qs.count()
    if total <= MEMBER_LIST_EVENT_MAX:
        members = [member_payload(m, room_id=session.room_id) for m in qs.order_by("join_time", "id")]
        _emit(session, "memberList.updated", {"total": total, "members": members, "truncated": False})
    else:
        _emit(session, "memberList.updated", {"total": total, "members": None, "truncated": True})


def _room_for_grant(grant: RoomGrant) -> Room:
    room = Room.objects.filter(project_id=grant.project_id, name=grant.room_name).first()
    if room is not None:
        return room
    if not grant.auto_create_room:
        raise NotFound("Room not found.", attribute="room_name")
    try:
        with transaction.atomic():
            return Room.objects.create(
                project_id=grant.project_id,
                name=grant.room_name,
                display_name=grant.room_display_name or grant.room_name,
                meta=grant.room_meta or {},
                enable_room_previews=grant.enable_room_previews,
            )
    except IntegrityError:  # created concurrently by another join
        return Room.objects.get(project_id=grant.project_id, name=grant.room_name)


def _live_session(room: Room) -> tuple[RoomSession, bool]:
    session = (
        RoomSession.objects.select_for_update(no_key=True)
        .filter(room=room, status=RoomSession.Status.IN_PROGRESS)
        .first()
    )
    if session is not None:
        return session, False
    try:
        with transaction.atomic():
            session = RoomSession.objects.create(
                project_id=room.project_id,
                room=room,
                name=room.name,
                display_name=room.display_name,
                max_members=room.max_members,
                quality=room.quality,
                fps=room.fps,
                layout_name=room.layout,
                locked=room.locked,
                prioritize_handraise=room.prioritize_handraise,
                record_on_start=room.record_on_start,
                enable_room_previews=room.enable_room_previews,
                audio_only=room.audio_only,
                meta=dict(room.meta),
            )
            return session, True
    except IntegrityError:  # another join started the session first
        return (
            RoomSession.objects.select_for_update(no_key=True).get(room=room, status=RoomSession.Status.IN_PROGRESS),
            False,
        )


def _earliest(*values):
    present = [v for v in values if v is not None]
    return min(present) if present else None


@transaction.atomic
def member_join(
    *,
    grant: RoomGrant,
    channel_name: str,
    resume_member_id: uuid.UUID | str | None = None,
) -> tuple[Member, RoomSession]:
    """Join the room named by ``grant`` (or resume a member of the same token) and return ``(member, session)``.

    Rules: the room is created on first use when ``auto_create_room`` (with ``room_display_name`` and
    ``room_meta``), otherwise ``NotFound``; the room's join window (``RoomNotJoinable``); a locked room or
    session (``RoomLocked``); ``max_members`` counts present members of type ``member`` (``RoomFull``).
    The first join creates the ``RoomSession`` with the room's settings and emits ``room.started``.
    The member takes the token's ``user_name``, ``permissions``, ``join_as``, ``join_audio_muted``/
    ``join_video_muted``, ``media_allowed``, ``meta``, ``end_room_session_on_leave``, and ``remove_at`` = the
    earliest of the token's and room's ``remove_at`` and ``remove_after_seconds_elapsed`` from now.
    Emits ``member.joined``, ``memberList.updated`` (and ``room.audience_count`` for audience).

    ``resume_member_id``: a present member of this token (same ``jti``) takes ``channel_name`` again and its
    ``disconnected_at`` is cleared; no event. Unknown, departed or another token's member → ``NotFound``.

    Concurrent joins of one room are serialised by the room's row lock, held for this transaction's queries
    only: no channel-layer I/O happens under it. A socket that must see the join's own events subscribes to
    the room's groups after this returns, holding the broadcast back with ``rooms.event_sender.broadcasts_gated``
    (as the signalling consumer does).
    """
    if resume_member_id is not None:
        return member_resume(grant=grant, channel_name=channel_name, member_id=resume_member_id)
    room = _room_for_grant(grant)
    room = Room.objects.select_for_update(no_key=True).get(id=room.id)  # serialise joins of one room
    now = timezone.now()
    if not room.is_joinable(now):
        raise RoomNotJoinable()
    if room.remove_at and now >= room.remove_at:
        raise RoomNotJoinable("The room no longer admits members (remove_at).")
    session, created = _live_session(room)
    if room.locked or session.locked:
        raise RoomLocked()
    if grant.join_as != Member.JoinAs.AUDIENCE:
        count = session.members.filter(leave_time__isnull=True, type=Member.Type.MEMBER).exclude(join_as="audience")
        if count.count() >= session.max_members:
            raise RoomFull()
    seconds = [s for s in (grant.remove_after_seconds_elapsed, room.remove_after_seconds_elapsed) if s]
    remove_at = _earliest(grant.remove_at, room.remove_at, now + timedelta(seconds=min(seconds)) if seconds else None)
    member = Member.objects.create(
        room_session=session,
        name=(grant.user_name or "guest")[:100],
        join_as=grant.join_as,
        permissions=[] if grant.join_as == Member.JoinAs.AUDIENCE else list(grant.permissions),
        media_allowed=grant.media_allowed,
        audio_muted=grant.join_audio_muted or grant.join_as == Member.JoinAs.AUDIENCE,
        video_muted=grant.join_video_muted or grant.join_as == Member.JoinAs.AUDIENCE,
        meta=dict(grant.meta or {}),
        end_room_session_on_leave=grant.end_room_session_on_leave,
        remove_at=remove_at,
        token_jti=grant.jti,
        channel_name=channel_name,
        join_time=now,
    )
    if created:
        _emit(session, "room.started", {"room_session": room_session_payload(session)})
    _emit(session, "member.joined", {"member": member_payload(member, room_id=session.room_id)}, member_id=member.id)
    member_list_emit(session)
    if member.join_as == Member.JoinAs.AUDIENCE:
        audience_count_emit(session)
    logger.info("member joined member_id=%s room_session_id=%s", member.id, session.id)
    return member, session


def member_resume(*, grant: RoomGrant, channel_name: str, member_id) -> tuple[Member, RoomSession]:
    """Reattach a disconnected (or reconnecting) member of the same token to ``channel_name``."""
    try:
        member_uuid = uuid.UUID(str(member_id))
    except ValueError as e:
        raise InvalidParameter("Must be a member id.", attribute="member_id") from e
    member = (
        Member.objects.select_for_update(no_key=True)
        .select_related("room_session")
        .filter(
            id=member_uuid,
            token_jti=grant.jti,
            leave_time__isnull=True,
            room_session__project_id=grant.project_id,
            room_session__status=RoomSession.Status.IN_PROGRESS,
        )
        .first()
    )
    if member is None:
        raise NotFound("No member to resume.", attribute="member_id")
    member.channel_name = channel_name
    member.disconnected_at = None
    member.save(update_fields=["channel_name", "disconnected_at"])
    logger.info("member resumed member_id=%s room_session_id=%s", member.id, member.room_session_id)
    return member, member.room_session


@transaction.atomic
def member_leave(*, member_id: uuid.UUID | str, reason: str) -> Member | None:
    """Mark the member (and its screen/device children) as gone with ``reason`` (``left``, ``removed``,
    ``timeout``, ``remove_at``, ``room_ended``…). Emits ``member.left`` ``{"member": {...}, "reason"}`` and
    ``memberList.updated``; tells the worker ``media.leave``. Ends the session when no member is left or
    the member's token had ``end_room_session_on_leave``. Idempotent: returns None if already gone."""
    member = (
        Member.objects.select_for_update(no_key=True)
        .select_related("room_session")
        .filter(id=member_id, leave_time__isnull=True)
        .first()
    )
    if member is None:
        return None
    session = member.room_session
    now = timezone.now()
    gone = [member, *member.children.filter(leave_time__isnull=True)]
    for m in gone:
        m.leave_time = now
        m.leave_reason = reason[:64]
        m.channel_name = ""
        m.save(update_fields=["leave_time", "leave_reason", "channel_name"])
        _emit(
            session,
            "member.left",
            {"member": member_payload(m, room_id=session.room_id), "reason": reason},
            member_id=m.id,
        )
        media_command(room_session=session, message={"type": protocol.LEAVE, "member_id": str(m.id)})
    logger.info("member left member_id=%s room_session_id=%s reason=%s", member.id, session.id, reason)
    if session.status != RoomSession.Status.IN_PROGRESS:
        return member
    remaining = session.members.filter(leave_time__isnull=True).exists()
    if not remaining or member.end_room_session_on_leave:
        _session_end(session, reason="last_member_left" if not remaining else "end_room_session_on_leave")
    else:
        member_list_emit(session)
        if member.join_as == Member.JoinAs.AUDIENCE:
            audience_count_emit(session)
    return member


def _session_end(session: RoomSession, *, reason: str) -> None:
    now = timezone.now()
    for m in session.members.filter(leave_time__isnull=True).order_by("join_time"):
        m.leave_time = now
        m.leave_reason = "room_ended"
        m.channel_name = ""
        m.save(update_fields=["leave_time", "leave_reason", "channel_name"])
        _emit(
            session,
            "member.left",
            {"member": member_payload(m, room_id=session.room_id), "reason": "room_ended"},
            member_id=m.id,
        )
    session.status = RoomSession.Status.COMPLETED
    session.end_time = now
    session.save(update_fields=["status", "end_time", "updated_at"])
    _emit(session, "room.ended", {"room_session": room_session_payload(session), "reason": reason})
    media_command(room_session=session, message={"type": protocol.SESSION_END})
    logger.info("room session ended room_session_id=%s reason=%s", session.id, reason)


def session_audit(actor: Actor, session: RoomSession, action: str, *, target=None, details: dict | None = None) -> None:
    """Audit ``action`` by ``actor`` inside ``session`` (call in the change's transaction). The target is the
    session itself unless ``target`` (a model instance: ``Playback``, ...) is given; ``details`` hold no secrets."""
    if target is None:
        named = {"target_type": "room_session", "target_id": str(session.id), "target_name": session.name}
    else:
        named = {"target_type": target._meta.model_name, "target_id": str(target.pk)}
    audit_record(
        project_id=session.project_id,
        room_session_id=session.id,
        action=action,
        details=details,
        **named,
        **actor.audit_fields(),
    )


def _session_for(actor: Actor, room_session_id, *, lock: bool = True) -> RoomSession:
    try:
        rs_uuid = uuid.UUID(str(room_session_id))
    except ValueError as e:
        raise NotFound("Room session not found.", attribute="room_session_id") from e
    if actor.kind == "member" and str(actor.room_session_id) != str(rs_uuid):
        raise NotFound("Room session not found.", attribute="room_session_id")
    qs = RoomSession.objects.filter(id=rs_uuid, project_id=actor.project_id, status=RoomSession.Status.IN_PROGRESS)
    if lock:
        qs = qs.select_for_update(no_key=True)
    session = qs.first()
    if session is None:
        raise NotFound("Room session not found.", attribute="room_session_id")
    return session


@transaction.atomic
def room_session_end(*, room_session_id: uuid.UUID | str, actor: Actor) -> RoomSession:
    """End a live session: every member leaves with reason ``room_ended``; emits ``room.ended``.
    Raises ``NotFound`` when the session is not live or not within the actor's reach."""
    session = _session_for(actor, room_session_id)
    session_audit(actor, session, "room_session.end")
    _session_end(session, reason="ended")
    return session


def layouts_available(*, project_id) -> list[dict]:
    """Built-in and the project's layouts: ``[{name, description, builtin}]`` ordered by name."""
    from media.mixer.layout_defs import PUBLIC_LAYOUT_NAMES

    public = set(PUBLIC_LAYOUT_NAMES)
    rows = Layout.objects.filter(Q(project__isnull=True, name__in=public) | Q(project_id=project_id)).order_by("name")
    return [{"name": r.name, "description": r.description, "builtin": r.project_id is None} for r in rows]


def _layout_exists(project_id, name) -> bool:
    return Layout.objects.filter(Q(project__isnull=True) | Q(project_id=project_id), name=name).exists()


def _positions(actor: Actor, session: RoomSession, value) -> dict[str, str]:
    if not isinstance(value, dict) or not value or len(value) > 300:
        raise InvalidParameter("Must be an object {member_id: position}.", attribute="positions")
    present = {str(i) for i in session.members.filter(leave_time__isnull=True).values_list("id", flat=True)}
    positions: dict[str, str] = {}
    for member_id, position in value.items():
        position_validate(position, attribute="positions")
        if str(member_id) not in present:
            raise NotFound("Member not found.", attribute="positions")
        positions[str(member_id)] = position
    return positions


ROOM_ACTIONS = (
    "set_layout",
    "set_positions",
    "set_hide_video_muted",
    "set_prioritize_handraise",
    "lock",
    "unlock",
    "set_meta",
    "update_meta",
    "delete_meta",
    "remove_all_members",
    "end",
)


@transaction.atomic
def room_session_action(*, actor: Actor, room_session_id: uuid.UUID | str, action: str, params: dict) -> dict:
    """A room-level action on a live session; returns the RPC result.

    - ``set_layout`` ``{name, positions?}`` (``room.set_layout``, plus ``room.set_position`` with positions)
      → ``{"layout_name"}``; sends ``media.layout``; emits ``room.updated``.
    - ``set_positions`` ``{positions: {member_id: position}}`` (``room.set_position``) → ``{"positions"}``.
    - ``set_hide_video_muted`` ``{value: bool}`` (``room.hide_video_muted`` / ``room.show_video_muted``).
    - ``set_prioritize_handraise`` ``{value: bool}`` (``room.prioritize_handraise``).
    - ``lock`` / ``unlock`` (``room.lock`` / ``room.unlock``).
    - ``set_meta`` ``{meta}`` / ``update_meta`` ``{meta}`` / ``delete_meta`` ``{keys}`` (``room.set_meta``;
      2000 characters) → ``{"meta"}``.
    - ``remove_all_members`` (``room.member.remove``): every other member leaves with ``removed``.
    - ``end`` (``room.member.remove`` for members; always allowed to API keys and operators).
    Raises ``PermissionMissing``, ``InvalidParameter``, ``NotFound``.
    """
    if action not in ROOM_ACTIONS:
        raise InvalidParameter(f"Unknown room action '{action}'.", attribute="action")
    params = params or {}
    session = _session_for(actor, room_session_id)
    updated: list[str] = []
    result: dict = {}
    details: dict = {}

    if action == "set_layout":
        actor.require("room.set_layout")
        name = params.get("name")
        if not isinstance(name, str) or not name or len(name) > 100:
            raise InvalidParameter("Must be a layout name.", attribute="name")
        positions = {}
        if params.get("positions") is not None:
            actor.require("room.set_position")
            positions = _positions(actor, session, params["positions"])
        if not _layout_exists(session.project_id, name):
            raise NotFound(f"Layout '{name}' not found.", attribute="name")
        if session.layout_name != name:
            session.layout_name = name
            updated.append("layout_name")
        for member_id, position in positions.items():
            Member.objects.filter(id=member_id).update(position=position)
        details = {"name": name, "positions": positions}
        result = {"layout_name": name, "positions": positions}
        media_command(
            room_session=session,
            message={
                "type": protocol.LAYOUT,
                "layout_name": name,
                "positions": positions,
                "hide_video_muted": session.hide_video_muted,
            },
        )
    elif action == "set_positions":
        actor.require("room.set_position")
        positions = _positions(actor, session, params.get("positions"))
        for member_id, position in positions.items():
            Member.objects.filter(id=member_id).update(position=position)
        details = result = {"positions": positions}
        updated.append("positions")
        media_command(
            room_session=session,
            message={
                "type": protocol.LAYOUT,
                "layout_name": session.layout_name,
                "positions": positions,
                "hide_video_muted": session.hide_video_muted,
            },
        )
    elif action in ("set_hide_video_muted", "set_prioritize_handraise"):
        value = params.get("value")
        if not isinstance(value, bool):
            raise InvalidParameter("Must be a boolean.", attribute="value")
        if action == "set_hide_video_muted":
            actor.require("room.hide_video_muted" if value else "room.show_video_muted")
            field = "hide_video_muted"
        else:
            actor.require("room.prioritize_handraise")
            field = "prioritize_handraise"
        if getattr(session, field) != value:
            setattr(session, field, value)
            updated.append(field)
        details = result = {field: value}
        if field == "hide_video_muted":
            media_command(
                room_session=session,
                message={
                    "type": protocol.LAYOUT,
                    "layout_name": session.layout_name,
                    "positions": {},
                    "hide_video_muted": value,
                },
            )
    elif action in ("lock", "unlock"):
        actor.require(f"room.{action}")
        if session.locked != (action == "lock"):
            session.locked = action == "lock"
            updated.append("locked")
        result = {"locked": session.locked}
    elif action in ("set_meta", "update_meta", "delete_meta"):
        actor.require("room.set_meta")
        if action == "set_meta":
            meta = validate_meta(params.get("meta"))
        elif action == "update_meta":
            if not isinstance(params.get("meta"), dict):
                raise InvalidParameter("Must be a JSON object.", attribute="meta")
            meta = validate_meta({**session.meta, **params["meta"]})
        else:
            keys = params.get("keys")
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
                raise InvalidParameter("Must be a non-empty list of strings.", attribute="keys")
            meta = {k: v for k, v in session.meta.items() if k not in keys}
        if meta != session.meta:
            session.meta = meta
            updated.append("meta")
        result = {"meta": session.meta}
    elif action == "remove_all_members":
        actor.require("room.member.remove")
        others = session.members.filter(leave_time__isnull=True, parent__isnull=True)
        if actor.member_id is not None:
            others = others.exclude(id=actor.member_id)
        ids = list(others.values_list("id", flat=True))
        session_audit(actor, session, "room_session.remove_all_members", details={"count": len(ids)})
        for member_id in ids:
            member_leave(member_id=member_id, reason="removed")
        return {"removed": len(ids)}
    elif action == "end":
        if actor.kind == "member":
            actor.require("room.member.remove")
        room_session_end(room_session_id=session.id, actor=actor)
        return {"ended": True}

    if updated:
        fields = [f for f in updated if f != "positions"]
        if fields:
            session.save(update_fields=[*fields, "updated_at"])
    session_audit(actor, session, f"room_session.{action}", details=details)
    if updated:
        payload = room_session_payload(session)
        payload["updated"] = updated
        if "positions" in updated:
            payload["positions"] = result.get("positions", {})
        _emit(session, "room.updated", {"room_session": payload, "room": payload})
    return result


@transaction.atomic
def member_disconnected(*, member_id: uuid.UUID | str, channel_name: str) -> bool:
    """The socket ``channel_name`` of a present member closed without ``room.leave``: start its reconnect grace
    (``disconnected_at`` = now). False when the member has left or another socket took it over."""
    return bool(
        Member.objects.filter(id=member_id, leave_time__isnull=True, channel_name=channel_name).update(
            disconnected_at=timezone.now()
        )
    )


def member_expire_if_disconnected(*, member_id: uuid.UUID | str) -> bool:
    """Remove the member with ``member.left`` reason ``timeout`` if it is still disconnected past
    ``PARLEY_RECONNECT_GRACE_SECONDS``. True when it was removed."""
    cutoff = timezone.now() - timedelta(seconds=settings.PARLEY_RECONNECT_GRACE_SECONDS)
    exists = Member.objects.filter(
        id=member_id, leave_time__isnull=True, disconnected_at__isnull=False, disconnected_at__lte=cutoff
    ).exists()
    return bool(exists and member_leave(member_id=member_id, reason="timeout"))


def members_expire_disconnected(*, now=None) -> int:
    """Sweep (Celery beat): remove every member disconnected for longer than the reconnect grace, and every
    member past its ``remove_at``. Returns how many were removed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PARLEY_RECONNECT_GRACE_SECONDS)
    removed = 0
    expired = Member.objects.filter(leave_time__isnull=True, disconnected_at__isnull=False, disconnected_at__lte=cutoff)
    for member_id in list(expired.values_list("id", flat=True)):
        removed += bool(member_leave(member_id=member_id, reason="timeout"))
    overdue = Member.objects.filter(leave_time__isnull=True, remove_at__isnull=False, remove_at__lte=now)
    for member_id in list(overdue.values_list("id", flat=True)):
        removed += bool(member_leave(member_id=member_id, reason="remove_at"))
    return removed


def member_get(*, actor: Actor, member_id) -> Member:
    """A present member within the actor's reach (``NotFound`` otherwise), without locking."""
    with transaction.atomic():
        return member_resolve(actor=actor, member_id=member_id)


@transaction.atomic
def member_child_add(*, actor: Actor, type: str, audio: bool = True, video: bool = True) -> Member:
    """Add a screen share (``type="screen"``, ``room.self.screenshare``) or an extra device (``"device"``,
    ``room.self.additional_source``) as a child member of the acting member, with its own peer connection.
    Emits ``member.joined`` and ``memberList.updated``. Raises ``PermissionMissing``, ``NotFound``."""
    if type not in (Member.Type.SCREEN, Member.Type.DEVICE):
        raise InvalidParameter("Must be screen or device.", attribute="type")
    actor.require("room.self.screenshare" if type == Member.Type.SCREEN else "room.self.additional_source")
    parent = member_resolve(actor=actor, member_id=actor.member_id)
    session = parent.room_session
    child = Member.objects.create(
        room_session=session,
        parent=parent,
        name=f"{parent.name} ({type})"[:100],
        type=type,
        join_as=parent.join_as,
        permissions=[],
        audio_muted=not audio,
        video_muted=not video,
        token_jti=parent.token_jti,
        channel_name=parent.channel_name,
        position="reserved-1" if type == Member.Type.SCREEN else "auto",
    )
    _emit(session, "member.joined", {"member": member_payload(child, room_id=session.room_id)}, member_id=child.id)
    member_list_emit(session)
    return child


@transaction.atomic
def member_child_leave(*, actor: Actor, member_id) -> Member:
    """``room.leave {member_id}``: end one of the acting member's own ``screen``/``device`` children (as
    ``member.remove`` does, with ``room.self.screenshare`` / ``room.self.additional_source``; ``member.left``
    reason ``left``). Any other member, present or not, is ``NotFound`` (-32004): the caller never leaves in
    its place."""
    member = member_resolve(actor=actor, member_id=member_id)
    if not is_own_child(actor, member):
        raise NotFound("Not one of your own sources.", attribute="member_id")
    return member_action(actor=actor, member_id=member.id, action="remove", params={})


def room_session_snapshot(*, room_session_id) -> dict:
    """``room_session`` payload with its present ``members`` (the result of ``room.join``)."""
    session = RoomSession.objects.get(id=room_session_id)
    return room_session_payload(session, members=present_members(session))


def media_worker_of(*, room_session_id) -> str:
    """The channel name of the session's media worker, or ``""`` when none is placed."""
    return RoomSession.objects.filter(id=room_session_id).values_list("media_worker", flat=True).first() or ""
