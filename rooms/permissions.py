"""The 42 permission strings (SignalWire's, verbatim; DESIGN §3) and the checks every transport shares.

Check, then do: a transport resolves the acting member and the target, calls ``check_*`` (which raises
``PermissionMissing`` naming the permission, JSON-RPC -32003 / HTTP 403), then calls the service.
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.exceptions import PermissionMissing

SELF_PERMISSIONS = (
    "room.self.audio_mute",
    "room.self.audio_unmute",
    "room.self.video_mute",
    "room.self.video_unmute",
    "room.self.deaf",
    "room.self.undeaf",
    "room.self.set_input_volume",
    "room.self.set_output_volume",
    "room.self.set_input_sensitivity",
    "room.self.set_position",
    "room.self.set_meta",
    "room.self.raisehand",
    "room.self.lowerhand",
    "room.self.screenshare",
    "room.self.additional_source",
)
MEMBER_PERMISSIONS = (
    "room.member.audio_mute",
    "room.member.audio_unmute",
    "room.member.video_mute",
    "room.member.video_unmute",
    "room.member.deaf",
    "room.member.undeaf",
    "room.member.set_input_volume",
    "room.member.set_output_volume",
    "room.member.set_input_sensitivity",
    "room.member.set_position",
    "room.member.set_meta",
    "room.member.raisehand",
    "room.member.lowerhand",
    "room.member.remove",
    "room.member.promote",
    "room.member.demote",
)
ROOM_PERMISSIONS = (
    "room.hide_video_muted",
    "room.show_video_muted",
    "room.list_available_layouts",
    "room.set_layout",
    "room.set_position",
    "room.set_meta",
    "room.lock",
    "room.unlock",
    "room.playback",
    "room.playback_seek",
    "room.prioritize_handraise",
    "room.recording",
    "room.stream",
)
ALL_PERMISSIONS = SELF_PERMISSIONS + MEMBER_PERMISSIONS + ROOM_PERMISSIONS
assert len(ALL_PERMISSIONS) == len(set(ALL_PERMISSIONS)) == 44  # 15 self + 16 member + 13 room

# Default set when a token names none (reference §1.3).
DEFAULT_PERMISSIONS = (
    "room.self.audio_mute",
    "room.self.audio_unmute",
    "room.self.video_mute",
    "room.self.video_unmute",
    "room.self.deaf",
    "room.self.undeaf",
    "room.self.set_input_volume",
    "room.self.set_output_volume",
    "room.self.set_input_sensitivity",
    "room.self.screenshare",
    "room.self.additional_source",
)

# A moderator's token (dashboard "join as moderator"): everything.
MODERATOR_PERMISSIONS = ALL_PERMISSIONS


def unknown_permissions(permissions: Iterable[str]) -> list[str]:
    """The strings of ``permissions`` that are not among the 42, in input order."""
    known = set(ALL_PERMISSIONS)
    return [p for p in permissions if p not in known]


def require(granted: Iterable[str], permission: str) -> None:
    """Raise ``PermissionMissing(permission)`` unless ``permission`` is in ``granted``."""
    if permission not in set(granted):
        raise PermissionMissing(permission)


def member_action_permission(action: str, *, actor_id, target_id) -> str:
    """The permission for ``action`` (e.g. ``audio_mute``) done by ``actor_id`` to ``target_id``:
    ``room.self.<action>`` on oneself, ``room.member.<action>`` on another member."""
    scope = "self" if str(actor_id) == str(target_id) else "member"
    return f"room.{scope}.{action}"
