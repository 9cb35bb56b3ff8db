"""RTMP/RTMPS egress: the room's shared H.264 packets and AAC mix muxed as FLV to ``rtmp://`` or ``rtmps://``.

The connection and the writes run in a ``ContainerWriter`` thread (``av.open(url, "w", format="flv")`` connects
lazily; the first ``mux()`` to a closed port raises ``ConnectionRefusedError``). A drop (refused, reset, broken
pipe, timeout) restarts the output after a back-off of 1, 2, 4 … s (``PARLEY_RTMP_BACKOFF_BASE_SECONDS``, capped
at ``PARLEY_RTMP_BACKOFF_MAX_SECONDS``); a run that carried at least ``HEALTHY_RUN_S`` of media resets the
count. After ``PARLEY_RTMP_MAX_FAILURES`` failures in a row the stream ends with ``failure_reason``.

Callbacks (on the loop): ``on_connected(stream)`` each time a server accepted the output — TCP connect, RTMP
handshake, ``connect``/``publish`` and the first packet written (the first connection and every successful
reconnect); ``on_retry(stream, attempt, delay_s, reason)`` after a drop; ``on_ended(stream, reason)`` with
``reason`` ``stopped`` | ``room_ended`` | ``<the last error>``. URLs are never logged unmasked
(``rooms.validators.mask_stream_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings

from media.egress.hub import MediaItem, RoomEgressHub
from media.egress.mux import ContainerWriter, Timeline
from rooms.validators import mask_stream_url

logger = logging.getLogger(__name__)

HEALTHY_RUN_S = 5.0
IO_TIMEOUT_US = 5_000_000


def failure_text(exc: BaseException, url: str) -> str:
    """``"<ErrorType>: <message>"`` with the stream URL (and its key) masked."""
    text = f"{type(exc).__name__}: {exc}".replace(url, mask_stream_url(url))
    return text[:300]


class RtmpStream:
    """One RTMP output of a room through ``hub``. ``state``: ``connecting`` (until a server first accepts) |
    ``streaming`` | ``retrying`` (after a drop, until a reconnect is accepted) | ``ended``. ``connections``: how
    many times a server accepted it."""

    def __init__(
        self,
        *,
        stream_id: str,
        url: str,
        hub: RoomEgressHub,
        on_connected: Callable[..., Any] | None = None,
        on_retry: Callable[..., Any] | None = None,
        on_ended: Callable[..., Any] | None = None,
        max_failures: int | None = None,
        backoff_base_s: float | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.url = url
        self.masked_url = mask_stream_url(url)
        self.hub = hub
        self.on_connected, self.on_retry, self.on_ended = on_connected, on_retry, on_ended
        self.max_failures = max_failures if max_failures is not None else settings.PARLEY_RTMP_MAX_FAILURES
        self.backoff_base_s = (
            backoff_base_s if backoff_base_s is not None else settings.PARLEY_RTMP_BACKOFF_BASE_SECONDS
        )
        self.backoff_max_s = settings.PARLEY_RTMP_BACKOFF_MAX_SECONDS
        self.state = "connecting"
        self.connections = 0
        self.failures = 0
        self.restarts = 0
        self.end_reason = ""
        self.ended = asyncio.Event()
        self.timeline: Timeline | None = None
        self._writer: ContainerWriter | None = None
        self._error: BaseException | None = None
        self._retry_task: asyncio.Task | None = None
        self.attempts = 0

    # -- control -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.hub.add(self)
        self._connect()

    def stop(self, reason: str = "stopped") -> None:
        if self.state == "ended" or self.end_reason:
            return
        self.end_reason = reason
        self.hub.remove(self)
        if self._retry_task is not None:
            self._retry_task.cancel()
        if self._writer is not None and not self._writer.failed:
            self._writer.close()
        else:
            self._finish()

    # -- connection ----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        room = self.hub.room
        self.attempts += 1
        self._error = None
        self.timeline = Timeline(room.fps)
        scheme_options = {"rw_timeout": str(IO_TIMEOUT_US), "flvflags": "no_duration_filesize", "flush_packets": "1"}
        self._writer = ContainerWriter(
            target=self.url,
            format="flv",
            options=scheme_options,
            width_px=room.canvas_w,
            height_px=room.canvas_h,
            fps=room.fps,
            aac_extradata=self.hub.aac_extradata,
            loop=asyncio.get_running_loop(),
            on_opened=self._on_opened,
            on_error=self._on_error,
            on_closed=self._on_closed,
            name=f"rtmp-{self.stream_id[:8]}",
        )
        self._writer.start()
        self.hub.request_keyframe()
        logger.info("stream connecting stream_id=%s url=%s attempt=%d", self.stream_id, self.masked_url, self.attempts)

    def feed(self, item: MediaItem) -> None:
        if self._writer is None or self._writer.failed or self.timeline is None or self._retry_task is not None:
            return
        out = self.timeline.push(item)
        if out is not None:
            self._writer.put(out)

    def room_stopped(self) -> None:
        self.stop("room_ended")

    def _on_opened(self) -> None:
        if self.end_reason:
            return
        self.connections += 1
        self.state = "streaming"
        logger.info(
            "stream accepted stream_id=%s url=%s attempt=%d connections=%d",
            self.stream_id,
            self.masked_url,
            self.attempts,
            self.connections,
        )
        if self.on_connected is not None:
            self._call(self.on_connected, self)

    def _on_error(self, exc: BaseException) -> None:
        self._error = exc

    def _on_closed(self, stats: dict) -> None:
        if self.end_reason:
            self._finish()
            return
        if self._error is None:
            return
        reason = failure_text(self._error, self.url)
        if stats.get("duration_s", 0.0) >= HEALTHY_RUN_S:
            self.failures = 0
        self.failures += 1
        if self.failures >= self.max_failures:
            logger.warning(
                "stream failed stream_id=%s url=%s failures=%d reason=%s",
                self.stream_id,
                self.masked_url,
                self.failures,
                reason,
            )
            self.end_reason = reason
            self.hub.remove(self)
            self._finish()
            return
        delay_s = min(self.backoff_max_s, self.backoff_base_s * 2 ** (self.failures - 1))
        self.state = "retrying"
        self.restarts += 1
        logger.info(
            "stream dropped stream_id=%s url=%s failures=%d retry_in_s=%.1f reason=%s",
            self.stream_id,
            self.masked_url,
            self.failures,
            delay_s,
            reason,
        )
        if self.on_retry is not None:
            self._call(self.on_retry, self, self.failures, delay_s, reason)
        self._retry_task = asyncio.ensure_future(self._retry_after(delay_s))

    async def _retry_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._retry_task = None
        if self.end_reason:
            return
        self._connect()  # still ``retrying`` until the server accepts (``_on_opened``)

    def _finish(self) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        logger.info("stream ended stream_id=%s url=%s reason=%s", self.stream_id, self.masked_url, self.end_reason)
        self.ended.set()
        if self.on_ended is not None:
            self._call(self.on_ended, self, self.end_reason)

    def _call(self, func, *args) -> None:
        with contextlib.suppress(Exception):
            result = func(*args)
            if asyncio.iscoroutine(result):
                asyncio.ensure_future(result)
