"""Member actions shared by the signalling consumer, the REST API and the dashboard (DESIGN §3, §5).

``member_action`` is the one entry point: it resolves the target inside the actor's reach (a member acts only
inside its own session; anything else is ``NotFound``, never a hint that another session exists), checks the
permission (``room.self.*`` on oneself, ``room.member.*`` on another), writes, audits, emits
``member.updated`` (``{"member": {..., "updated": [fields]}}``) and tells the session's media worker.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from media import protocol
from rooms.actors import Actor
from rooms.events import audit_record, event_emit
from rooms.exceptions import InvalidParameter, NotFound
from rooms.models import Member, RoomSession
from rooms.permissions import DEFAULT_PERMISSIONS, member_action_permission, unknown_permissions
from rooms.validators import validate_meta

logger = logging.getLogger(__name__)

VOLUME_MIN_DB = -50.0
VOLUME_MAX_DB = 50.0
SENSITIVITY_MIN = 0.0
SENSITIVITY_MAX = 100.0
REACTION_MAX_CHARS = 32
POSITION_RE_TEXT = r"^(auto|off-canvas|reserved-[0-9]{1,3}|standard-[0-9]{1,3})$"

# action → (permission suffix, or None when the action needs none, self-only flag)
MEMBER_ACTIONS: dict[str, tuple[str | None, bool]] = {
    "audio_mute": ("audio_mute", False),
    "audio_unmute": ("audio_unmute", False),
    "video_mute": ("video_mute", False),
    "video_unmute": ("video_unmute", False),
    "deaf": ("deaf", False),
    "undeaf": ("undeaf", False),
    "set_input_volume": ("set_input_volume", False),
    "set_output_volume": ("set_output_volume", False),
    "set_input_sensitivity": ("set_input_sensitivity", False),
    "set_position": ("set_position", False),
    "set_meta": ("set_meta", False),
    "update_meta": ("set_meta", False),
    "delete_meta": ("set_meta", False),
    "raise_hand": ("raisehand", False),
    "lower_hand": ("lowerhand", False),
    "remove": ("remove", False),
    "promote": ("promote", False),
    "demote": ("demote", False),
    "send_reaction": (None, True),
}

# A member's own screen share / extra device (a child member) is ended with the permission that started it.
CHILD_PERMISSIONS = {Member.Type.SCREEN: "room.self.screenshare", Member.Type.DEVICE: "room.self.additional_source"}


def is_own_child(actor: Actor, member: Member) -> bool:
    """Whether ``member`` is a ``screen``/``device`` member whose parent is the acting member."""
    return (
        actor.member_id is not None
        and member.type in CHILD_PERMISSIONS
        and str(member.parent_id or "") == str(actor.member_id)
    )


def member_payload(member: Member, *, room_id=None) -> dict:
    """The seed's member shape: ``{id, room_session_id, room_id, name, type, join_as, audio_muted, video_muted,
    deaf, visible, input_volume, output_volume (dB), input_sensitivity (0..100), handraised, talking,
    position, meta, parent_id}``."""
    if room_id is None:
        room_id = member.room_session.room_id
    return {
        "id": str(member.id),
        "room_session_id": str(member.room_session_id),
        "room_id": str(room_id) if room_id else None,
        "name": member.name,
        "type": member.type,
        "join_as": member.join_as,
        "audio_muted": member.audio_muted,
        "video_muted": member.video_muted,
        "deaf": member.deaf,
        "visible": member.visible,
        "input_volume": member.input_volume,
        "output_volume": member.output_volume,
        "input_sensitivity": member.input_sensitivity,
        "handraised": member.hand_raised,
        "talking": member.talking,
        "position": member.position,
        "meta": member.meta,
        "parent_id": str(member.parent_id) if member.parent_id else None,
    }


def media_command(*, room_session: RoomSession, message: dict) -> None:
    """After commit, send ``message`` (a ``media.protocol`` command) to the session's media worker, if one is
    placed. Without a worker there is no live media to update, so nothing is sent."""
    worker = room_session.media_worker
    if not worker:
        return
    body = {"room_session_id": str(room_session.id), **message}

    def _send() -> None:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.send)(worker, body)
        except Exception:  # a worker that is gone must not undo a committed change
            logger.exception("media command failed type=%s room_session_id=%s", body["type"], room_session.id)

    transaction.on_commit(_send)


def audience_count_emit(room_session: RoomSession) -> None:
    """Emit ``room.audience_count`` ``{room_session_id, room_id, total}`` to the room."""
    total = room_session.members.filter(leave_time__isnull=True, join_as=Member.JoinAs.AUDIENCE).count()
    event_emit(
        "room.audience_count",
        project_id=room_session.project_id,
        room_id=room_session.room_id,
        room_session_id=room_session.id,
        params={"room_session_id": room_session.id, "room_id": room_session.room_id, "total": total},
    )


def member_resolve(*, actor: Actor, member_id) -> Member:
    """The present member ``member_id`` within the actor's reach, locked for update. Raises ``NotFound``."""
    try:
        member_uuid = uuid.UUID(str(member_id))
    except ValueError as e:
        raise NotFound("Member not found.", attribute="member_id") from e
    qs = (
        Member.objects.select_for_update(no_key=True)
        .select_related("room_session")
        .filter(
            id=member_uuid,
            room_session__project_id=actor.project_id,
            room_session__status=RoomSession.Status.IN_PROGRESS,
            leave_time__isnull=True,
        )
    )
    if actor.kind == "member":
        qs = qs.filter(room_session_id=actor.room_session_id)
    member = qs.first()
    if member is None:
        raise NotFound("Member not found.", attribute="member_id")
    return member


