"""WebSocket consumers: ``/ws/video/?token=…`` (participants, JSON-RPC 2.0) and ``/ws/events/?api_key=…``
(integrators' server notifications). The protocol is documented in ``docs/protocol.md``.

The consumers stay thin: validate a frame, dispatch to one handler, call a service through
``database_sync_to_async``, forward group events. Channel-layer messages handled here:
``parley.event`` (``rooms.events``), ``media.answer`` / ``media.error`` (replies of the media worker, matched by
``request_id``) and ``media.server_offer`` (worker-initiated renegotiation, forwarded as ``webrtc.offer``),
``media.sender_constraints`` (forwarded as ``webrtc.sender_constraints``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from media import protocol
from rooms import event_sender
from rooms.actors import Actor
from rooms.events import member_channel_group, project_group, room_session_group
from rooms.exceptions import (
    Conflict,
    InvalidParameter,
    MediaUnavailable,
    NotFound,
    ParleyError,
    RateLimited,
    TokenError,
)
from rooms.models import Playback
from rooms.services import members as member_services
from rooms.services import playbacks as playback_services
from rooms.services import sessions as session_services
from rooms.signalling import egress, fanout, rpc
from rooms.signalling.ratelimit import TokenBucket
from rooms.signalling.schemas import bool_param, only_keys, sdp_param, str_param, uuid_param
from rooms.tokens import room_token_verify

logger = logging.getLogger(__name__)

CLOSE_INVALID_TOKEN = 4001

RATE_PER_S = 20.0
RATE_BURST = 40
REACTION_RATE_PER_S = 1.0
REACTION_BURST = 5

# Grace timers of disconnected members outlive their consumer; kept here so they are not garbage-collected.
_expiry_tasks: set[asyncio.Task] = set()


def answer_timeout_seconds() -> float:
    """How long to wait for a media worker's reply (``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``, default
    ``media.protocol.ANSWER_TIMEOUT_SECONDS``)."""
    return float(getattr(settings, "PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS", protocol.ANSWER_TIMEOUT_SECONDS))


def _dumps(obj: dict) -> str:
    return json.dumps(obj, cls=DjangoJSONEncoder, separators=(",", ":"))


# Every socket of a room receives the same event body: encode each notification once per process.
_EVENT_TEXT_CACHE_SIZE = 512
_event_texts: OrderedDict[str, str] = OrderedDict()


def _event_text(body: dict) -> str:
    """The participant notification for an event body, as text (cached by event id)."""
    event_id = body.get("id")
    if event_id is None:
        return _dumps(rpc.event_notification(body))
    text = _event_texts.get(event_id)
    if text is None:
        text = _dumps(rpc.event_notification(body))
        _event_texts[event_id] = text
        if len(_event_texts) > _EVENT_TEXT_CACHE_SIZE:
            _event_texts.popitem(last=False)
    return text


class NotJoined(Conflict):
    code = "not_joined"
    default_message = "Join the room first (room.join)."


class Deferred:
    """A handler result that arrives later (it waits for the media worker); the consumer keeps reading frames
    and channel messages meanwhile, and sends the response when ``awaitable`` finishes."""

    def __init__(self, awaitable: Awaitable[dict]):
        self.awaitable = awaitable


async def _media_ensure_started() -> None:
    """Start the embedded media worker in this process when configured (``PARLEY_MEDIA_WORKER=embedded``)."""
    if getattr(settings, "PARLEY_MEDIA_WORKER", "embedded") != "embedded":
        return
    try:
        from media.worker import embedded
    except ModuleNotFoundError as e:
        if e.name in ("media.worker.embedded", "media.worker"):
            return
        raise
    await embedded.ensure_started()


async def _expire_after_grace(member_id: str) -> None:
    """Remove a member whose socket dropped once its reconnect grace is over (unless it came back).

    Runs in the loop's default thread pool, not on the consumers' one database thread: when a room's sockets all
    drop at once, dozens of expiries fall due together, and queued on that thread they would hold up every
    connect and request behind them (long enough for Daphne's 5 s WebSocket connect timeout to reset new sockets).
    """
    grace_s = float(settings.PARLEY_RECONNECT_GRACE_SECONDS)
    await asyncio.sleep(grace_s + 0.05)
    try:
        await database_sync_to_async(session_services.member_expire_if_disconnected, thread_sensitive=False)(
            member_id=member_id
        )
    except Exception:
        logger.exception("reconnect grace expiry failed member_id=%s", member_id)


MEMBER_METHODS = {
    "member.audio_mute": ("audio_mute", set()),
    "member.audio_unmute": ("audio_unmute", set()),
    "member.video_mute": ("video_mute", set()),
    "member.video_unmute": ("video_unmute", set()),
    "member.deaf": ("deaf", set()),
    "member.undeaf": ("undeaf", set()),
    "member.set_input_volume": ("set_input_volume", {"volume"}),
    "member.set_output_volume": ("set_output_volume", {"volume"}),
    "member.set_input_sensitivity": ("set_input_sensitivity", {"value"}),
    "member.set_position": ("set_position", {"position"}),
    "member.set_meta": ("set_meta", {"meta"}),
    "member.update_meta": ("update_meta", {"meta"}),
    "member.delete_meta": ("delete_meta", {"keys"}),
    "member.raise_hand": ("raise_hand", set()),
    "member.lower_hand": ("lower_hand", set()),
    "member.remove": ("remove", set()),
    "member.promote": ("promote", {"permissions", "join_audio_muted", "join_video_muted", "meta"}),
    "member.demote": ("demote", set()),
    "member.send_reaction": ("send_reaction", {"reaction"}),
}
# Methods whose target must be named (never defaults to oneself).
MEMBER_ID_REQUIRED = {"member.remove", "member.promote", "member.demote"}

ROOM_METHODS = {
    "room.set_layout": ("set_layout", {"name", "positions"}),
    "room.set_positions": ("set_positions", {"positions"}),
    "room.set_position": ("set_positions", {"positions"}),
    "room.set_hide_video_muted": ("set_hide_video_muted", {"value"}),
    "room.set_prioritize_handraise": ("set_prioritize_handraise", {"value"}),
    "room.lock": ("lock", set()),
    "room.unlock": ("unlock", set()),
    "room.set_meta": ("set_meta", {"meta"}),
    "room.update_meta": ("update_meta", {"meta"}),
    "room.delete_meta": ("delete_meta", {"keys"}),
    "room.remove_all_members": ("remove_all_members", set()),
    "room.end": ("end", set()),
}

EGRESS_START_METHODS = {
    "room.recording.start": "recording",
    "room.stream.start": "stream",
    "room.playback.start": "playback",
}
EGRESS_LIST_METHODS = {
    "room.recording.list": "recording",
    "room.stream.list": "stream",
    "room.playback.list": "playback",
}


class _Dispatch:
    """Dispatch without Channels' per-message ``aclose_old_connections()`` thread hop: handlers reach the ORM only
    through ``database_sync_to_async``, which closes stale connections itself, and a room's event fan-out
    would otherwise cost one hop to the single sync thread per member per event. Unknown message types are
    logged and dropped instead of killing the socket."""

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            logger.warning("dropped channel message of unknown type=%s", str(message.get("type"))[:64])
            return
        await handler(message)


class VideoConsumer(_Dispatch, AsyncWebsocketConsumer):
    """``/ws/video/?token=<room token>``: one participant's signalling socket (DESIGN §5).

    Room events arrive through the process's ``fanout.RoomFanout`` (one channel-layer message per process and
    event) into ``fanout_inbox``; they are sent between, never during, the handling of this socket's own
    messages, in the order the room's group received them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fanout_inbox: deque[dict] = deque()
        self.fanout_busy = False

    async def dispatch(self, message: dict) -> None:
        was_busy = self.fanout_busy
        self.fanout_busy = True
        try:
            await super().dispatch(message)
        finally:
            if not was_busy:
                await self.fanout_drain()

    async def fanout_drain(self) -> None:
        """Send the room events waiting in the inbox (the caller set ``fanout_busy``; this clears it)."""
        try:
            while self.fanout_inbox:
                message = self.fanout_inbox.popleft()
                try:
                    await self.parley_event(message)
                except Exception:
                    logger.exception("room event delivery failed member_id=%s", self.member_id)
        finally:
            self.fanout_busy = False

    def fanout_heavy(self, message: dict) -> bool:
        """Events after which this socket leaves its groups (channel-layer I/O) are delivered in a task."""
        body = message.get("event") or {}
        event_type = body.get("event_type")
        if event_type == "room.ended":
            return True
        member = (body.get("params") or {}).get("member") or {}
        return event_type == "member.left" and bool(self.member_id) and member.get("id") == self.member_id

    async def connect(self) -> None:
        self.grant = None
        self.member_id: str | None = None
        self.member_name = ""
        self.room_session_id: str | None = None
        self.room_id: str | None = None
        self.permissions: frozenset[str] = frozenset()
        self._groups: set[str] = set()
        self._room_groups: set[str] = set()
        self._pending: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._remove_task: asyncio.Task | None = None
        self._bucket = TokenBucket(rate_per_s=RATE_PER_S, burst=RATE_BURST)
        self._reaction_bucket = TokenBucket(rate_per_s=REACTION_RATE_PER_S, burst=REACTION_BURST)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        try:
            self.grant = await database_sync_to_async(room_token_verify)(token)
        except TokenError as e:
            logger.info("signalling socket refused: %s", e.code)
            await self.accept()
            await self.close(code=CLOSE_INVALID_TOKEN)
            return
        await _media_ensure_started()
        await self.accept()

    async def disconnect(self, code) -> None:
        self.fanout_inbox.clear()
        for task in list(self._tasks):
            task.cancel()
        for future in self._pending.values():
            future.cancel()
        self._cancel_remove_timer()
        member_id = getattr(self, "member_id", None)
        if member_id:
            try:
                still = await database_sync_to_async(session_services.member_disconnected)(
                    member_id=member_id, channel_name=self.channel_name
                )
            except Exception:
                logger.exception("marking disconnect failed member_id=%s", member_id)
                still = False
            if still:
                task = asyncio.get_running_loop().create_task(_expire_after_grace(member_id))
                _expiry_tasks.add(task)
                task.add_done_callback(_expiry_tasks.discard)
                logger.info("member disconnected member_id=%s room_session_id=%s", member_id, self.room_session_id)
        await self._groups_leave()

    # --- frames -------------------------------------------------------------------------------------------

    async def send_json(self, obj: dict) -> None:
        await self.send(text_data=_dumps(obj))

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.grant is None:  # refused token: the socket is closing, nothing is read
            return
        if text_data is None:
            await self.send_json(rpc.error_envelope(None, rpc.INVALID_REQUEST, "Only text frames are accepted."))
            return
        try:
            request = rpc.request_parse(text_data)
        except rpc.RpcError as e:
            data = dict(e.data or {})
            request_id = data.pop("id", None)
            await self.send_json(rpc.error_envelope(request_id, e.code, e.message, data or None))
            return
        try:
            if not self._bucket.take():
                raise RateLimited("Too many messages on this socket.")
            handler = self._handler(request.method)
            result = await handler(request.params)
        except ParleyError as e:
            await self._respond_error(request, e)
            return
        except Exception:
            logger.exception("signalling method failed method=%s member_id=%s", request.method, self.member_id)
            await self._respond(request, error=(rpc.INTERNAL_ERROR, "Internal error.", None))
            return
        if isinstance(result, Deferred):
            task = asyncio.get_running_loop().create_task(self._respond_later(request, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._respond(request, result=result)

    async def _respond_later(self, request: rpc.Request, deferred: Deferred) -> None:
        try:
            result = await deferred.awaitable
        except ParleyError as e:
            await self._respond_error(request, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("signalling method failed method=%s member_id=%s", request.method, self.member_id)
            await self._respond(request, error=(rpc.INTERNAL_ERROR, "Internal error.", None))
        else:
            await self._respond(request, result=result)

    async def _respond_error(self, request: rpc.Request, error: ParleyError) -> None:
        await self._respond(request, error=rpc.error_from_exception(error))

    async def _respond(self, request: rpc.Request, *, result: dict | None = None, error=None) -> None:
        if request.is_notification:
            return
        if error is not None:
            await self.send_json(rpc.error_envelope(request.id, *error))
        else:
            await self.send_json(rpc.result_envelope(request.id, result or {}))

    def _handler(self, method: str) -> Callable[[dict], Awaitable]:
        if method in MEMBER_METHODS:
            return lambda params: self._member_method(method, params)
        if method in ROOM_METHODS:
            return lambda params: self._room_method(method, params)
        if method in EGRESS_START_METHODS:
            return lambda params: self._egress_start(EGRESS_START_METHODS[method], params)
        if method in EGRESS_LIST_METHODS:
            return lambda params: self._egress_list(EGRESS_LIST_METHODS[method], params)
        if method in egress.OBJECT_ACTIONS:
            return lambda params: self._egress_object(method, params)
        handler = {
            "room.join": self.rpc_room_join,
            "room.leave": self.rpc_room_leave,
            "room.get_members": self.rpc_room_get_members,
            "room.get_meta": self.rpc_room_get_meta,
            "member.get_meta": self.rpc_member_get_meta,
            "room.list_available_layouts": self.rpc_room_list_available_layouts,
            "room.screenshare.start": lambda params: self._child_add("screen", params),
            "room.device.add": lambda params: self._child_add("device", params),
            "webrtc.offer": self.rpc_webrtc_offer,
            "webrtc.answer": self.rpc_webrtc_answer,
        }.get(method)
        if handler is None:
            raise _MethodNotFound(method)
        return handler

    # --- state ----------------------------------------------------------------------------------------------

    def actor(self) -> Actor:
        if not self.member_id:
            raise NotJoined()
        return Actor(
            project_id=self.grant.project_id,
            kind="member",
            id=self.member_id,
            name=self.member_name,
            interface="signalling",
            permissions=self.permissions,
            member_id=uuid.UUID(self.member_id),
            room_session_id=uuid.UUID(self.room_session_id),
        )

    async def _groups_join(self, room_group: str, *own_groups: str) -> None:
        """Subscribe to the room session's group through the process's fan-out, and this socket's channel to
        ``own_groups`` (events addressed to this member alone)."""
        if room_group not in self._groups:
            await fanout.for_layer(self.channel_layer).subscribe(room_group, self)
            self._groups.add(room_group)
            self._room_groups.add(room_group)
        for name in own_groups:
            if name not in self._groups:
                await self.channel_layer.group_add(name, self.channel_name)
                self._groups.add(name)

    async def _groups_leave(self) -> None:
        room_groups = getattr(self, "_room_groups", set())
        for name in list(getattr(self, "_groups", ())):
            if name in room_groups:
                await fanout.for_layer(self.channel_layer).unsubscribe(name, self)
            else:
                await self.channel_layer.group_discard(name, self.channel_name)
        if hasattr(self, "_groups"):
            self._groups.clear()
            self._room_groups.clear()

    def _cancel_remove_timer(self) -> None:
        task = getattr(self, "_remove_task", None)
        if task is not None:
            task.cancel()
            self._remove_task = None

    def _start_remove_timer(self, remove_at) -> None:
        """``remove_at`` / ``remove_after_seconds_elapsed``: remove the member (``member.left`` reason
        ``remove_at``) at that instant."""
        self._cancel_remove_timer()
        if remove_at is None:
            return
        member_id = self.member_id

        async def _remove() -> None:
            await asyncio.sleep(max(0.0, (remove_at - timezone.now()).total_seconds()))
            await database_sync_to_async(session_services.member_leave)(member_id=member_id, reason="remove_at")

        self._remove_task = asyncio.get_running_loop().create_task(_remove())

    async def _detach(self) -> None:
        """The member is gone (left, removed, timed out, session ended): forget it and leave its groups."""
        self._cancel_remove_timer()
        self.member_id = None
        self.room_session_id = None
        self.room_id = None
        self.permissions = frozenset()
        await self._groups_leave()

    # --- media worker requests -------------------------------------------------------------------------------

    async def _media_request(self, command: dict, *, channel: str) -> dict:
        """Send ``command`` with our ``reply_channel`` and a fresh ``request_id``; wait for ``media.answer``.
        Raises ``MediaUnavailable`` on ``media.error``, a full channel or no reply within the timeout."""
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.channel_layer.send(
                channel, {**command, "reply_channel": self.channel_name, "request_id": request_id}
            )
            reply = await asyncio.wait_for(future, timeout=answer_timeout_seconds())
        except (TimeoutError, ChannelFull) as e:
            raise MediaUnavailable() from e
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == protocol.ERROR:
            refused = MediaUnavailable(str(reply.get("message") or "The media worker refused the request.")[:300])
            refused.reply = reply  # the worker's ``media.error`` (``code``), for callers that map refusals
            raise refused
        return reply

    async def media_answer(self, message: dict) -> None:
        future = self._pending.get(str(message.get("request_id")))
        if future is not None and not future.done():
            future.set_result(message)

    async def media_error(self, message: dict) -> None:
        await self.media_answer(message)

    async def media_server_offer(self, message: dict) -> None:
        """Worker-initiated renegotiation: forward as a ``webrtc.offer`` notification."""
        await self.send_json(
            rpc.notification("webrtc.offer", {"member_id": message.get("member_id"), "sdp": message.get("sdp")})
        )

    async def media_sender_constraints(self, message: dict) -> None:
        """The worker asks the member to send its camera at most at ``width``×``height`` px and
        ``max_framerate`` fps (the size it is drawn at on the canvas): a ``webrtc.sender_constraints``
        notification, applied by the SDK with ``RTCRtpSender.setParameters``."""
        params = {"member_id": message.get("member_id")}
        for name in ("width", "height", "max_framerate"):
            value = message.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                return
            params[name] = value
        await self.send_json(rpc.notification("webrtc.sender_constraints", params))

    async def media_member_dropped(self, message: dict) -> None:
        """The worker no longer carries a member's media (``ice_timeout``, ``ice_failed``, ``worker_shutdown``,
        ``session_end``): tell the client with a ``media.dropped`` event; it may rejoin media with
        ``webrtc.offer``. The member stays joined (signalling-only)."""
        await self.send_json(
            rpc.notification(
                "event",
                {
                    "event_type": "media.dropped",
                    "timestamp": None,
                    "params": {
                        "room_session_id": message.get("room_session_id"),
                        "member_id": message.get("member_id"),
                        "reason": message.get("reason"),
                    },
                },
            )
        )

    async def _worker_channel(self) -> str:
        return await database_sync_to_async(session_services.media_worker_of)(room_session_id=self.room_session_id)

    # --- group events ----------------------------------------------------------------------------------------

    async def parley_event(self, message: dict) -> None:
        body = message["event"]
        event_type = body.get("event_type")
        params = body.get("params") or {}
        if event_type == "member.left" and self.member_id and params.get("member", {}).get("id") == self.member_id:
            await self.send(text_data=_event_text(body))
            reason = params.get("reason")
            await self.send_json(
                rpc.notification(
                    "event",
                    {
                        "event_type": "room.left",
                        "timestamp": body.get("timestamp"),
                        "params": {
                            "room_session_id": self.room_session_id,
                            "room_id": self.room_id,
                            "member_id": self.member_id,
                            "reason": reason,
                        },
                    },
                )
            )
            if reason == "room_ended":  # stay in the room group for room.ended
                self._cancel_remove_timer()
                self.member_id = None
                return
            await self._detach()
            return
        if event_type == "member.joined" and self.member_id and params.get("member", {}).get("id") == self.member_id:
            return  # the joiner learns of itself from room.joined
        if event_type in ("member.promoted", "member.demoted") and params.get("member_id") == self.member_id:
            self.permissions = frozenset(params.get("permissions") or ())
        await self.send(text_data=_event_text(body))
        if event_type == "room.ended" and body.get("room_session_id") == self.room_session_id:
            await self._detach()

    # --- methods ---------------------------------------------------------------------------------------------

    async def rpc_room_join(self, params: dict):
        """``room.join {sdp?, audio?, video?, member_id?}`` → ``{member_id, room_session: {…, members}, sdp}``."""
        only_keys(params, {"sdp", "audio", "video", "member_id"})
        sdp = sdp_param(params, required=False)
        audio = bool_param(params, "audio", default=True)
        video = bool_param(params, "video", default=True)
        resume_id = uuid_param(params, "member_id", required=False)
        if self.member_id:
            raise Conflict("This socket has already joined.")
        member, session, gate = await database_sync_to_async(_member_join_gated)(
            grant=self.grant, channel_name=self.channel_name, resume_member_id=resume_id
        )
        # The join has committed and released the room's row lock; its events wait behind ``gate`` until the
        # socket is in the room's groups, so it misses none of them (its own memberList.updated included).
        try:
            await self._groups_join(room_session_group(session.id), member_channel_group(member.id))
        except Exception:
            await self._groups_leave()
            await database_sync_to_async(session_services.member_leave)(member_id=member.id, reason="left")
            raise
        finally:
            gate.open()
        self.member_id = str(member.id)
        self.member_name = member.name
        self.room_session_id = str(session.id)
        self.room_id = str(session.room_id) if session.room_id else None
        self.permissions = frozenset(member.permissions)
        self._start_remove_timer(member.remove_at)
        snapshot = await database_sync_to_async(session_services.room_session_snapshot)(room_session_id=session.id)
        joined = {
            "room_session_id": self.room_session_id,
            "room_id": self.room_id,
            "member_id": self.member_id,
            "room_session": snapshot,
        }
        await self.send_json(
            rpc.notification("event", {"event_type": "room.joined", "timestamp": None, "params": joined})
        )
        result = {"member_id": self.member_id, "room_session": snapshot, "sdp": None}
        if sdp is None:
            return result
        command = {
            "type": protocol.JOIN,
            "room_session_id": self.room_session_id,
            "member_id": self.member_id,
            "sdp": sdp,
            "audio": audio,
            "video": video,
            "join_as": member.join_as,
            "media_allowed": member.media_allowed,
        }

        async def _media() -> dict:
            channel = await self._worker_channel() or protocol.CONTROL_CHANNEL
            try:
                reply = await self._media_request(command, channel=channel)
            except MediaUnavailable as e:
                # The member stays joined, signalling-only; the client may retry with webrtc.offer.
                e.data.update({"member_id": self.member_id, "room_session_id": self.room_session_id})
                raise
            return {**result, "sdp": reply.get("sdp")}

        return Deferred(_media())

    async def rpc_room_leave(self, params: dict) -> dict:
        """``room.leave {member_id?}``: leave the room; with the id of one of one's own screen/device children,
        end only that child (any other id is -32004)."""
        only_keys(params, {"member_id"})
        actor = self.actor()
        target = uuid_param(params, "member_id", required=False)
        if target is not None and str(target) != actor.id:
            await database_sync_to_async(session_services.member_child_leave)(actor=actor, member_id=target)
            return {}
        await database_sync_to_async(session_services.member_leave)(member_id=actor.id, reason="left")
        await self._detach()
        return {}

    async def rpc_room_get_members(self, params: dict) -> dict:
        only_keys(params, set())
        self.actor()
        snapshot = await database_sync_to_async(session_services.room_session_snapshot)(
            room_session_id=self.room_session_id
        )
        return {"members": snapshot["members"]}

    async def rpc_room_get_meta(self, params: dict) -> dict:
        only_keys(params, set())
        self.actor()
        snapshot = await database_sync_to_async(session_services.room_session_snapshot)(
            room_session_id=self.room_session_id
        )
        return {"meta": snapshot["meta"]}

    async def rpc_member_get_meta(self, params: dict) -> dict:
        only_keys(params, {"member_id"})
        actor = self.actor()
        target = uuid_param(params, "member_id", required=False) or actor.member_id
        member = await database_sync_to_async(session_services.member_get)(actor=actor, member_id=target)
        return {"member_id": str(member.id), "meta": member.meta}

    async def rpc_room_list_available_layouts(self, params: dict) -> dict:
        only_keys(params, set())
        actor = self.actor()
        actor.require("room.list_available_layouts")
        layouts = await database_sync_to_async(session_services.layouts_available)(project_id=actor.project_id)
        return {"layouts": layouts}

    async def _member_method(self, method: str, params: dict) -> dict:
        action, keys = MEMBER_METHODS[method]
        only_keys(params, keys | {"member_id"})
        actor = self.actor()
        target = uuid_param(params, "member_id", required=method in MEMBER_ID_REQUIRED) or actor.member_id
        if action == "send_reaction" and not self._reaction_bucket.take():
            raise RateLimited("Too many reactions.")
        member = await database_sync_to_async(member_services.member_action)(
            actor=actor, member_id=target, action=action, params=params
        )
        return {"member": member_services.member_payload(member, room_id=self.room_id)}

    async def _room_method(self, method: str, params: dict) -> dict:
        action, keys = ROOM_METHODS[method]
        only_keys(params, keys)
        actor = self.actor()
        return await database_sync_to_async(session_services.room_session_action)(
            actor=actor, room_session_id=actor.room_session_id, action=action, params=params
        )

    async def _child_add(self, type: str, params: dict):
        """``room.screenshare.start`` / ``room.device.add`` ``{sdp, audio?, video?}`` → ``{member_id, sdp}``."""
        only_keys(params, {"sdp", "audio", "video", "layout", "positions"})
        actor = self.actor()
        sdp = sdp_param(params)
        audio = bool_param(params, "audio", default=type == "device")
        video = bool_param(params, "video", default=True)
        child = await database_sync_to_async(session_services.member_child_add)(
            actor=actor, type=type, audio=audio, video=video
        )
        command = {
            "type": protocol.JOIN,
            "room_session_id": self.room_session_id,
            "member_id": str(child.id),
            "sdp": sdp,
            "audio": audio,
            "video": video,
            "join_as": child.join_as,
            "media_allowed": child.media_allowed,
        }

        async def _media() -> dict:
            channel = await self._worker_channel() or protocol.CONTROL_CHANNEL
            try:
                reply = await self._media_request(command, channel=channel)
            except MediaUnavailable:
                await database_sync_to_async(session_services.member_leave)(
                    member_id=child.id, reason="media_unavailable"
                )
                raise
            return {"member_id": str(child.id), "sdp": reply.get("sdp")}

        return Deferred(_media())

    async def rpc_webrtc_offer(self, params: dict):
        """``webrtc.offer {sdp}`` → ``{sdp}`` (the worker's answer)."""
        only_keys(params, {"sdp", "member_id"})
        actor = self.actor()
        sdp = sdp_param(params)
        member_id = await self._own_media_member(actor, params)
        channel = await self._worker_channel()
        if not channel:
            raise MediaUnavailable()
        command = {"type": protocol.OFFER, "room_session_id": self.room_session_id, "member_id": member_id, "sdp": sdp}

        async def _media() -> dict:
            reply = await self._media_request(command, channel=channel)
            return {"sdp": reply.get("sdp")}

        return Deferred(_media())

    async def rpc_webrtc_answer(self, params: dict) -> dict:
        """``webrtc.answer {sdp}``: the browser's answer to a worker's ``webrtc.offer``."""
        only_keys(params, {"sdp", "member_id"})
        actor = self.actor()
        sdp = sdp_param(params)
        member_id = await self._own_media_member(actor, params)
        channel = await self._worker_channel()
        if not channel:
            raise MediaUnavailable()
        try:
            await self.channel_layer.send(
                channel,
                {
                    "type": protocol.SERVER_ANSWER,
                    "room_session_id": self.room_session_id,
                    "member_id": member_id,
                    "sdp": sdp,
                },
            )
        except ChannelFull as e:
            raise MediaUnavailable() from e
        return {}

    async def _own_media_member(self, actor: Actor, params: dict) -> str:
        """The member whose peer connection is renegotiated: oneself, or one of one's own screen/device
        children (``member_id``)."""
        target = uuid_param(params, "member_id", required=False)
        if target is None or str(target) == actor.id:
            return actor.id
        child = await database_sync_to_async(session_services.member_get)(actor=actor, member_id=target)
        if str(child.parent_id) != actor.id:
            raise InvalidParameter("Not one of your own sources.", attribute="member_id")
        return str(child.id)

    async def _egress_list(self, kind: str, params: dict) -> dict:
        only_keys(params, set())
        return await database_sync_to_async(egress.egress_list)(actor=self.actor(), kind=kind)

    async def _egress_start(self, kind: str, params: dict):
        if kind == "playback":
            return await self._playback_start(params)
        only_keys(params, {"recording": set(), "stream": {"url"}}[kind])
        channel, payload, command = await database_sync_to_async(_egress_start_checked)(
            actor=self.actor(), kind=kind, params=params
        )

        async def _media() -> dict:
            try:
                await self._media_request(command, channel=channel)
            except MediaUnavailable:
                await database_sync_to_async(egress.egress_start_failed)(
                    kind=kind, object_id=payload["id"], reason="media_unavailable"
                )
                raise
            started = await database_sync_to_async(egress.egress_started)(kind=kind, object_id=payload["id"])
            return {kind: started}

        return Deferred(_media())

    async def _playback_start(self, params: dict):
        """``room.playback.start`` through ``rooms.services.playbacks`` (the REST service): answered once the
        worker plays the URL, or with the worker's reason (-32602 on ``url``), -32009 or -32010."""
        only_keys(params, playback_services.START_KEYS)
        channel, payload, command = await database_sync_to_async(playback_services.playback_start_prepare)(
            actor=self.actor(), params=params
        )

        async def _media() -> dict:
            try:
                await self._media_request(command, channel=channel)
            except MediaUnavailable as exc:
                raise await database_sync_to_async(playback_services.playback_start_refused)(
                    playback_id=payload["id"], worker_channel=channel
                ) from exc
            started = await database_sync_to_async(playback_services.playback_start_confirmed)(
                playback_id=payload["id"]
            )
            return {"playback": started}

        return Deferred(_media())

    async def _egress_object(self, method: str, params: dict) -> dict:
        kind, _ = egress.OBJECT_ACTIONS[method]
        only_keys(params, {f"{kind}_id", "volume", "position_ms"})
        if kind == "playback":
            return await self._playback_action(method.split(".", 1)[1], params)
        channel, payload, command = await database_sync_to_async(egress.egress_object_action)(
            actor=self.actor(), action=method, params=params
        )
        if channel:
            try:
                await self.channel_layer.send(channel, command)
            except ChannelFull:
                logger.warning("media worker channel full room_session_id=%s", self.room_session_id)
        return {kind: payload}

    async def _playback_action(self, action: str, params: dict):
        """``playback.{action}`` acknowledged by the media worker (``rooms.services.playbacks``): checked, sent,
        and written (``playback.updated`` / ``ended``) only once the worker applied it; a refusal is the
        caller's error (``playback_action_refused``), no answer within the timeout -32010."""
        actor = self.actor()
        actor.require(playback_services.ACTIONS[action])  # before the lookup: a missing permission is named first
        playback_id = uuid_param(params, "playback_id")
        playback = await Playback.objects.filter(id=playback_id, room_session_id=self.room_session_id).afirst()
        if playback is None:
            raise NotFound("Playback not found.", attribute="playback_id")
        channel, command = await database_sync_to_async(playback_services.playback_action_prepare)(
            actor=actor, playback=playback, action=action, params=params
        )

        async def _media() -> dict:
            if channel:
                try:
                    await self._media_request(command, channel=channel)
                except MediaUnavailable as exc:
                    refusal = await database_sync_to_async(playback_services.playback_action_refused)(
                        getattr(exc, "reply", None), action=action, playback_id=playback.id
                    )
                    if refusal is not None:
                        raise refusal from exc
            applied = await database_sync_to_async(playback_services.playback_action_apply)(
                actor=actor, playback=playback, action=action, params=params
            )
            return {"playback": applied}

        return Deferred(_media())


def _member_join_gated(**kwargs) -> tuple:
    """``session_services.member_join`` with the events of the join held behind a ``Gate`` (returned third)
    that the caller opens once the socket is subscribed."""
    with event_sender.broadcasts_gated() as gate:
        member, session = session_services.member_join(**kwargs)
    return member, session, gate


def _egress_start_checked(*, actor: Actor, kind: str, params: dict) -> tuple[str, dict, dict]:
    """``rooms.signalling.egress.egress_start`` under the same one-live-recording rule as REST
    (``rooms.services.egress``): a second live recording of the session is ``Conflict`` (-32009), checked after
    the permission and under the session row's lock, so two concurrent starts cannot both pass."""
    from rooms.services import egress as egress_service

    actor.require(egress.PERMISSIONS[kind])
    with transaction.atomic():
        if kind == "recording":
            egress_service.recording_check_none_live(actor.room_session_id)
        return egress.egress_start(actor=actor, kind=kind, params=params)


class _MethodNotFound(ParleyError):
    code = "method_not_found"
    rpc_code = rpc.METHOD_NOT_FOUND

    def __init__(self, method: str):
        super().__init__(f"Unknown method '{method[:64]}'.")


class EventsConsumer(_Dispatch, AsyncWebsocketConsumer):
    """``/ws/events/?api_key=<key>`` (or ``Authorization: Bearer <key>``): every event of the project's rooms
    as ``{"jsonrpc":"2.0","method":"event","params": <webhook body>}``.

    Filters (query string, or a ``subscribe`` request ``{room_id?, room_name?, event_types?}``):
    ``room_id``, ``room_name``, ``event_types`` (comma-separated in the query string, a list in ``subscribe``).
    """

    async def connect(self) -> None:
        self.project_id = None
        self._bucket = TokenBucket(rate_per_s=RATE_PER_S, burst=RATE_BURST)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        raw_key = (query.get("api_key") or [""])[0]
        if not raw_key:
            for name, value in self.scope.get("headers", []):
                if name.lower() == b"authorization":
                    scheme, _, rest = value.decode("latin-1").partition(" ")
                    if scheme.lower() == "bearer":
                        raw_key = rest.strip()
        key = await database_sync_to_async(_api_key_lookup)(raw_key) if raw_key else None
        if key is None:
            await self.accept()
            await self.close(code=CLOSE_INVALID_TOKEN)
            return
        self.project_id = key.project_id
        try:
            self.filters = await self._filters(
                room_id=(query.get("room_id") or [None])[0],
                room_name=(query.get("room_name") or [None])[0],
                event_types=[t for t in ",".join(query.get("event_types", [])).split(",") if t],
            )
        except ParleyError:
            await self.accept()
            await self.close(code=4004)
            return
        await self.channel_layer.group_add(project_group(self.project_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code) -> None:
        if self.project_id is not None:
            await self.channel_layer.group_discard(project_group(self.project_id), self.channel_name)

    async def _filters(self, *, room_id, room_name, event_types) -> dict:
        room_ids = None
        if room_id or room_name:
            room_ids = await database_sync_to_async(_room_ids)(
                project_id=self.project_id, room_id=room_id, room_name=room_name
            )
        if not isinstance(event_types, list) or not all(isinstance(t, str) and len(t) <= 64 for t in event_types):
            raise InvalidParameter("Must be a list of event names.", attribute="event_types")
        return {"room_ids": room_ids, "event_types": set(event_types) or None}

    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            if text_data is None:
                raise rpc.RpcError(rpc.INVALID_REQUEST, "Only text frames are accepted.")
            request = rpc.request_parse(text_data)
        except rpc.RpcError as e:
            data = dict(e.data or {})
            await self.send(text_data=_dumps(rpc.error_envelope(data.pop("id", None), e.code, e.message, data or None)))
            return
        try:
            if not self._bucket.take():
                raise RateLimited()
            if request.method != "subscribe":
                raise _MethodNotFound(request.method)
            params = request.params
            only_keys(params, {"room_id", "room_name", "event_types"})
            self.filters = await self._filters(
                room_id=str_param(params, "room_id", max_chars=64, required=False),
                room_name=str_param(params, "room_name", max_chars=100, required=False),
                event_types=params.get("event_types") or [],
            )
        except ParleyError as e:
            reply = rpc.error_envelope(request.id, *rpc.error_from_exception(e))
        else:
            reply = rpc.result_envelope(
                request.id,
                {
                    "room_ids": sorted(self.filters["room_ids"]) if self.filters["room_ids"] is not None else None,
                    "event_types": sorted(self.filters["event_types"] or []),
                },
            )
        if not request.is_notification:
            await self.send(text_data=_dumps(reply))

    async def parley_event(self, message: dict) -> None:
        body = message["event"]
        room_ids = self.filters["room_ids"]
        if room_ids is not None and body.get("room_id") not in room_ids:
            return
        types = self.filters["event_types"]
        if types is not None and body.get("event_type") not in types:
            return
        await self.send(text_data=_dumps(rpc.notification("event", body)))


def _api_key_lookup(raw_key: str):
    from rooms.api.authentication import api_key_lookup

    return api_key_lookup(raw_key)


def _room_ids(*, project_id, room_id, room_name) -> set[str]:
    """The ids of the project's rooms matching ``room_id`` / ``room_name``; ``NotFound`` when none."""
    from rooms.exceptions import NotFound
    from rooms.models import Room

    qs = Room.objects.filter(project_id=project_id)
    if room_id:
        try:
            qs = qs.filter(id=uuid.UUID(str(room_id)))
        except ValueError as e:
            raise NotFound("Room not found.", attribute="room_id") from e
    if room_name:
        qs = qs.filter(name=room_name)
    ids = {str(i) for i in qs.values_list("id", flat=True)}
    if not ids:
        raise NotFound("Room not found.", attribute="room_id" if room_id else "room_name")
    return ids
