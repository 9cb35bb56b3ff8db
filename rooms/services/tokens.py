"""Minting room tokens (DESIGN §3, reference §1.3). Validation of the fields happens in the REST input
serializer; this service applies SignalWire's defaults, signs, and records who minted what."""

from __future__ import annotations

import logging
import secrets
import string

from django.db import transaction

from rooms.actors import Actor
from rooms.events import audit_record
from rooms.exceptions import InvalidParameter
from rooms.models import Project
from rooms.permissions import DEFAULT_PERMISSIONS, unknown_permissions
from rooms.tokens import MAX_EXPIRES_IN, room_token_mint

logger = logging.getLogger(__name__)

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_user_name(length: int = 12) -> str:
    """SignalWire's default ``user_name``: random alphanumeric, one per token."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


@transaction.atomic
def room_token_create(*, project: Project, actor: Actor, fields: dict, expires_in: int | None = None) -> str:
    """Sign a room token for ``project`` and return it.

    ``fields``: validated token fields (``room_name`` required; datetimes as ``datetime``). Defaults:
    ``user_name`` random, ``permissions`` ``DEFAULT_PERMISSIONS`` (``[]`` for audience), ``join_as`` member,
    ``auto_create_room`` true, ``media_allowed`` all. ``expires_in``: seconds 1..2592000 (default 24 h).
    The room need not exist: a token for a missing room with ``auto_create_room`` false mints, and the join fails.
    Raises ``InvalidParameter`` for unknown permissions (named in the message) or a bad ``expires_in``.
    """
    claims = dict(fields)
    if not claims.get("room_name"):
        raise InvalidParameter("room_name is required.", attribute="room_name")
    if expires_in is not None and not 1 <= int(expires_in) <= MAX_EXPIRES_IN:
        raise InvalidParameter(f"expires_in must be 1..{MAX_EXPIRES_IN} seconds.", attribute="expires_in")
    claims["user_name"] = claims.get("user_name") or random_user_name()
    claims.setdefault("join_as", "member")
    claims.setdefault("auto_create_room", True)
    claims.setdefault("media_allowed", "all")
    permissions = claims.get("permissions")
    if permissions is None:
        permissions = list(DEFAULT_PERMISSIONS)
    unknown = unknown_permissions(permissions)
    if unknown:
        raise InvalidParameter(f"Unknown permissions: {', '.join(unknown)}.", attribute="permissions")
    claims["permissions"] = list(dict.fromkeys(permissions))
    token, payload = room_token_mint(project=project, claims=claims, expires_in=expires_in)
    audit_record(
        project_id=project.id,
        action="room_token.create",
        target_type="room",
        target_name=claims["room_name"],
        details={"jti": payload["jti"], "join_as": payload.get("join_as"), "user_name": payload["user_name"]},
        **actor.audit_fields(),
    )
    logger.info("room token minted project_id=%s room=%s jti=%s", project.id, claims["room_name"], payload["jti"])
    return token
