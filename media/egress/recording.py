"""The recorder: a room's shared H.264 packets and AAC mix muxed into a **fragmented MP4** while the room runs.

File: ``PARLEY_DATA_DIR/recordings/<recording id>.mp4`` with ``movflags=frag_keyframe+empty_moov+
default_base_moof`` and ``frag_duration`` 1 s, so a process that dies leaves a file whose complete fragments
finalisation keeps (``mux.complete_fragments_size``). ``pause()``/``resume()`` cut the paused span out of the
timeline (no gap); ``stop()`` flushes and closes, then ``on_finished(recorder)`` runs on the loop (the supervisor
enqueues finalisation).

A write error (a full disk: ``OSError`` ENOSPC) fails the recorder with ``failure_reason``; what was written
stays on disk, trimmed to its last complete fragment (a file cut inside a ``moof`` would not open in FFmpeg).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from media.egress.hub import MediaItem, RoomEgressHub
from media.egress.mux import ContainerWriter, Timeline, trim_to_complete_fragments

logger = logging.getLogger(__name__)

FRAGMENT_DURATION_US = 1_000_000
MP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(FRAGMENT_DURATION_US),
    "flush_packets": "1",
}


def recording_working_path(recording_id: str) -> Path:
    """``PARLEY_DATA_DIR/recordings/<id>.mp4`` (the directory is created)."""
    directory = Path(settings.PARLEY_DATA_DIR) / "recordings"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{recording_id}.mp4"


def failure_reason_of(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "disk_full"
    return f"write_error: {type(exc).__name__}: {exc}"[:300]


class Recorder:
    """Records one room through ``hub``. ``state``: ``recording`` | ``paused`` | ``stopping`` | ``stopped`` |
    ``failed``. ``on_finished(recorder)`` is called once on the loop when the file is closed."""

    def __init__(
        self,
        *,
        recording_id: str,
        hub: RoomEgressHub,
        path: Path | None = None,
        on_finished: Callable[[Recorder], Any] | None = None,
    ) -> None:
        self.recording_id = recording_id
        self.hub = hub
        self.path = Path(path) if path is not None else recording_working_path(recording_id)
        self.on_finished = on_finished
        room = hub.room
        self.timeline = Timeline(room.fps)
        self.state = "recording"
        self.failure_reason = ""
        self.stats: dict = {}
        self.finished = asyncio.Event()
        self._writer = ContainerWriter(
            target=str(self.path),
            format="mp4",
            options=MP4_OPTIONS,
            width_px=room.canvas_w,
            height_px=room.canvas_h,
            fps=room.fps,
            aac_extradata=hub.aac_extradata,
            loop=asyncio.get_running_loop(),
            on_error=self._on_error,
            on_closed=self._on_closed,
            repair=trim_to_complete_fragments,
            name=f"rec-{recording_id[:8]}",
        )

    # -- control -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        self.hub.add(self)
        logger.info("recording started recording_id=%s path=%s", self.recording_id, self.path)

    def pause(self) -> None:
        if self.state == "recording":
            self.state = "paused"
            self.timeline.pause()

    def resume(self) -> None:
        if self.state == "paused":
            self.state = "recording"
            self.timeline.resume()
            self.hub.request_keyframe()

    def stop(self) -> None:
        """Flush and close the file; ``finished`` is set (and ``on_finished`` called) once it is closed."""
        if self.state in ("stopping", "stopped", "failed"):
            return
        self.state = "stopping"
        self.hub.remove(self)
        self._writer.close()

    @property
    def duration_s(self) -> float:
        return self.timeline.duration_s

    @property
    def size_in_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    # -- hub side ------------------------------------------------------------------------------------------
    def feed(self, item: MediaItem) -> None:
        out = self.timeline.push(item)
        if out is not None:
            self._writer.put(out)

    def room_stopped(self) -> None:
        self.stop()

    # -- writer callbacks (on the loop) --------------------------------------------------------------------
    def _on_error(self, exc: BaseException) -> None:
        self.failure_reason = failure_reason_of(exc)
        self.state = "failed"
        self.hub.remove(self)
        logger.error("recording failed recording_id=%s reason=%s", self.recording_id, self.failure_reason)

    def _on_closed(self, stats: dict) -> None:
        self.stats = stats
        if self.state != "failed":
            self.state = "stopped"
        logger.info("recording closed recording_id=%s state=%s stats=%s", self.recording_id, self.state, stats)
        self.finished.set()
        if self.on_finished is not None:
            try:
                result = self.on_finished(self)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)
            except Exception:
                logger.exception("recording on_finished failed recording_id=%s", self.recording_id)
