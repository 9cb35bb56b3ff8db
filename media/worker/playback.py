"""``PlaybackSource``: a URL played into a room session as a layer and an audio input (DESIGN §5 ``room.playback``).

PyAV opens the URL (a file path, ``file://``, ``http(s)://``, ``rtmp(s)://``, ``rtsp://``) on a thread of its own
with a timeout (``open_timeout_s()``, below the web side's answer timeout), never on the event loop and never in the
shared executor, so a URL that never answers holds only that thread: ``open_in_background()`` reports the result
on the event loop while the room's other commands go on. A URL that does not open, or holds neither an audio nor a
video stream, raises ``InvalidMedia`` with a ``reason`` (a key of ``media.protocol.PLAYBACK_OPEN_FAILURES``).
Right before opening, the opener thread resolves the URL's host again and refuses (reason ``url_not_allowed``) a
loopback, private or link-local target, or a URL without a host (a local file), unless
``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS`` (the SSRF guard of ``rooms.urlguard``; the web side checked it too, this
catches a name that resolves elsewhere now); HTTP redirects are then not followed. Network URLs open with FFmpeg's
``protocol_whitelist`` limited to network protocols, so a playlist cannot point FFmpeg at a local file. Once
started, one decode thread demuxes and decodes the file, paced by the frames' pts against the wall clock (no
looping):

- video frames (yuv420p) become the ``latest_video`` of a ``MemberMedia`` of kind ``playback`` whose id is the
  ``Playback`` id, so the layout engine places it like a member (its layer reports ``playing_file``);
- audio is resampled to 48 kHz mono s16 in 960-sample (20 ms) frames and appended to that member's jitter buffer
  ``AUDIO_LEAD_S`` ahead of time; the room's audio loop mixes it as an input every member hears, with the
  playback volume (dB) as its input gain. The playback member receives nothing and is never a talker.

Controls (called on the event loop, applied by the decode thread; while the URL is still opening they are kept and
applied at ``start()``): ``pause()``, ``resume()``, ``seek(position_ms)``, ``set_volume(volume_db)``, ``stop()``.
End of file calls ``on_ended(source)`` on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import av
import numpy as np
from django.conf import settings

from media import protocol
from media.worker.room import MemberMedia, RoomMixer
from media.worker.tracks import AUDIO_RATE_HZ, AUDIO_SAMPLES
from rooms.urlguard import url_host_refused

logger = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
# The web side waits PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS for the start's answer: the open gives up this much earlier,
# so a slow URL is answered with reason ``timeout`` rather than left to the web side's ``media_unavailable``.
ANSWER_MARGIN_S = 3.0
OPEN_GRACE_S = 1.0  # PyAV's own open timeout interrupts FFmpeg; the wait on its thread allows this much more
READ_TIMEOUT_S = 10.0
AUDIO_LEAD_S = 0.06  # audio reaches the jitter buffer this far ahead of its play time (≤ 100 ms buffer)
POLL_S = 0.05
# FFmpeg's demuxers of text art (ANSI/ASCII files): they turn any text into "video"; not media for a room.
TEXT_DEMUXERS = frozenset({"tty", "bin", "xbin", "idf", "adf"})
# FFmpeg protocols a network URL (and whatever it nests: HLS segments, keys) may use: no ``file``, ``pipe``...
NETWORK_SCHEMES = frozenset({"http", "https", "rtmp", "rtmps", "rtsp"})
NETWORK_PROTOCOLS = "http,https,tls,tcp,udp,rtp,rtmp,rtmps,rtmpt,rtmpts,rtsp,crypto,httpproxy"


class InvalidMedia(Exception):
    """The URL does not open, or holds no audio or video stream. ``reason``: a key of
    ``media.protocol.PLAYBACK_OPEN_FAILURES``, or ``stopped`` (the playback was stopped while its URL was opening)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        self.reason = reason
        self.message = message or protocol.PLAYBACK_OPEN_FAILURES.get(reason, "The URL could not be opened.")
        super().__init__(self.message)


