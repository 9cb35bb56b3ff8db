"""Playbacks: a URL played into a live room session as a layer and an audio input (DESIGN §5 ``room.playback``).

One service for every transport: the REST views call the sync ``playback_start`` / ``playback_action``; the
signalling consumer runs the same three steps around its own request to the worker
(``playback_start_prepare`` → ``media.egress`` ``playback.start`` → ``playback_start_confirmed`` or
``playback_start_refused``). Per-object actions are acknowledged the same way: ``playback_action_prepare``
(checks, nothing written) → the worker applies ``playback.{action}`` → ``playback_action_apply``
(``rooms.signalling.egress.egress_object_action``: state, audit, ``playback.updated`` / ``playback.ended``) or
``playback_action_refused`` (the worker's refusal as the caller's error; a playback the worker no longer holds
is failed with ``worker_lost``).

Start, step by step:

1. ``playback_start_prepare`` checks ``room.playback`` (and ``room.playback_seek`` for ``seek_position``),
   validates the parameters, needs the session's media worker (``MediaUnavailable`` before anything is written),
   then creates the ``Playback`` row (``opening``) and returns the ``media.egress`` command.
2. The worker opens the URL beside the session's command queue (``media.worker.playback``) and answers once it
   plays (``media.answer``) or failed to open it (``media.error`` ``invalid_media`` after it failed the row with
   the reason and emitted ``playback.ended``).
3. ``playback_start_confirmed`` turns the row ``playing`` (``paused`` stays: it was paused while opening) and only
   then emits ``playback.started``; ``playback_start_refused`` turns a refusal into the
   caller's error: the worker's reason → ``InvalidParameter`` on ``url`` (422 / -32602, ``data.reason``); a
   playback stopped while it opened → ``Conflict`` (409 / -32009); no answer → the row fails
   (``media_unavailable``), the worker is told to drop it should it open later, ``MediaUnavailable``
   (503 / -32010).

Parameters (REST body and RPC params): ``url`` (``http``, ``https``, ``rtmp``, ``rtmps`` or ``rtsp``, at most 1000
characters; local files are not played: a caller must not read the worker's disk), ``volume`` (dB, -50..50,
default 0), ``seek_position`` (ms ≥ 0, where to start), ``layout`` (a layout name of the project or a built-in
one), ``positions`` (``{member_id | "self": position}``; ``self`` is the playback's own layer).

SSRF guard (``rooms.urlguard``): unless ``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS``, a URL whose host is or resolves to
a loopback, private, link-local (169.254.169.254 metadata), CGNAT, reserved or multicast address is refused
before anything is written: ``InvalidParameter`` on ``url`` with ``data.reason`` ``url_not_allowed`` (422 /
-32602). A host that does not resolve here goes on to the worker, which resolves and checks it again right before
opening (DNS rebinding) and fails the playback with reason ``url_not_allowed`` (or ``unreachable``).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from media import protocol
from rooms.actors import Actor
from rooms.exceptions import Conflict, InvalidParameter, MediaUnavailable, NotFound, ParleyError
from rooms.models import Layout, Member, Playback, RoomSession
from rooms.services import egress as egress_service
from rooms.services.members import position_validate
from rooms.services.sessions import session_audit
from rooms.urlguard import url_host_refused

logger = logging.getLogger(__name__)

URL_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp")
START_KEYS = frozenset({"url", "volume", "seek_position", "positions", "layout"})
# verb of ``POST /playbacks/{id}/{verb}`` / RPC ``playback.{verb}`` → the permission it needs
ACTIONS = {
    "pause": "room.playback",
    "resume": "room.playback",
    "seek": "room.playback_seek",
    "set_volume": "room.playback",
    "stop": "room.playback",
}
LIVE_STATES = (Playback.State.OPENING, Playback.State.PLAYING, Playback.State.PAUSED)


def _volume(value, attribute: str = "volume") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -50 <= value <= 50:
        raise InvalidParameter("Must be a number from -50 to 50 (dB).", attribute=attribute)
    return float(value)


def playback_url_check(url) -> None:
    """The SSRF guard at the API/RPC boundary (see the module docstring). Does nothing for a value that is not a
    URL string (``playback_params_validate`` refuses it) or when ``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS``. Raises
    ``InvalidParameter`` (422 / -32602) on ``url`` with ``data.reason`` ``url_not_allowed``."""
    if settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS or not isinstance(url, str) or len(url) > 1000:
        return
    try:
        refused = url_host_refused(url)
    except (OSError, UnicodeError, ValueError):
        return  # no address here (or no valid URL): the worker checks again, the shape check refuses the rest
    if refused:
        raise InvalidParameter(
            "The URL's host is a private, loopback or link-local address, which is not allowed.",
            attribute="url",
            data={"reason": "url_not_allowed"},
        )


def playback_params_validate(*, session: RoomSession, params: dict) -> dict:
    """The row fields of a start: ``{"url", "volume", "position_ms", "layout", "positions"}``.

    Raises ``InvalidParameter`` naming the attribute: an unknown key, a URL of another scheme or without a host,
    a volume outside -50..50, a negative or fractional ``seek_position``, an unknown layout, a position that is
    not ``auto|off-canvas|reserved-N|standard-N`` or keyed by something other than ``self`` or a member of the
    session."""
    unknown = sorted(set(params) - START_KEYS)
    if unknown:
        raise InvalidParameter(f"Unknown parameter '{unknown[0]}'.", attribute=unknown[0])
    url = params.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or len(url) > 1000 or parts.scheme not in URL_SCHEMES or not parts.hostname or _bad_port(parts):
        raise InvalidParameter(
            "Must be an http(s), rtmp(s) or rtsp URL with a host, at most 1000 characters.", attribute="url"
        )
    seek = params.get("seek_position", 0)
    if isinstance(seek, bool) or not isinstance(seek, int) or seek < 0:
        raise InvalidParameter("Must be a whole number of milliseconds ≥ 0.", attribute="seek_position")
    layout = params.get("layout") or ""
    if not isinstance(layout, str) or len(layout) > 100:
        raise InvalidParameter("Must be a layout name.", attribute="layout")
    if (
        layout
        and not Layout.objects.filter(Q(project__isnull=True) | Q(project_id=session.project_id), name=layout).exists()
    ):
        raise InvalidParameter(f"Unknown layout '{layout}'.", attribute="layout")
    positions = params.get("positions") or {}
    if not isinstance(positions, dict) or len(positions) > 300:
        raise InvalidParameter("Must be an object {member_id: position}.", attribute="positions")
    members = {k for k in positions if k != "self"}
    known = {
        str(pk)
        for pk in Member.objects.filter(room_session=session, id__in=[k for k in members if _is_uuid(k)]).values_list(
            "id", flat=True
        )
    }
    for key, position in positions.items():
        if key != "self" and key not in known:
            raise InvalidParameter(f"No member '{key}' in this session.", attribute=f"positions.{key}")
        position_validate(position, attribute=f"positions.{key}")
    return {
        "url": url,
        "volume": _volume(params.get("volume", 0)),
        "position_ms": seek,
        "layout": layout,
        "positions": positions,
    }


def _bad_port(parts) -> bool:
    try:
        parts.port  # noqa: B018 — raises ValueError for a port that is not 0..65535
    except ValueError:
        return True
    return False


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _live_session(actor: Actor) -> RoomSession:
    """The actor's live session, its row locked for the transaction (FOR NO KEY UPDATE of that row alone).

    Only the session row: a lock that also took the joined project row (plain ``FOR UPDATE`` of a join) conflicts
    with the ``FOR KEY SHARE`` locks that every concurrent insert referencing the project takes for its foreign
    key (the media worker's event rows), in the opposite order, and PostgreSQL aborted one of them as a deadlock.
    ``NO KEY UPDATE`` still serialises playback starts of a session and a session's end, and lets those inserts
    through."""
    session = (
        RoomSession.objects.select_for_update(of=("self",), no_key=True)
        .filter(id=actor.room_session_id, project_id=actor.project_id)
        .select_related("project")
        .first()
    )
    if session is None:
        raise NotFound("Room session not found.")
    if session.status != RoomSession.Status.IN_PROGRESS:
        raise Conflict("The room session has ended.")
    return session


def in_session(actor: Actor, room_session_id) -> Actor:
    """``actor`` acting inside the session ``room_session_id`` (REST and dashboard callers)."""
    return dataclasses.replace(actor, room_session_id=uuid.UUID(str(room_session_id)))


@transaction.atomic
def playback_start_prepare(*, actor: Actor, params: dict) -> tuple[str, dict, dict]:
    """Check, validate and create a starting playback in ``actor.room_session_id``.

    Returns ``(worker_channel, payload, command)``: the ``media.egress`` ``playback.start`` command goes to
    ``worker_channel``; ``payload`` is ``rooms.signalling.egress.playback_payload``. Raises
    ``PermissionMissing`` (``room.playback``; ``room.playback_seek`` with ``seek_position``), ``NotFound`` (no
    such session of the project), ``Conflict`` (the session has ended), ``InvalidParameter`` (``url`` with
    ``data.reason`` ``url_not_allowed``: see ``playback_url_check``), ``MediaUnavailable`` (no media worker holds the session; nothing is written)."""
    from rooms.signalling.egress import playback_payload

    actor.require("room.playback")
    if params.get("seek_position"):
        actor.require("room.playback_seek")
    playback_url_check(params.get("url"))  # resolves the host: before the session row is locked
    session = _live_session(actor)
    fields = playback_params_validate(session=session, params=params)
    if not session.media_worker:
        raise MediaUnavailable()
    playback = Playback.objects.create(project_id=session.project_id, room_session=session, **fields)
    session_audit(actor, session, "playback.start", target=playback, details={"url": fields["url"]})
    command = {
        "type": protocol.EGRESS,
        "room_session_id": str(session.id),
        "action": "playback.start",
        "object_id": str(playback.id),
        "url": fields["url"],
        "volume": fields["volume"],
        "position_ms": fields["position_ms"],
        "layout": fields["layout"],
        "positions": fields["positions"],
    }
    return session.media_worker, playback_payload(playback), command


def playback_start_confirmed(*, playback_id) -> dict:
    """The worker plays it: the row leaves ``opening`` for ``playing``, then ``playback.started`` is emitted; returns
    the payload."""
    from rooms.signalling import egress

    Playback.objects.filter(id=playback_id, state=Playback.State.OPENING).update(
        state=Playback.State.PLAYING, updated_at=timezone.now()
    )
    return egress.egress_started(kind="playback", object_id=playback_id)


def playback_start_refused(*, playback_id, worker_channel: str) -> ParleyError:
    """The start was not acknowledged: the error for the caller (see the module docstring). When no worker
    answered, the row is failed (``media_unavailable``) and ``playback.stop`` is sent to ``worker_channel`` so a
    URL that opens late is dropped."""
    playback = Playback.objects.filter(id=playback_id).first()
    if playback is None:
        return NotFound("Playback not found.", attribute="playback_id")
    if playback.state == Playback.State.FAILED and playback.failure_reason in protocol.PLAYBACK_OPEN_FAILURES:
        reason = playback.failure_reason
        return InvalidParameter(
            f"The media worker could not play the URL: {protocol.PLAYBACK_OPEN_FAILURES[reason]}",
            attribute="url",
            data={"reason": reason},
        )
    if playback.state == Playback.State.COMPLETED:
        return Conflict("The playback was stopped before its URL opened.")
    failed = Playback.objects.filter(id=playback_id, state__in=LIVE_STATES).update(
        state=Playback.State.FAILED, failure_reason="media_unavailable", ended_at=timezone.now()
    )
    if failed and worker_channel:
        command = {
            "type": protocol.EGRESS,
            "room_session_id": str(playback.room_session_id),
            "action": "playback.stop",
            "object_id": str(playback.id),
        }
        try:
            async_to_sync(get_channel_layer().send)(worker_channel, command)
        except ChannelFull:
            logger.warning("media worker channel full room_session_id=%s", playback.room_session_id)
    logger.warning("playback start: no media worker answer playback_id=%s", playback_id)
    return MediaUnavailable()


def playback_start(*, actor: Actor, room_session_id, params: dict, timeout_seconds: float | None = None) -> dict:
    """Start playing ``params["url"]`` into the live session and return the playback payload once the media
    worker plays it (``playback.started`` emitted). Blocks at most ``timeout_seconds`` (default
    ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``). Raises as ``playback_start_prepare`` and
    ``playback_start_refused``."""
    channel, payload, command = playback_start_prepare(actor=in_session(actor, room_session_id), params=params)
    if timeout_seconds is None:
        timeout_seconds = egress_service.answer_timeout_seconds()
    try:
        egress_service.media_request(channel, command, timeout_seconds=timeout_seconds)
    except MediaUnavailable as exc:
        raise playback_start_refused(playback_id=payload["id"], worker_channel=channel) from exc
    return playback_start_confirmed(playback_id=payload["id"])


def playback_action_prepare(*, actor: Actor, playback: Playback, action: str, params: dict | None = None) -> tuple:
    """Check an ``action`` (a key of ``ACTIONS``) on ``playback`` without writing anything. Returns
    ``(worker_channel or "", command)``: the ``media.egress`` ``playback.{action}`` to send and wait for; no channel
    (no worker holds the session) only for ``stop``, which then just records the end. Raises ``NotFound`` (unknown
    action), ``Conflict`` (the playback or its session has ended), ``PermissionMissing``, ``InvalidParameter``
    (``volume`` dB -50..50, ``position_ms`` ms ≥ 0), ``MediaUnavailable`` (no worker holds the session)."""
    if action not in ACTIONS:
        raise NotFound(f"Unknown playback action '{action}'.")
    if playback.state not in LIVE_STATES:
        raise Conflict(f"The playback is {playback.state}.")
    session = RoomSession.objects.filter(id=playback.room_session_id).first()
    if session is None or session.status != RoomSession.Status.IN_PROGRESS:
        raise Conflict("The room session has ended.")
    actor.require(ACTIONS[action])
    params = params or {}
    extra: dict = {}
    if action == "set_volume":
        extra = {"volume": _volume(params.get("volume"))}
    elif action == "seek":
        position_ms = params.get("position_ms")
        if isinstance(position_ms, bool) or not isinstance(position_ms, int) or position_ms < 0:
            raise InvalidParameter("Must be a whole number of milliseconds ≥ 0.", attribute="position_ms")
        extra = {"position_ms": position_ms}
    if not session.media_worker and action != "stop":
        raise MediaUnavailable()
    command = {
        "type": protocol.EGRESS,
        "room_session_id": str(session.id),
        "action": f"playback.{action}",
        "object_id": str(playback.id),
        **extra,
    }
    return session.media_worker, command


def playback_action_refused(reply: dict | None, *, action: str, playback_id) -> ParleyError | None:
    """The caller's error for the worker's ``media.error`` ``reply`` to ``playback.{action}`` (None: no reply,
    within the timeout): ``not_seekable`` → ``Conflict`` (409 / -32009, ``data.reason``); ``not_found`` → ``NotFound``
    on ``playback_id`` (404 / -32004: the worker no longer plays it) except for ``stop``, whose end is recorded
    anyway (None); ``bad_request`` → ``InvalidParameter``; anything else → ``MediaUnavailable`` (503 / -32010).

    On ``not_found`` for a playback whose start the worker had answered (``playing``/``paused``; an ``opening``
    one may not have reached it yet), the row is failed with ``worker_lost`` and ``playback.ended`` emitted: no
    worker plays it, and one that holds the session heartbeats it, so the orphan sweep would never end it."""
    code = (reply or {}).get("code")
    message = str((reply or {}).get("message") or "")[:300] or None
    if code == "not_seekable":
        return Conflict(message, data={"reason": "not_seekable"})
    if code == "not_found":
        if action == "stop":
            return None
        from media.worker.db import _playback_failed

        if Playback.objects.filter(id=playback_id, state__in=(Playback.State.PLAYING, Playback.State.PAUSED)).exists():
            logger.warning("playback not held by its session's worker playback_id=%s action=%s", playback_id, action)
            _playback_failed(str(playback_id), "worker_lost")
        return NotFound("The media worker no longer plays this playback.", attribute="playback_id")
    if code == "bad_request":
        return InvalidParameter(message)
    return MediaUnavailable()


def playback_action_apply(*, actor: Actor, playback: Playback, action: str, params: dict | None = None) -> dict:
    """The worker applied it: write the state, emit ``playback.updated`` (``playback.ended`` for ``stop``) and
    return the payload (``rooms.signalling.egress.egress_object_action``)."""
    from rooms.signalling import egress

    _channel, payload, _command = egress.egress_object_action(
        actor=in_session(actor, playback.room_session_id),
        action=f"playback.{action}",
        params={**(params or {}), "playback_id": str(playback.id)},
    )
    return payload


def playback_action(
    *, actor: Actor, playback: Playback, action: str, params: dict | None = None, timeout_seconds: float | None = None
) -> dict:
    """Run ``action`` (a key of ``ACTIONS``; ``seek`` takes ``position_ms``, ``set_volume`` takes ``volume``) on a
    live playback and return its payload. The session's media worker is asked first and answers (or refuses);
    only then is the state written and ``playback.updated`` (``playback.ended`` for ``stop``) emitted. Raises as
    ``playback_action_prepare`` and ``playback_action_refused`` (``MediaUnavailable`` when no worker answered
    within ``timeout_seconds``, default ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``)."""
    channel, command = playback_action_prepare(actor=actor, playback=playback, action=action, params=params)
    if channel:
        if timeout_seconds is None:
            timeout_seconds = egress_service.answer_timeout_seconds()
        try:
            egress_service.media_request(channel, command, timeout_seconds=timeout_seconds)
        except MediaUnavailable as exc:
            refusal = playback_action_refused(getattr(exc, "reply", None), action=action, playback_id=playback.id)
            if refusal is not None:
                raise refusal from exc
    return playback_action_apply(actor=actor, playback=playback, action=action, params=params)
