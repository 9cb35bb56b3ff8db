"""Room tokens (DESIGN §3): JWTs signed with the project's own secret (HS512), minted by
``POST /api/video/room_tokens`` and verified by the WebSocket consumer and HTTP views alike.

Claims: ``iss`` "parley", ``aud`` "parley:room", ``sub`` the project id, ``jti``, ``iat``, ``exp``
(``expires_in`` seconds after minting, default 24 h), and SignalWire's fields under their own names:
``room_name``, ``user_name``, ``permissions``, ``join_as``, ``join_from``/``join_until``/``remove_at``
(epoch seconds), ``remove_after_seconds_elapsed``, ``auto_create_room``, ``join_audio_muted``,
``join_video_muted``, ``media_allowed``, ``end_room_session_on_leave``, ``enable_room_previews``,
``room_display_name``, ``room_meta``, ``meta``. The JOSE header carries ``typ: "VRT"`` as SignalWire's does.

Rejections raise a ``TokenError`` subclass with a distinct code: ``token_malformed``, ``token_bad_signature``,
``token_expired``, ``token_not_yet_valid`` (join_from), ``token_join_window_closed`` (join_until),
``token_wrong_project``.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.utils import timezone

from rooms import exceptions as exc
from rooms.models import Project

ALGORITHM = "HS512"
ISSUER = "parley"
AUDIENCE = "parley:room"
MAX_EXPIRES_IN = 30 * 24 * 3600
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class RoomGrant:
    """What a verified room token allows: the claims as Python values."""

    project_id: uuid.UUID
    jti: str
    room_name: str
    user_name: str
    permissions: tuple[str, ...]
    join_as: str = "member"
    join_from: datetime | None = None
    join_until: datetime | None = None
    remove_at: datetime | None = None
    remove_after_seconds_elapsed: int | None = None
    auto_create_room: bool = True
    join_audio_muted: bool = False
    join_video_muted: bool = False
    media_allowed: str = "all"
    end_room_session_on_leave: bool = False
    enable_room_previews: bool = False
    room_display_name: str | None = None
    room_meta: dict | None = None
    meta: dict = field(default_factory=dict)
    expires_at: datetime | None = None

    def has(self, permission: str) -> bool:
        return permission in self.permissions


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _from_epoch(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def room_token_mint(*, project: Project, claims: dict, expires_in: int | None = None) -> tuple[str, dict]:
    """Sign a room token for ``project``.

    ``claims``: already-validated SignalWire token fields (see module doc); datetimes are ``datetime`` objects.
    ``expires_in``: seconds, 1..30 days (default ``PARLEY_TOKEN_TTL_DEFAULT``, 24 h).
    Returns ``(token, payload)``. Audience tokens carry no permissions (SignalWire forces ``[]``).
    """
    now = timezone.now()
    ttl = int(expires_in or settings.PARLEY_TOKEN_TTL_DEFAULT)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(project.id),
        "jti": secrets.token_hex(16),
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl,
    }
    for key, value in claims.items():
        if value is None:
            continue
        payload[key] = _epoch(value) if isinstance(value, datetime) else value
    if payload.get("join_as") == "audience":
        payload["permissions"] = []
    token = jwt.encode(payload, project.token_secret, algorithm=ALGORITHM, headers={"typ": "VRT"})
    return token, payload


def room_token_verify(token: str, *, project: Project | None = None, at: datetime | None = None) -> RoomGrant:
    """Verify ``token`` and return its ``RoomGrant``.

    ``project``: when the caller already knows the project (an API-key request), a token of another project
    raises ``TokenWrongProject``; otherwise the project is the one named by ``sub``.
    ``at``: the instant to check the join window against (default now).
    Raises a ``TokenError`` subclass (HTTP 401, WebSocket close 4001) with the precise reason.
    """
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise exc.TokenMalformed()
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise exc.TokenMalformed() from e
    if header.get("alg") != ALGORITHM:
        raise exc.TokenMalformed("The token is not signed with HS512.")
    try:
        project_id = uuid.UUID(str(unverified.get("sub")))
    except ValueError as e:
        raise exc.TokenMalformed("The token names no project.") from e
    if project is not None and project.id != project_id:
        raise exc.TokenWrongProject()
    if project is None:
        project = Project.objects.filter(id=project_id).first()
        if project is None:
            raise exc.TokenBadSignature()
    try:
        claims = jwt.decode(
            token,
            project.token_secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise exc.TokenExpired() from e
    except jwt.InvalidSignatureError as e:
        raise exc.TokenBadSignature() from e
    except jwt.PyJWTError as e:
        raise exc.TokenMalformed(f"The token is not a valid room token ({e}).") from e
    if not isinstance(claims.get("room_name"), str) or not isinstance(claims.get("permissions", []), list):
        raise exc.TokenMalformed("The token lacks room_name or has malformed permissions.")

    grant = RoomGrant(
        project_id=project_id,
        jti=str(claims["jti"]),
        room_name=claims["room_name"],
        user_name=str(claims.get("user_name") or ""),
        permissions=tuple(claims.get("permissions", [])),
        join_as=claims.get("join_as", "member"),
        join_from=_from_epoch(claims.get("join_from")),
        join_until=_from_epoch(claims.get("join_until")),
        remove_at=_from_epoch(claims.get("remove_at")),
        remove_after_seconds_elapsed=claims.get("remove_after_seconds_elapsed"),
        auto_create_room=bool(claims.get("auto_create_room", True)),
        join_audio_muted=bool(claims.get("join_audio_muted", False)),
        join_video_muted=bool(claims.get("join_video_muted", False)),
        media_allowed=claims.get("media_allowed", "all"),
        end_room_session_on_leave=bool(claims.get("end_room_session_on_leave", False)),
        enable_room_previews=bool(claims.get("enable_room_previews", False)),
        room_display_name=claims.get("room_display_name"),
        room_meta=claims.get("room_meta"),
        meta=claims.get("meta") or {},
        expires_at=_from_epoch(claims.get("exp")),
    )
    at = at or timezone.now()
    if grant.join_from and at < grant.join_from:
        raise exc.TokenNotYetValid()
    if grant.join_until and at > grant.join_until:
        raise exc.TokenJoinWindowClosed()
    return grant
