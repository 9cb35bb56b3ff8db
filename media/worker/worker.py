"""``MediaWorker``: receives the commands of ``media.protocol`` on the channel layer and runs the rooms placed on it.

Channels: the shared named channel ``CONTROL_CHANNEL`` (a command for an unplaced session: exactly one worker
receives it) and the worker's own channel (``channel_name``, recorded in ``RoomSession.media_worker``).
Placement is a conditional update (``db.session_take``): a command for a session another live worker holds is
forwarded to that worker's channel. Commands of one session are handled one after another, in arrival order, by
that session's own task; sessions do not wait for each other.

Lifecycle: ``start()`` creates the channel and starts the receive and heartbeat loops; ``stop()`` cancels the
loops and the session tasks, tells every member (``media.member_dropped`` ``worker_shutdown``), closes the peer
connections, stops the egress, playbacks and mixers and releases the placements. Each step of ``stop()`` is
bounded (``stop_step_timeout_s``): a step that overruns (a stalled channel-layer or database connection) is
abandoned and logged, and ``stop()`` returns within ``stop_bound_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable
from typing import Any

from channels.layers import get_channel_layer

from media import protocol
from media.egress.supervisor import EgressSupervisor
from media.worker import db
from media.worker.ice import restrict_host_addresses
from media.worker.peer import ICE_TIMEOUT_S, MediaRefused, MemberPeer
from media.worker.playback import InvalidMedia, PlaybackSource
from media.worker.room import RoomMixer

logger = logging.getLogger(__name__)

# Queued behind the placing command: start the session's record_on_start recording and standing streams.
EGRESS_AUTOSTART = "media.worker.egress_autostart"
# Queued by a playback at end of file: ``{type, room_session_id, object_id}``.
PLAYBACK_ENDED = "media.worker.playback_ended"
# Queued when a playback's URL opened or failed to: ``{type, room_session_id, source, error, request}``.
PLAYBACK_OPENED = "media.worker.playback_opened"
# ``stop()``: the bound of each of its steps (s), and how many steps it has.
STOP_STEP_TIMEOUT_S = 10.0
STOP_STEPS = 4


class MediaWorker:
    """A media worker in the current event loop. ``layer``: a channel layer (default: the configured one)."""

    def __init__(
        self,
        *,
        layer=None,
        ice_timeout_s: float = ICE_TIMEOUT_S,
        control: bool = True,
        stop_step_timeout_s: float = STOP_STEP_TIMEOUT_S,
    ) -> None:
        self.layer = layer or get_channel_layer()
        self.ice_timeout_s = ice_timeout_s
        self.control = control
        self.stop_step_timeout_s = stop_step_timeout_s
        self._stopping = False
        self.channel_name: str | None = None
        self.rooms: dict[str, RoomMixer] = {}
        self.peers: dict[str, dict[str, MemberPeer]] = {}
        self.playbacks: dict[str, dict[str, PlaybackSource]] = {}
        self._queues: dict[str, asyncio.Queue] = {}
        self._session_tasks: dict[str, asyncio.Task] = {}
        self._tasks: list[asyncio.Task] = []
        self._notices: set[asyncio.Task] = set()  # member notifications in flight (sender constraints)
        self.egress = EgressSupervisor()
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        self._stopping = False
        # The layer's default prefix: channels-redis serves all process-local channels of a process that share
        # one prefix with one blocking pop; a second prefix (the consumers use the default) would wait for it.
        self.channel_name = await self.layer.new_channel()
        self._tasks.append(asyncio.create_task(self._receive_loop(self.channel_name), name="receive own channel"))
        if self.control:
            self._tasks.append(
                asyncio.create_task(self._receive_loop(protocol.CONTROL_CHANNEL), name="receive control")
            )
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        self.egress.start()
        self._tasks.append(asyncio.create_task(self._recover_orphans(), name="orphaned recordings sweep"))
        logger.info("media worker started channel=%s", self.channel_name)

    @property
    def stop_bound_s(self) -> float:
        """The longest ``stop()`` takes (s): ``STOP_STEPS`` × ``stop_step_timeout_s``."""
        return STOP_STEPS * self.stop_step_timeout_s

    async def stop(self, reason: str = "worker_shutdown") -> None:
        """Release every session (telling its members ``reason``) and stop the loops, within ``stop_bound_s``.

        Steps, each bounded by ``stop_step_timeout_s``:
        1. cancel the receive, heartbeat and session tasks (no command runs after this; later ones are dropped);
        2. end every session at once (``_end_session``: tell the members, close their peers, stop the session's
           egress, playbacks and mixer, release the placement);
        3. for a session whose end was abandoned: close its peers, playbacks and mixer without telling anyone and
           release its placement on a database connection of its own;
        4. stop the egress supervisor.
        What a step abandons is cancelled (not awaited further) and logged as ``media worker stop abandoned``.
        Never raises; idempotent."""
        if not self.started and not self._tasks and not self.rooms:
            return
        self._stopping = True
        tasks = [*self._tasks, *self._session_tasks.values()]
        self._tasks = []
        for task in tasks:
            task.cancel()
        await self._bounded("tasks", {task.get_name(): task for task in tasks})
        self._session_tasks.clear()
        self._queues.clear()
        # What each session holds now: an abandoned _end_session may have taken it out of the dicts already.
        sessions = {
            room_session_id: (room, list(self.peers.get(room_session_id, {}).values()), self._playbacks_of(room))
            for room_session_id, room in self.rooms.items()
        }
        abandoned = await self._bounded(
            "sessions", {room_session_id: self._end_session(room_session_id, reason) for room_session_id in sessions}
        )
        await self._bounded(
            "session teardown",
            {
                room_session_id: self._teardown(room_session_id, *sessions[room_session_id])
                for room_session_id in abandoned
            },
        )
        await self._bounded("egress", {"egress": self.egress.stop()})
        self.started = False
        logger.info("media worker stopped channel=%s reason=%s sessions=%d", self.channel_name, reason, len(sessions))

    async def _bounded(self, step: str, work: dict[str, Awaitable]) -> set[str]:
        """Run ``work`` (name → awaitable) concurrently for at most ``stop_step_timeout_s``; returns the names that
        did not finish (cancelled and logged). Failures are logged, not raised."""
        tasks = {name: asyncio.ensure_future(awaitable) for name, awaitable in work.items()}
        if not tasks:
            return set()
        _, pending = await asyncio.wait(tasks.values(), timeout=self.stop_step_timeout_s)
        abandoned = set()
        for name, task in tasks.items():
            if task in pending:
                task.cancel()
                abandoned.add(name)
            elif not task.cancelled() and task.exception() is not None:
                logger.error("media worker stop: %s %s failed", step, name, exc_info=task.exception())
        if abandoned:
            logger.warning(
                "media worker stop abandoned %s after %.1f s channel=%s: %s",
                step,
                self.stop_step_timeout_s,
                self.channel_name,
                ", ".join(sorted(abandoned)),
            )
        return abandoned

    def _playbacks_of(self, room: RoomMixer) -> list[PlaybackSource]:
        return list(self.playbacks.get(room.room_session_id, {}).values())

    async def _teardown(
        self, room_session_id: str, room: RoomMixer, peers: list[MemberPeer], playbacks: list[PlaybackSource]
    ) -> None:
        """What is left of a session whose ``_end_session`` was abandoned: release the placement (on a database
        connection of its own) and close the peers, playbacks and mixer the session held when ``stop()`` began
        (closing one the abandoned end closed already is a no-op, or fails and is logged)."""
        self.peers.pop(room_session_id, None)
        self.playbacks.pop(room_session_id, None)
        self.rooms.pop(room_session_id, None)
        released = asyncio.ensure_future(db.session_release_unshared(room_session_id, self.channel_name))
        for close in [*(peer.close for peer in peers), *(source.stop for source in playbacks), room.stop]:
            try:
                await close()
            except Exception:
                logger.exception("teardown step failed room_session_id=%s", room_session_id)
        await released
        logger.info("room session released room_session_id=%s after an abandoned end", room_session_id)

    # -- receiving -----------------------------------------------------------------------------------------
    async def _receive_loop(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel receive failed channel=%s", channel)
                await asyncio.sleep(1.0)
                continue
            self.enqueue(message)

    def enqueue(self, message: dict) -> None:
        """Queue a command for its session's task (creating the task on first use)."""
        room_session_id = str(message.get("room_session_id") or "")
        if not room_session_id:
            logger.warning("command without room_session_id type=%s", message.get("type"))
            return
        if self._stopping:
            logger.info("dropped while stopping type=%s room_session_id=%s", message.get("type"), room_session_id)
            return
        queue = self._queues.get(room_session_id)
        if queue is None:
            queue = self._queues[room_session_id] = asyncio.Queue()
            self._session_tasks[room_session_id] = asyncio.create_task(
                self._session_loop(room_session_id, queue), name=f"session {room_session_id}"
            )
        queue.put_nowait(message)

    async def _session_loop(self, room_session_id: str, queue: asyncio.Queue) -> None:
        # This task's peers (and the tasks it starts) gather ICE host candidates on PARLEY_ICE_HOST_ADDRESSES;
        # peers elsewhere in the process keep aioice's own lookup.
        restrict_host_addresses()
        while True:
            message = await queue.get()
            try:
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("command failed type=%s room_session_id=%s", message.get("type"), room_session_id)
                await self._error(message, "internal", "The media worker failed to handle the command.")
            if room_session_id not in self.rooms and queue.empty():
                # Nothing live here for the session any more: end its task (a later command starts a new one).
                if self._queues.get(room_session_id) is queue:
                    del self._queues[room_session_id]
                    self._session_tasks.pop(room_session_id, None)
                return

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(db.HEARTBEAT_SECONDS)
            try:
                await db.sessions_heartbeat(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("heartbeat failed channel=%s", self.channel_name)

    # -- replies -------------------------------------------------------------------------------------------
    async def _send(self, channel: str | None, payload: dict) -> None:
        if not channel:
            return
        try:
            await self.layer.send(channel, payload)
        except Exception:
            logger.exception("reply failed type=%s", payload.get("type"))

    async def _error(self, message: dict, code: str, text: str, **extra: Any) -> None:
        await self._send(
            message.get("reply_channel"),
            {
                "type": protocol.ERROR,
                "room_session_id": str(message.get("room_session_id") or ""),
                "member_id": message.get("member_id"),
                "request_id": message.get("request_id"),
                "code": code,
                "message": text,
                **extra,
            },
        )

    # -- placement -----------------------------------------------------------------------------------------
    async def _room(self, message: dict) -> RoomMixer | None:
        """The session's mixer on this worker, placing the session here if it is free.

        Returns None when the command was forwarded to the owning worker or answered with an error.
        """
        room_session_id = str(message["room_session_id"])
        room = self.rooms.get(room_session_id)
        if room is not None:
            return room
        config = await db.session_take(room_session_id, self.channel_name)
        if config is None:
            await self._error(message, "not_found", "No live room session with this id.")
            return None
        owner = config["media_worker"]
        if owner != self.channel_name:
            if message.get("forwarded"):
                await self._error(message, "internal", "The room session is placed on another media worker.")
                return None
            logger.info("forwarding type=%s room_session_id=%s to=%s", message.get("type"), room_session_id, owner)
            await self._send(owner, {**message, "forwarded": True})
            return None
        room = RoomMixer(config)
        room.on_sender_constraints = functools.partial(self._sender_constraints, room_session_id)
        room.start()
        self.rooms[room_session_id] = room
        self.peers[room_session_id] = {}
        logger.info("room session placed room_session_id=%s channel=%s", room_session_id, self.channel_name)
        self.enqueue({"type": EGRESS_AUTOSTART, "room_session_id": room_session_id})
        return room

    # -- commands ------------------------------------------------------------------------------------------
    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        room_session_id = str(message.get("room_session_id") or "")
        if kind == protocol.EGRESS:
            await self._egress(message)
            return
        if kind == PLAYBACK_ENDED:
            await self._playback_ended(room_session_id, str(message.get("object_id")))
            return
        if kind == PLAYBACK_OPENED:
            await self._playback_opened(message)
            return
        if kind == EGRESS_AUTOSTART:
            await self._egress_autostart(room_session_id)
            return
        if kind == protocol.SESSION_END:
            await self._end_session(room_session_id, "session_end")
            return
        if kind == protocol.LEAVE:
            await self._leave(room_session_id, str(message.get("member_id")))
            if message.get("dropped_reason"):
                await self._send(
                    message.get("dropped_reply_channel"),
                    {
                        "type": protocol.MEMBER_DROPPED,
                        "room_session_id": room_session_id,
                        "member_id": str(message.get("member_id")),
                        "reason": message["dropped_reason"],
                    },
                )
            return
        room = await self._room(message)
        if room is None:
            return
        peers = self.peers[room_session_id]
        member_id = str(message.get("member_id") or "")
        if kind == protocol.JOIN:
            await self._join(room, message)
        elif kind == protocol.OFFER:
            peer = peers.get(member_id)
            if peer is None:
                await self._join(room, message)
                return
            try:
                answer = await peer.renegotiate(message.get("sdp"))
            except MediaRefused as exc:
                await self._error(message, exc.code, exc.message)
                return
            await self._answer(message, answer)
        elif kind == protocol.SERVER_ANSWER:
            peer = peers.get(member_id)
            if peer is None:
                await self._error(message, "not_found", "The member has no media connection on this worker.")
                return
            try:
                await peer.apply_answer(message.get("sdp"))
            except MediaRefused as exc:
                await self._error(message, exc.code, exc.message)
        elif kind == protocol.MEMBER_UPDATE:
            await self._member_update(room, message)
        elif kind == protocol.LAYOUT:
            room.set_layout(message.get("layout_name"), message.get("positions"), message.get("hide_video_muted"))
        else:
            await self._error(message, "bad_request", f"Unknown media command {kind!r}.")

    async def _egress(self, message: dict) -> None:
        """``media.egress``: recording and stream actions (``media.egress.supervisor``), acknowledged with
        ``media.answer {request_id, object_id}``; ``playback.*`` actions go to ``_playback``."""
        if str(message.get("action") or "").startswith("playback."):
            await self._playback(message)
            return
        room = await self._room(message)
        if room is None:
            return
        refused = await self.egress.handle(room, message)
        if refused is not None:
            await self._error(message, *refused)
            return
        await self._send(
            message.get("reply_channel"),
            {
                "type": protocol.ANSWER,
                "room_session_id": room.room_session_id,
                "request_id": message.get("request_id"),
                "object_id": str(message.get("object_id")),
            },
        )

    async def _acknowledge(self, message: dict, room_session_id: str) -> None:
        await self._send(
            message.get("reply_channel"),
            {
                "type": protocol.ANSWER,
                "room_session_id": room_session_id,
                "request_id": message.get("request_id"),
                "object_id": str(message.get("object_id")),
            },
        )

    async def _playback(self, message: dict) -> None:
        """``playback.start`` (``url``, ``volume`` dB, optional ``position_ms``, ``layout``/``positions`` where
        the key ``self`` names the playback) opens the URL in the background and plays it into the room as a layer
        and an audio input; ``playback.pause|resume|stop``, ``playback.set_volume`` (``volume``) and
        ``playback.seek`` (``position_ms``) act on the playback ``object_id`` (also while its URL is opening).

        The start is answered once the URL opened (``media.answer {request_id, object_id}``) or failed to
        (``media.error`` ``invalid_media`` with ``reason``, a key of ``media.protocol.PLAYBACK_OPEN_FAILURES``; the
        row is failed and ``playback.ended`` emitted); the session's other commands run meanwhile. ``not_found``
        for an unknown playback or one stopped while opening, ``not_seekable`` for a seek of a live stream,
        ``bad_request`` for an unknown action. The room and
        its members are unaffected by a failing playback."""
        action = str(message.get("action") or "")
        object_id = str(message.get("object_id") or "")
        if not object_id:
            await self._error(message, "bad_request", "object_id is required.")
            return
        if action == "playback.start":
            room = await self._room(message)
            if room is None:
                return
            await self._playback_start(room, message, object_id)
            return
        room_session_id = str(message.get("room_session_id") or "")
        source = self.playbacks.get(room_session_id, {}).get(object_id)
        if source is None:
            if room_session_id not in self.rooms and not message.get("forwarded"):
                # Not placed here: let the owner (if any) answer.
                room = await self._room(message)
                if room is None:
                    return
            await self._error(message, "not_found", "No live playback with this id on this media worker.")
            return
        if action == "playback.pause":
            source.pause()
        elif action == "playback.resume":
            source.resume()
        elif action == "playback.set_volume":
            try:
                source.set_volume(float(message["volume"]))
            except (KeyError, TypeError, ValueError):
                await self._error(message, "bad_request", "volume (dB) is required.")
                return
        elif action == "playback.seek":
            if not source.seekable:
                await self._error(message, "not_seekable", "The playback is a live stream: it cannot seek.")
                return
            try:
                source.seek(int(message["position_ms"]))
            except (KeyError, TypeError, ValueError):
                await self._error(message, "bad_request", "position_ms is required.")
                return
        elif action == "playback.stop":
            self.playbacks[room_session_id].pop(object_id, None)
            await source.stop()
        else:
            await self._error(message, "bad_request", f"Unknown playback action {action!r}.")
            return
        logger.info("%s room_session_id=%s object_id=%s", action, room_session_id, object_id)
        await self._acknowledge(message, room_session_id)

    async def _playback_start(self, room: RoomMixer, message: dict, object_id: str) -> None:
        room_session_id = room.room_session_id
        playbacks = self.playbacks.setdefault(room_session_id, {})
        existing = playbacks.get(object_id)
        if existing is not None:
            if existing.state == "opening":
                await self._error(message, "bad_request", "The playback's URL is still opening.")
            else:
                await self._acknowledge(message, room_session_id)
            return
        try:
            volume_db = float(message.get("volume") or 0.0)
        except (TypeError, ValueError):
            volume_db = 0.0

        def ended(source: PlaybackSource) -> None:
            self.enqueue({"type": PLAYBACK_ENDED, "room_session_id": room_session_id, "object_id": object_id})

        def opened(source: PlaybackSource, error: InvalidMedia | None) -> None:
            self.enqueue(
                {
                    "type": PLAYBACK_OPENED,
                    "room_session_id": room_session_id,
                    "source": source,
                    "error": error,
                    "request": message,
                }
            )

        source = PlaybackSource(room, object_id, str(message.get("url") or ""), volume_db=volume_db, on_ended=ended)
        if isinstance(message.get("position_ms"), int) and message["position_ms"] > 0:
            source.seek(message["position_ms"])
            source.position_ms = message["position_ms"]
        playbacks[object_id] = source
        # Opening may take up to open_timeout_s(): it runs beside this session's queue, which goes on.
        source.open_in_background(opened)

    async def _playback_opened(self, message: dict) -> None:
        """The URL of a starting playback opened (start it, apply ``layout``/``positions``, acknowledge) or did
        not (fail the row with the reason, ``playback.ended``, answer ``media.error``)."""
        source: PlaybackSource = message["source"]
        request: dict = message["request"]
        error: InvalidMedia | None = message["error"]
        room_session_id, object_id = source.room.room_session_id, source.playback_id
        playbacks = self.playbacks.get(room_session_id, {})
        room = self.rooms.get(room_session_id)
        if error is None and (playbacks.get(object_id) is not source or room is None):
            await source.stop()  # stopped, or the session ended, while the URL was opening
            error = InvalidMedia("stopped", "The playback was stopped while its URL was opening.")
        if error is not None:
            if playbacks.get(object_id) is source:
                del playbacks[object_id]
            logger.info(
                "playback refused room_session_id=%s object_id=%s reason=%s", room_session_id, object_id, error.reason
            )
            if error.reason == "stopped":
                await self._error(request, "not_found", error.message, reason=error.reason)
                return
            with contextlib.suppress(Exception):
                await db.playback_failed(object_id, error.reason)
            await self._error(request, "invalid_media", error.message, reason=error.reason)
            await self._release_if_empty(room_session_id)
            return
        source.start()
        positions = {
            (object_id if member_id == "self" else member_id): position
            for member_id, position in (request.get("positions") or {}).items()
        }
        if request.get("layout") or positions:
            room.set_layout(request.get("layout") or None, positions or None, None)
        await self._acknowledge(request, room_session_id)

    async def _playback_ended(self, room_session_id: str, object_id: str) -> None:
        """End of file: drop the playback and emit ``playback.ended`` (state ``completed``)."""
        source = self.playbacks.get(room_session_id, {}).pop(object_id, None)
        if source is None:
            return
        await source.stop()
        await db.playback_ended(object_id, source.position_ms)
        await self._release_if_empty(room_session_id)

    async def _egress_autostart(self, room_session_id: str) -> None:
        """After placement: run the session's ``record_on_start`` recording and standing streams
        (``db.session_egress_autostart``) through the ``media.egress`` path, then emit ``recording.started``
        (or fail the row with the worker's refusal); ``stream.started`` follows once the RTMP server accepts."""
        room = self.rooms.get(room_session_id)
        if room is None:
            return
        for kind, command in await db.session_egress_autostart(room_session_id, self.channel_name):
            object_id = command["object_id"]
            refused = await self.egress.handle(room, command)
            if refused is not None:
                logger.warning(
                    "%s autostart refused room_session_id=%s object_id=%s code=%s",
                    kind,
                    room_session_id,
                    object_id,
                    refused[0],
                )
                await db.egress_start_failed(kind, object_id, refused[0])
                continue
            await db.egress_started(kind, object_id)
            logger.info("%s started on placement room_session_id=%s object_id=%s", kind, room_session_id, object_id)

    async def _recover_orphans(self) -> None:
        """Finalise recordings a dead worker left behind (``media.egress.services.recordings_recover_orphans``)."""
        from asgiref.sync import sync_to_async

        from media.egress.services import recordings_recover_orphans

        try:
            await sync_to_async(recordings_recover_orphans)()
        except Exception:
            logger.exception("orphaned recordings sweep failed")

    async def _answer(self, message: dict, sdp: str) -> None:
        await self._send(
            message.get("reply_channel"),
            {
                "type": protocol.ANSWER,
                "room_session_id": str(message["room_session_id"]),
                "request_id": message.get("request_id"),
                "member_id": str(message.get("member_id")),
                "sdp": sdp,
            },
        )

    async def _join(self, room: RoomMixer, message: dict) -> None:
        room_session_id = room.room_session_id
        member_id = str(message.get("member_id") or "")
        state = await db.member_media_state(member_id) if member_id else None
        if state is None:
            await self._error(message, "not_found", "No present member with this id in the room session.")
            return
        for name in ("join_as", "media_allowed"):
            if message.get(name):
                state[name] = message[name]
        old = self.peers[room_session_id].pop(member_id, None)
        if old is not None:
            await old.close()
            room.remove_member(member_id)
        member = room.add_member(member_id, state)
        reply_channel = message.get("reply_channel")

        async def dropped(dropped_member_id: str, reason: str) -> None:
            await self._drop_member(room_session_id, dropped_member_id, reason, reply_channel)

        peer = MemberPeer(
            room, member, reply_channel=reply_channel, on_dropped=dropped, ice_timeout_s=self.ice_timeout_s
        )
        try:
            answer = await peer.answer(message.get("sdp"))
        except MediaRefused as exc:
            await peer.close()
            room.remove_member(member_id)
            logger.info("offer refused code=%s room_session_id=%s member_id=%s", exc.code, room_session_id, member_id)
            await self._release_if_empty(room_session_id)
            await self._error(message, exc.code, exc.message)
            return
        self.peers[room_session_id][member_id] = peer
        await self._answer(message, answer)

    def _sender_constraints(self, room_session_id: str, member_id: str, constraints: dict[str, int]) -> None:
        """The room asks a member for a send size and framerate: ``media.sender_constraints`` to its socket."""
        peer = self.peers.get(room_session_id, {}).get(member_id)
        if peer is None or not peer.reply_channel:
            return
        payload = {
            "type": protocol.SENDER_CONSTRAINTS,
            "room_session_id": room_session_id,
            "member_id": member_id,
            **constraints,
        }
        task = asyncio.ensure_future(self._send(peer.reply_channel, payload))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _member_update(self, room: RoomMixer, message: dict) -> None:
        member_id = str(message.get("member_id") or "")
        fields = {k: v for k, v in (message.get("fields") or {}).items() if k in protocol.MEMBER_UPDATE_FIELDS}
        member = room.members.get(member_id)
        if member is None:
            return
        before = (member.join_as, member.media_allowed)
        room.update_member(member_id, fields)
        peer = self.peers.get(room.room_session_id, {}).get(member_id)
        if peer is None or peer.pc is None or before == (member.join_as, member.media_allowed):
            return
        # Promotion/demotion or a media_allowed change: renegotiate from the worker (the peer sets its tracks).
        offer = await peer.server_offer()
        await self._send(
            peer.reply_channel,
            {
                "type": protocol.SERVER_OFFER,
                "room_session_id": room.room_session_id,
                "member_id": member_id,
                "sdp": offer,
            },
        )

    async def _drop_member(self, room_session_id: str, member_id: str, reason: str, reply_channel) -> None:
        """Queue the member's removal behind the session's pending commands; the member is told after it."""
        self.enqueue(
            {
                "type": protocol.LEAVE,
                "room_session_id": room_session_id,
                "member_id": member_id,
                "dropped_reason": reason,
                "dropped_reply_channel": reply_channel,
            }
        )

    async def _leave(self, room_session_id: str, member_id: str) -> None:
        peer = self.peers.get(room_session_id, {}).pop(member_id, None)
        if peer is not None:
            await peer.close()
        room = self.rooms.get(room_session_id)
        if room is not None:
            room.remove_member(member_id)
        await self._release_if_empty(room_session_id)

    async def _release_if_empty(self, room_session_id: str) -> None:
        room = self.rooms.get(room_session_id)
        if (
            room is not None
            and not any(member.kind != "playback" for member in room.members.values())
            and not self.peers.get(room_session_id)
        ):
            await self._end_session(room_session_id, "empty")

    async def _end_session(self, room_session_id: str, reason: str) -> None:
        """Tell the members (unless the room is just empty), close their peers, stop the mixer, release."""
        peers = self.peers.pop(room_session_id, {})
        for member_id, peer in peers.items():
            if reason != "empty":
                await self._send(
                    peer.reply_channel,
                    {
                        "type": protocol.MEMBER_DROPPED,
                        "room_session_id": room_session_id,
                        "member_id": member_id,
                        "reason": reason,
                    },
                )
            await peer.close()
        await self.egress.room_ending(room_session_id)
        for object_id, source in self.playbacks.pop(room_session_id, {}).items():
            await source.stop()
            with contextlib.suppress(Exception):
                await db.playback_ended(object_id, source.position_ms)
        room = self.rooms.pop(room_session_id, None)
        if room is not None:
            await room.stop()
            with contextlib.suppress(Exception):
                await db.session_release(room_session_id, self.channel_name)
            logger.info("room session released room_session_id=%s reason=%s", room_session_id, reason)

    def stats(self) -> dict[str, Any]:
        return {
            "channel_name": self.channel_name,
            "rooms": {rsid: sorted(room.members) for rsid, room in self.rooms.items()},
        }