def _number(params: dict, key: str, low: float, high: float) -> float:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise InvalidParameter(f"Must be a number from {low:g} to {high:g}.", attribute=key)
    return float(value)


def position_validate(value, *, attribute: str = "position") -> str:
    """``auto``, ``off-canvas``, ``reserved-N`` or ``standard-N``. Raises ``InvalidParameter``."""
    import re

    if not isinstance(value, str) or not re.match(POSITION_RE_TEXT, value):
        raise InvalidParameter("Must be auto, off-canvas, reserved-N or standard-N.", attribute=attribute)
    return value


def _meta_keys(params: dict) -> list[str]:
    keys = params.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and len(k) <= 200 for k in keys):
        raise InvalidParameter("Must be a non-empty list of strings.", attribute="keys")
    return keys


def _apply(member: Member, action: str, params: dict) -> list[str]:
    """Change ``member`` in memory for ``action``; return the names of the fields that changed."""
    changes: dict = {}
    if action in ("audio_mute", "audio_unmute"):
        changes["audio_muted"] = action == "audio_mute"
    elif action in ("video_mute", "video_unmute"):
        changes["video_muted"] = action == "video_mute"
    elif action == "deaf":  # SignalWire: deaf also mutes the member's microphone
        changes.update(deaf=True, audio_muted=True)
    elif action == "undeaf":  # … and undeaf unmutes it again
        changes.update(deaf=False, audio_muted=False)
    elif action == "set_input_volume":
        changes["input_volume"] = _number(params, "volume", VOLUME_MIN_DB, VOLUME_MAX_DB)
    elif action == "set_output_volume":
        changes["output_volume"] = _number(params, "volume", VOLUME_MIN_DB, VOLUME_MAX_DB)
    elif action == "set_input_sensitivity":
        changes["input_sensitivity"] = _number(params, "value", SENSITIVITY_MIN, SENSITIVITY_MAX)
    elif action == "set_position":
        changes["position"] = position_validate(params.get("position"))
    elif action == "set_meta":
        changes["meta"] = validate_meta(params.get("meta"))
    elif action == "update_meta":
        update = params.get("meta")
        if not isinstance(update, dict):
            raise InvalidParameter("Must be a JSON object.", attribute="meta")
        changes["meta"] = validate_meta({**member.meta, **update})
    elif action == "delete_meta":
        keys = _meta_keys(params)
        changes["meta"] = {k: v for k, v in member.meta.items() if k not in keys}
    elif action == "raise_hand":
        changes.update(hand_raised=True)
        if not member.hand_raised:
            member.hand_raised_at = timezone.now()
    elif action == "lower_hand":
        changes["hand_raised"] = False
        member.hand_raised_at = None
    updated = []
    for field, value in changes.items():
        if getattr(member, field) != value:
            setattr(member, field, value)
            updated.append(field)
    return updated


# Model field → name in the event payload.
_PAYLOAD_NAMES = {"hand_raised": "handraised"}


