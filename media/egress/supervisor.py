"""The media worker's egress: recordings and RTMP streams of the rooms placed on it.

``EgressSupervisor.handle(room, message)`` runs one ``media.egress`` command and returns ``None`` (done: the
worker acknowledges with ``media.answer``) or ``(code, message)`` for ``media.error``. Actions:
``recording.start|pause|resume|stop`` and ``stream.start`` (``url``) | ``stream.stop``, each with
``object_id``. One ``RoomEgressHub`` per room: every recorder and stream of a room shares its subscription and
its single AAC encode.

While recording, ``Recording.duration``/``size_in_bytes`` are rewritten every ``PROGRESS_SECONDS`` (also the
liveness heartbeat the orphan sweep reads). A closed recording is handed to ``media.tasks.recording_finalize``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async

from media.egress import services
from media.egress.hub import RoomEgressHub
from media.egress.recording import Recorder
from media.egress.rtmp import RtmpStream

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 5.0
CLOSE_TIMEOUT_S = 10.0


def _finalize_enqueue(recording_id: str) -> None:
    from media.tasks import recording_finalize

    recording_finalize.delay(recording_id)


class EgressSupervisor:
    """Lifecycle: ``start()`` starts the progress loop; ``room_ending(id)`` closes a room's egress (files
    flushed); ``stop()`` closes everything."""

    def __init__(self) -> None:
        self.hubs: dict[str, RoomEgressHub] = {}
        self.recorders: dict[str, Recorder] = {}
        self.streams: dict[str, RtmpStream] = {}
        self._room_of: dict[str, str] = {}
        self._pending: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._progress_loop())

    async def stop(self) -> None:
        for room_session_id in list(self.hubs):
            await self.room_ending(room_session_id)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pending:
            await asyncio.wait(self._pending, timeout=CLOSE_TIMEOUT_S)

    def _hub(self, room) -> RoomEgressHub:
        hub = self.hubs.get(room.room_session_id)
        if hub is None:
            hub = self.hubs[room.room_session_id] = RoomEgressHub(room)
        return hub

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- commands ------------------------------------------------------------------------------------------
    async def handle(self, room, message: dict) -> tuple[str, str] | None:
        action = str(message.get("action") or "")
        object_id = str(message.get("object_id") or "")
        if not object_id:
            return "bad_request", "object_id is required."
        if action == "recording.start":
            if object_id in self.recorders:
                return None
            recorder = Recorder(recording_id=object_id, hub=self._hub(room), on_finished=self._recording_finished)
            if not await sync_to_async(services.recording_begin)(object_id, working_path=str(recorder.path)):
                return "not_found", "No live recording with this id."
            self.recorders[object_id] = recorder
            self._room_of[object_id] = room.room_session_id
            recorder.start()
            return None
        if action in ("recording.pause", "recording.resume", "recording.stop"):
            recorder = self.recorders.get(object_id)
            if recorder is None:
                return "not_found", "The recording is not running on this worker."
            getattr(recorder, action.split(".", 1)[1])()
            return None
        if action == "stream.start":
            if object_id in self.streams:
                return None
            url = message.get("url")
            if not isinstance(url, str) or not url.startswith(("rtmp://", "rtmps://")):
                return "bad_request", "url must be an rtmp:// or rtmps:// URL."
            stream = RtmpStream(
                stream_id=object_id,
                url=url,
                hub=self._hub(room),
                on_connected=self._stream_connected,
                on_retry=self._stream_retry,
                on_ended=self._stream_ended,
            )
            self.streams[object_id] = stream
            self._room_of[object_id] = room.room_session_id
            stream.start()
            return None
        if action == "stream.stop":
            stream = self.streams.get(object_id)
            if stream is None:
                return "not_found", "The stream is not running on this worker."
            stream.stop("stopped")
            return None
        return "not_implemented", f"Egress action {action!r} is not available."

    async def room_ending(self, room_session_id: str) -> None:
        """Stop the room's recorders and streams, wait (bounded) for their files to close, drop its hub."""
        waits = []
        for recording_id, recorder in list(self.recorders.items()):
            if self._room_of.get(recording_id) == room_session_id:
                recorder.stop()
                waits.append(recorder.finished.wait())
        for stream_id, stream in list(self.streams.items()):
            if self._room_of.get(stream_id) == room_session_id:
                stream.stop("room_ended")
                waits.append(stream.ended.wait())
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), CLOSE_TIMEOUT_S)
        hub = self.hubs.pop(room_session_id, None)
        if hub is not None:
            await hub.close()

    # -- callbacks -----------------------------------------------------------------------------------------
    def _recording_finished(self, recorder: Recorder) -> None:
        self.recorders.pop(recorder.recording_id, None)
        self._room_of.pop(recorder.recording_id, None)
        self._spawn(self._recording_close(recorder))
        self._hub_release_if_idle(recorder.hub)

    async def _recording_close(self, recorder: Recorder) -> None:
        try:
            finalize = await sync_to_async(services.recording_closed)(
                recorder.recording_id,
                duration_s=recorder.stats.get("duration_s", recorder.duration_s),
                size=recorder.size_in_bytes,
                failure_reason=recorder.failure_reason,
            )
            if finalize:
                await sync_to_async(_finalize_enqueue)(recorder.recording_id)
        except Exception:
            logger.exception("recording close failed recording_id=%s", recorder.recording_id)

    def _stream_connected(self, stream: RtmpStream) -> None:
        self._spawn(self._write(services.stream_connected, stream.stream_id, restarts=stream.restarts))

    def _stream_retry(self, stream: RtmpStream, attempt: int, delay_s: float, reason: str) -> None:
        self._spawn(self._write(services.stream_retrying, stream.stream_id, restarts=stream.restarts, reason=reason))

    def _stream_ended(self, stream: RtmpStream, reason: str) -> None:
        self.streams.pop(stream.stream_id, None)
        self._room_of.pop(stream.stream_id, None)
        self._spawn(self._write(services.stream_finished, stream.stream_id, reason=reason, restarts=stream.restarts))
        self._hub_release_if_idle(stream.hub)

    async def _write(self, func, object_id: str, **kwargs) -> None:
        """Run a state write of ``media.egress.services`` off the loop; a failure is logged, the output runs on."""
        try:
            await sync_to_async(func)(object_id, **kwargs)
        except Exception:
            logger.exception("egress state write %s failed object_id=%s", func.__name__, object_id)

    def _hub_release_if_idle(self, hub: RoomEgressHub) -> None:
        room_session_id = hub.room.room_session_id
        if not hub.sinks and self.hubs.get(room_session_id) is hub:
            del self.hubs[room_session_id]
            self._spawn(hub.close())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            progress = {
                recording_id: (recorder.duration_s, recorder.size_in_bytes)
                for recording_id, recorder in self.recorders.items()
                if recorder.state in ("recording", "paused")
            }
            if not progress:
                continue
            try:
                await sync_to_async(services.recordings_progress)(progress)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("recording progress write failed")