def open_timeout_s() -> float:
    """Seconds the worker tries to open a URL: ``OPEN_TIMEOUT_S``, or less so the answer reaches the web side
    within its ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS`` (at least 1 s)."""
    answer_s = float(getattr(settings, "PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS", protocol.ANSWER_TIMEOUT_SECONDS))
    return max(1.0, min(OPEN_TIMEOUT_S, answer_s - ANSWER_MARGIN_S))


def _open_failure_reason(exc: Exception) -> str:
    if isinstance(exc, av.error.ExitError):  # PyAV's open timeout interrupted FFmpeg
        return "timeout"
    if isinstance(exc, (av.error.HTTPNotFoundError, FileNotFoundError)):
        return "not_found"
    if isinstance(exc, (av.error.HTTPClientError, av.error.HTTPServerError)):
        return "http_error"
    if isinstance(exc, av.error.InvalidDataError):
        return "not_media"
    if isinstance(exc, (ConnectionError, TimeoutError)) or getattr(exc, "errno", None) in (101, 110, 113):
        return "unreachable"
    return "open_failed"


def _ffmpeg_url(url: str) -> str:
    """A ``file://`` URL becomes a path; other URLs (and plain paths) go to FFmpeg as they are."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return parts.path
    return url


def _url_check(url: str) -> None:
    """Blocking (DNS): the SSRF guard right before opening. Raises ``InvalidMedia`` ``url_not_allowed`` (the host
    is or resolves to a refused address, or there is no host) or ``unreachable`` (the host does not resolve)."""
    if settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS:
        return
    try:
        refused = url_host_refused(url)
    except (OSError, UnicodeError, ValueError) as exc:
        raise InvalidMedia("unreachable") from exc
    if refused:
        raise InvalidMedia("url_not_allowed")


def _open_options(url: str) -> dict[str, str]:
    """FFmpeg options for opening ``url``: network URLs are limited to ``NETWORK_PROTOCOLS``; while the SSRF guard
    is on (``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS`` off) HTTP redirects are not followed, since FFmpeg would follow
    one to any address (the open then fails with ``open_failed``)."""
    scheme = urlsplit(url).scheme
    options = {"protocol_whitelist": NETWORK_PROTOCOLS} if scheme in NETWORK_SCHEMES else {}
    if scheme in ("http", "https") and not settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS:
        options["max_redirects"] = "0"
    return options


def _open(url: str, timeout_s: float) -> av.container.InputContainer:
    """Blocking: check and open ``url`` with PyAV. Raises ``InvalidMedia``."""
    _url_check(url)
    try:
        container = av.open(_ffmpeg_url(url), mode="r", timeout=(timeout_s, READ_TIMEOUT_S), options=_open_options(url))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InvalidMedia(_open_failure_reason(exc)) from exc
    if container.format.name in TEXT_DEMUXERS or (not container.streams.video and not container.streams.audio):
        container.close()
        raise InvalidMedia("not_media")
    return container


class PlaybackSource:
    """One playback of ``url`` into ``room``. ``playback_id``: the ``Playback`` row id (also the layer's member id).

    States: ``opening`` → ``playing`` ⇄ ``paused`` → ``completed`` (end of file) or ``stopped``.
    """

    def __init__(
        self,
        room: RoomMixer,
        playback_id: str,
        url: str,
        *,
        volume_db: float = 0.0,
        on_ended: Callable[[PlaybackSource], None] | None = None,
    ) -> None:
        self.room = room
        self.playback_id = playback_id
        self.url = url
        self.volume_db = float(volume_db)
        self.on_ended = on_ended
        self.state = "opening"
        self.position_ms = 0
        self.video_frames = 0
        self.audio_frames = 0
        self.member: MemberMedia | None = None
        self._container: av.container.InputContainer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seek_ms: int | None = None
        self._lock = threading.Lock()
        self._open_task: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def open(self, timeout_s: float | None = None) -> None:
        """Open the URL on a thread of its own (default timeout ``open_timeout_s()``). Raises ``InvalidMedia``
        (reason ``timeout`` when it takes longer than ``timeout_s``). A container that opens after the wait gave
        up (timeout or cancellation) is closed as soon as it arrives."""
        timeout_s = open_timeout_s() if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        opened: asyncio.Future = loop.create_future()

        def settle(container, error) -> None:  # event loop
            if opened.done():
                if container is not None:
                    container.close()
            elif error is not None:
                opened.set_exception(error)
            else:
                opened.set_result(container)

        def run() -> None:  # opener thread
            container, error = None, None
            try:
                container = _open(self.url, timeout_s)
            except InvalidMedia as exc:
                error = exc
            except Exception as exc:  # never leave the waiter hanging
                error = InvalidMedia("open_failed", str(exc)[:200])
            try:
                loop.call_soon_threadsafe(settle, container, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                if container is not None:
                    container.close()

        threading.Thread(target=run, name=f"playback-open-{self.playback_id[:8]}", daemon=True).start()
        try:
            self._container = await asyncio.wait_for(opened, timeout_s + OPEN_GRACE_S)
        except TimeoutError as exc:
            raise InvalidMedia("timeout") from exc

    def open_in_background(
        self, on_opened: Callable[[PlaybackSource, InvalidMedia | None], None], timeout_s: float | None = None
    ) -> None:
        """Open the URL without waiting for it: ``on_opened(source, error)`` is called on the event loop once,
        with ``error`` None when the URL opened (call ``start()`` then), an ``InvalidMedia`` when it did not, or
        ``InvalidMedia("stopped")`` when ``stop()`` came first."""

        async def opening() -> None:
            error: InvalidMedia | None = None
            try:
                await self.open(timeout_s)
            except InvalidMedia as exc:
                error = exc
            except asyncio.CancelledError:
                on_opened(self, InvalidMedia("stopped", "The playback was stopped while its URL was opening."))
                raise
            if error is None and self._stop.is_set():
                self._close_container()
                error = InvalidMedia("stopped", "The playback was stopped while its URL was opening.")
            on_opened(self, error)

        self._open_task = asyncio.ensure_future(opening())

    def _close_container(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.close()

    def start(self) -> None:
        """Add the playback member to the room (relayout) and start the decode thread. Call after ``open()``."""
        assert self._container is not None, "open() first"
        self._loop = asyncio.get_running_loop()
        room = self.room
        room._join_counter += 1
        member = MemberMedia(
            member_id=self.playback_id,
            name="Playback",
            kind="playback",
            media_allowed="none",
            input_volume=self.volume_db,
            join_order=room._join_counter,
            has_video_input=bool(self._container.streams.video),
        )
        self.member = member
        room.members[self.playback_id] = member
        room._layout_dirty = True
        self.state = "paused" if self._paused.is_set() else "playing"
        self._thread = threading.Thread(target=self._run, name=f"playback-{self.playback_id[:8]}", daemon=True)
        self._thread.start()
        logger.info("playback started room_session_id=%s playback_id=%s", room.room_session_id, self.playback_id)

    async def stop(self) -> None:
        """Stop opening or decoding, remove the layer (relayout). Idempotent."""
        self._stop.set()
        self._paused.clear()
        task = self._open_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 5.0)
        elif thread is None:
            self._close_container()  # opened but never started
        if self.state not in ("completed",):
            self.state = "stopped"
        self._remove_member()

    def _remove_member(self) -> None:
        if self.room.members.get(self.playback_id) is self.member and self.member is not None:
            del self.room.members[self.playback_id]
            self.room._layout_dirty = True

    # -- controls ------------------------------------------------------------------------------------------
    def pause(self) -> None:
        if self.state in ("opening", "playing"):
            self._paused.set()
            if self.state == "playing":
                self.state = "paused"

    def resume(self) -> None:
        if self.state in ("opening", "paused"):
            self._paused.clear()
            if self.state == "paused":
                self.state = "playing"

    @property
    def seekable(self) -> bool:
        """False for a live stream (no duration: RTMP, RTSP, a live HLS playlist), once its URL opened; True
        while it is still opening (the seek is kept and applied at ``start()`` where possible)."""
        container = self._container
        return container is None or container.duration is not None

    def seek(self, position_ms: int) -> None:
        with self._lock:
            self._seek_ms = max(0, int(position_ms))

    def set_volume(self, volume_db: float) -> None:
        self.volume_db = float(volume_db)
        if self.member is not None:
            self.member.input_volume = self.volume_db

    # -- decode thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        container = self._container
        assert container is not None and self.member is not None
        member = self.member
        streams = [s for s in (*container.streams.video[:1], *container.streams.audio[:1])]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE_HZ, frame_size=AUDIO_SAMPLES)
        base_wall: float | None = None  # wall-clock time of pts 0
        skip_until_s = 0.0
        completed = False
        try:
            packets = container.demux(*streams)
            while not self._stop.is_set():
                with self._lock:
                    seek_ms, self._seek_ms = self._seek_ms, None
                if seek_ms is not None:
                    container.seek(seek_ms * 1000, backward=True, any_frame=False)
                    for stream in streams:
                        stream.codec_context.flush_buffers()
                    resampler = av.AudioResampler(
                        format="s16", layout="mono", rate=AUDIO_RATE_HZ, frame_size=AUDIO_SAMPLES
                    )
                    member.audio_buffer.clear()
                    base_wall = None
                    skip_until_s = seek_ms / 1000.0
                    self.position_ms = seek_ms
                    packets = container.demux(*streams)
                try:
                    packet = next(packets)
                except StopIteration:
                    completed = True
                    break
                for frame in packet.decode():
                    t_s = frame.time
                    if t_s is None or t_s < skip_until_s:
                        continue
                    if base_wall is None:
                        base_wall = time.monotonic() - t_s
                    is_audio = isinstance(frame, av.AudioFrame)
                    base_wall = self._wait_until(base_wall, t_s, AUDIO_LEAD_S if is_audio else 0.0)
                    if base_wall is None:
                        return
                    self.position_ms = int(t_s * 1000)
                    if is_audio:
                        for out in resampler.resample(frame):
                            pcm = out.to_ndarray().reshape(-1)
                            if pcm.shape[0] == AUDIO_SAMPLES:
                                member.audio_buffer.append(pcm.astype(np.int16, copy=False))
                                self.audio_frames += 1
                    else:
                        if frame.format.name != "yuv420p":
                            frame = frame.reformat(format="yuv420p")
                        member.latest_video = frame
                        self.video_frames += 1
                    if self._seek_ms is not None:
                        break
        except Exception:
            logger.exception(
                "playback decode failed room_session_id=%s playback_id=%s", self.room.room_session_id, self.playback_id
            )
            completed = True
        finally:
            container.close()
            if completed and not self._stop.is_set() and self._loop is not None:
                self._loop.call_soon_threadsafe(self._ended)

    def _wait_until(self, base_wall: float, t_s: float, lead_s: float) -> float | None:
        """Sleep until the frame at ``t_s`` is due; while paused, hold and re-base the clock on resume.
        Returns the (possibly re-based) wall time of pts 0, or None when stopped."""
        while True:
            if self._stop.is_set():
                return None
            if self._paused.is_set():
                while self._paused.is_set() and not self._stop.is_set():
                    self._stop.wait(POLL_S)
                base_wall = time.monotonic() - t_s
                continue
            if self._seek_ms is not None:
                return base_wall
            delay_s = base_wall + t_s - lead_s - time.monotonic()
            if delay_s <= 0:
                return base_wall
            self._stop.wait(min(delay_s, POLL_S))

    def _ended(self) -> None:
        """Event loop: end of file."""
        if self.state in ("stopped", "completed"):
            return
        self.state = "completed"
        self._remove_member()
        logger.info("playback completed room_session_id=%s playback_id=%s", self.room.room_session_id, self.playback_id)
        if self.on_ended is not None:
            self.on_ended(self)