@transaction.atomic
def member_action(*, actor: Actor, member_id: uuid.UUID | str, action: str, params: dict) -> Member:
    """Apply ``action`` to the present member ``member_id`` as ``actor`` and return the member.

    Actions: ``audio_mute``/``audio_unmute``, ``video_mute``/``video_unmute``, ``deaf``/``undeaf`` (deaf also
    mutes, undeaf also unmutes), ``set_input_volume``/``set_output_volume`` ``{volume}`` (dB −50..50),
    ``set_input_sensitivity`` ``{value}`` (0..100), ``set_position`` ``{position}``, ``set_meta`` ``{meta}``
    (replace), ``update_meta`` ``{meta}`` (merge), ``delete_meta`` ``{keys}``, ``raise_hand``/``lower_hand``,
    ``remove`` (``room.member.remove``; one's own ``screen``/``device`` child needs ``room.self.screenshare`` /
    ``room.self.additional_source`` instead and leaves with reason ``left``), ``promote`` ``{permissions?, join_audio_muted?, join_video_muted?, meta?}``/``demote``,
    ``send_reaction`` ``{reaction}`` (oneself only; no permission).

    Raises ``NotFound`` (-32004) when the member is not within reach, ``PermissionMissing`` (-32003) naming
    ``room.self.<x>`` or ``room.member.<x>``, ``InvalidParameter`` (-32602) with the attribute.
    """
    if action not in MEMBER_ACTIONS:
        raise InvalidParameter(f"Unknown member action '{action}'.", attribute="action")
    params = params or {}
    member = member_resolve(actor=actor, member_id=member_id)
    suffix, self_only = MEMBER_ACTIONS[action]
    is_self = actor.member_id is not None and str(actor.member_id) == str(member.id)
    if self_only and not is_self:
        raise NotFound("Member not found.", attribute="member_id")
    own_child = is_own_child(actor, member)
    if action == "remove" and own_child:
        actor.require(CHILD_PERMISSIONS[member.type])
    elif suffix in ("remove", "promote", "demote"):
        actor.require(f"room.member.{suffix}")
    elif suffix is not None:
        actor.require(member_action_permission(suffix, actor_id=actor.member_id, target_id=member.id))
    session = member.room_session
    audit = dict(
        project_id=session.project_id,
        room_session_id=session.id,
        target_type="member",
        target_id=str(member.id),
        target_name=member.name,
        **actor.audit_fields(),
    )

    if action == "remove":
        from rooms.services.sessions import member_leave

        audit_record(action="member.remove", **audit)
        member_leave(member_id=member.id, reason="left" if own_child else "removed")
        member.refresh_from_db()
        return member
    if action == "send_reaction":
        reaction = params.get("reaction")
        if not isinstance(reaction, str) or not reaction.strip() or len(reaction) > REACTION_MAX_CHARS:
            raise InvalidParameter(f"Must be a string of 1–{REACTION_MAX_CHARS} characters.", attribute="reaction")
        event_emit(
            "member.reaction",
            project_id=session.project_id,
            room_id=session.room_id,
            room_session_id=session.id,
            member_id=member.id,
            params={
                "room_session_id": session.id,
                "room_id": session.room_id,
                "member_id": member.id,
                "reaction": reaction,
            },
        )
        return member
    if action in ("promote", "demote"):
        return _member_stage(member=member, session=session, promote=action == "promote", params=params, audit=audit)

    updated = _apply(member, action, params)
    if updated:
        member.save(update_fields=[*updated, "hand_raised_at"] if "hand_raised" in updated else updated)
        audit_record(action=f"member.{action}", details={"updated": updated}, **audit)
        member_updated_emit(member, session=session, updated=updated)
    return member


def member_updated_emit(member: Member, *, session: RoomSession, updated: list[str]) -> None:
    """Emit ``member.updated`` ``{"member": {..., "updated": [payload names]}}`` and send the media-relevant
    fields to the worker as ``media.member_update``."""
    payload = member_payload(member, room_id=session.room_id)
    payload["updated"] = [_PAYLOAD_NAMES.get(f, f) for f in updated]
    event_emit(
        "member.updated",
        project_id=session.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        member_id=member.id,
        params={"room_session_id": session.id, "room_id": session.room_id, "member": payload},
    )
    media_fields = {f: getattr(member, f) for f in updated if f in protocol.MEMBER_UPDATE_FIELDS}
    if media_fields:
        media_command(
            room_session=session,
            message={"type": protocol.MEMBER_UPDATE, "member_id": str(member.id), "fields": media_fields},
        )


def _member_stage(*, member: Member, session: RoomSession, promote: bool, params: dict, audit: dict) -> Member:
    """Move a member between audience and member (Jam's stage). The member alone receives
    ``member.promoted``/``member.demoted`` with its new ``permissions``; the room gets ``member.updated`` and
    ``room.audience_count``."""
    target = Member.JoinAs.MEMBER if promote else Member.JoinAs.AUDIENCE
    permissions: list[str] = []
    if promote:
        permissions = params.get("permissions", list(DEFAULT_PERMISSIONS))
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise InvalidParameter("Must be a list of permission strings.", attribute="permissions")
        if unknown_permissions(permissions):
            raise InvalidParameter(f"Unknown permissions: {unknown_permissions(permissions)}.", attribute="permissions")
        for key in ("join_audio_muted", "join_video_muted"):
            if key in params and not isinstance(params[key], bool):
                raise InvalidParameter("Must be a boolean.", attribute=key)
        if "meta" in params:
            validate_meta(params["meta"])
    if member.join_as == target:
        return member
    if promote:
        if "meta" in params:
            member.meta = params["meta"]
        member.permissions = permissions
        member.audio_muted = params.get("join_audio_muted", False)
        member.video_muted = params.get("join_video_muted", False)
    else:
        member.permissions = []
        member.audio_muted = True
        member.video_muted = True
        member.hand_raised = False
        member.hand_raised_at = None
    member.join_as = target
    member.save()
    audit_record(action="member.promote" if promote else "member.demote", **audit)
    event_emit(
        "member.promoted" if promote else "member.demoted",
        project_id=session.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        member_id=member.id,
        to_member_id=member.id,
        params={
            "room_session_id": session.id,
            "room_id": session.room_id,
            "member_id": member.id,
            "join_as": member.join_as,
            "permissions": member.permissions,
            "authorization": {"join_as": member.join_as, "permissions": member.permissions},
        },
    )
    member_updated_emit(
        member, session=session, updated=["join_as", "audio_muted", "video_muted", "meta", "hand_raised"]
    )
    audience_count_emit(session)
    return member
