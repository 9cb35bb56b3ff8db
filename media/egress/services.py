"""Egress writes: the live state of recordings and streams, recording finalisation, orphan recovery, retention.

Sync functions (the media worker calls them through ``sync_to_async``; Celery tasks in ``media.tasks`` call
them directly). Events leave through ``rooms.events.event_emit`` with the payloads of
``rooms.signalling.egress`` (``{"recording": {...}}``, ``{"stream": {...}}``).

Finalisation (``recording_finalize``, idempotent): the fragmented MP4 at ``Recording.working_path`` is remuxed
(no re-encode) to a progressive MP4 with ``movflags=faststart``; duration is read from the result, a poster
JPEG is taken from its first video frame, SHA-256 computed; both files go to ``default_storage``
(``recordings/<id>.mp4``, ``recordings/<id>.jpg``). Status ``processing`` → ``completed`` (event
``recording.ended`` with ``uri``, a signed download URL) or ``failed`` with ``failure_reason``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import uuid
from datetime import timedelta
from pathlib import Path

import av
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from media.egress.mux import complete_fragments_size
from parley.db import close_stale_connections
from rooms.events import event_emit
from rooms.exceptions import StorageUnavailable
from rooms.models import Playback, Recording, RoomSession, Stream

logger = logging.getLogger(__name__)


def _in_fresh_transaction(fn):
    """Drop a stale connection first, then run ``fn`` in one transaction. (``close_old_connections`` must not
    run inside an atomic block: there it closes the connection the transaction is using.)"""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        close_stale_connections()
        with transaction.atomic():
            return fn(*args, **kwargs)

    return wrapper


LIVE_STATUSES = (Recording.Status.RECORDING, Recording.Status.PAUSED)
POSTER_WIDTH_PX = 640


def _emit_recording(event_type: str, recording: Recording, **extra) -> None:
    from rooms.signalling.egress import recording_payload

    session = recording.room_session
    payload = {**recording_payload(recording), **extra}
    event_emit(
        event_type,
        project_id=recording.project_id,
        room_id=session.room_id,
        room_session_id=session.id,
        recording_id=recording.id,
        params={"room_session_id": session.id, "room_id": session.room_id, "recording": payload},
    )


def _emit_stream(event_type: str, stream: Stream) -> None:
    from rooms.signalling.egress import stream_payload

    session = stream.room_session
    event_emit(
        event_type,
        project_id=stream.project_id,
        room_id=session.room_id if session else stream.room_id,
        room_session_id=session.id if session else None,
        params={
            "room_session_id": session.id if session else None,
            "room_id": session.room_id if session else stream.room_id,
            "stream": stream_payload(stream),
        },
    )


# -- live state (from the media worker) ------------------------------------------------------------------------
def recording_begin(recording_id: str, *, working_path: str) -> bool:
    """The worker started writing ``working_path``. False when the row does not exist or is not live."""
    close_stale_connections()
    updated = Recording.objects.filter(id=recording_id, status__in=LIVE_STATUSES).update(
        working_path=working_path, updated_at=timezone.now()
    )
    return bool(updated)


def recordings_progress(progress: dict[str, tuple[float, int]]) -> None:
    """``{recording_id: (duration_s, size_in_bytes)}`` of live recordings; also their liveness heartbeat."""
    close_stale_connections()
    now = timezone.now()
    for recording_id, (duration_s, size) in progress.items():
        Recording.objects.filter(id=recording_id, status__in=LIVE_STATUSES).update(
            duration=round(duration_s, 3), size_in_bytes=size, updated_at=now
        )


@_in_fresh_transaction
def recording_closed(recording_id: str, *, duration_s: float, size: int, failure_reason: str = "") -> bool:
    """The file is closed. A write failure (``failure_reason``, e.g. ``disk_full``) → ``failed`` (the part
    written stays at ``working_path``) and ``recording.ended`` with ``failure_reason`` and ``uri: null``;
    otherwise ``processing``. Returns True when finalisation should follow."""
    recording = (
        Recording.objects.select_for_update(of=("self",)).select_related("room_session").filter(id=recording_id).first()
    )
    if recording is None:
        return False
    recording.duration = round(duration_s, 3)
    recording.size_in_bytes = size
    if failure_reason:
        if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED):
            return False
        recording.status = Recording.Status.FAILED
        recording.failure_reason = failure_reason[:500]
        recording.finished_at = recording.finished_at or timezone.now()
        recording.save()
        _emit_recording("recording.ended", recording, uri=None)
        return False
    if recording.status in LIVE_STATUSES:
        recording.status = Recording.Status.PROCESSING
        recording.finished_at = recording.finished_at or timezone.now()
    recording.save()
    return recording.status == Recording.Status.PROCESSING


@_in_fresh_transaction
def stream_connected(stream_id: str, *, restarts: int) -> str | None:
    """The RTMP server accepted the output (handshake, ``publish`` and the first packet written): the row goes
    ``streaming``. The first acceptance emits ``stream.started`` (and sets ``started_at``); one after a drop
    emits ``stream.updated``. Returns the event emitted, or None when the row is gone or has ended."""
    stream = _stream_for_update(stream_id)
    if stream is None or stream.state not in (Stream.State.PENDING, Stream.State.RETRYING):
        return None
    event_type = "stream.started" if stream.started_at is None else "stream.updated"
    stream.state = Stream.State.STREAMING
    stream.started_at = stream.started_at or timezone.now()
    stream.restarts = restarts
    stream.save()
    _emit_stream(event_type, stream)
    return event_type


@_in_fresh_transaction
def stream_retrying(stream_id: str, *, restarts: int, reason: str = "") -> bool:
    """The output dropped (or its first connection failed) and will be retried: ``retrying`` with ``restarts``
    and ``stream.updated`` (once per drop: further failed attempts only update ``restarts``). ``reason`` (masked)
    is logged only. Returns True when the row went ``retrying``."""
    stream = _stream_for_update(stream_id)
    if stream is not None and stream.state == Stream.State.RETRYING:  # another failed attempt: count it only
        Stream.objects.filter(id=stream.id).update(restarts=restarts, updated_at=timezone.now())
        return False
    if stream is None or stream.state not in (Stream.State.PENDING, Stream.State.STREAMING):
        return False
    stream.state = Stream.State.RETRYING
    stream.restarts = restarts
    stream.save()
    logger.info("stream retrying stream_id=%s restarts=%d reason=%s", stream_id, restarts, reason)
    _emit_stream("stream.updated", stream)
    return True


def _stream_for_update(stream_id: str) -> Stream | None:
    return Stream.objects.select_for_update(of=("self",)).select_related("room_session").filter(id=stream_id).first()


@_in_fresh_transaction
def stream_finished(stream_id: str, *, reason: str, restarts: int) -> None:
    """The output ended: ``stopped``/``room_ended`` → ``completed``, anything else → ``failed`` with
    ``failure_reason``. Emits ``stream.ended`` unless the stop already did (the row is already ended)."""
    stream = _stream_for_update(stream_id)
    if stream is None or stream.state in (Stream.State.COMPLETED, Stream.State.FAILED):
        return
    if reason in ("stopped", "room_ended"):
        stream.state = Stream.State.COMPLETED
    else:
        stream.state = Stream.State.FAILED
        stream.failure_reason = reason[:500]
    stream.restarts = restarts
    stream.ended_at = timezone.now()
    stream.save()
    _emit_stream("stream.ended", stream)


# -- finalisation ----------------------------------------------------------------------------------------------
def _remux_faststart(source: Path, target: Path) -> int:
    """Copy the packets of ``source`` (fragmented MP4, possibly cut short) into a progressive MP4 with the moov
    first. Returns the number of video packets copied. A source cut by a crash or a full disk is read up to its
    last complete fragment (a copy of that prefix when the cut is elsewhere: the source is left as it is)."""
    kept = complete_fragments_size(source)
    if kept == source.stat().st_size:
        return _remux_packets(source, target)
    prefix = target.with_name(f"{target.stem}.prefix.mp4")
    try:
        with open(source, "rb") as src, open(prefix, "wb") as dst:
            remaining = kept
            while remaining and (chunk := src.read(min(remaining, 1 << 20))):
                dst.write(chunk)
                remaining -= len(chunk)
        logger.info(
            "recording source cut inside a fragment source=%s size=%d complete=%d", source, source.stat().st_size, kept
        )
        return _remux_packets(prefix, target)
    finally:
        prefix.unlink(missing_ok=True)


def _remux_packets(source: Path, target: Path) -> int:
    video_packets = 0
    with av.open(str(source)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        with av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in streams}
            try:
                for packet in inp.demux(streams):
                    if packet.dts is None or packet.size == 0:
                        continue
                    if packet.stream.type == "video":
                        video_packets += 1
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
            except (av.error.InvalidDataError, av.error.EOFError) as exc:
                logger.info("recording source ends in a partial fragment source=%s error=%s", source, exc)
    return video_packets


def _probe(path: Path) -> tuple[float, bytes]:
    """``(duration_s, poster_jpeg)`` of a finished MP4, read from the file."""
    with av.open(str(path)) as container:
        duration_s = (container.duration or 0) / 1_000_000
        poster = b""
        if container.streams.video:
            for frame in container.decode(video=0):
                image = frame.to_image()
                if image.width > POSTER_WIDTH_PX:
                    image = image.resize((POSTER_WIDTH_PX, round(image.height * POSTER_WIDTH_PX / image.width)))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
                poster = buffer.getvalue()
                break
    return duration_s, poster


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recording_fail(recording_id, reason: str) -> str:
    """``failed`` with ``reason`` and ``recording.ended`` (``uri: null``) — unless another finalisation already
    ended the row. Returns the row's final status."""
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update(of=("self",)).select_related("room_session").get(id=recording_id)
        )
        if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED):
            return recording.status
        recording.status = Recording.Status.FAILED
        recording.failure_reason = reason[:500]
        recording.finished_at = recording.finished_at or timezone.now()
        recording.save()
        _emit_recording("recording.ended", recording, uri=None)
        return recording.status


def recording_finalize(recording_id) -> str:
    """Finalise one recording (idempotent: a ``completed`` or ``failed`` one is left as it is). Returns the
    final status. Raises nothing for bad media (the row fails with a reason); storage errors propagate so
    the Celery task is retried. Two finalisations of one recording may overlap (the task and the orphan sweep):
    each remuxes to a file of its own and the first to commit wins; the other drops what it stored."""
    from rooms.api.downloads import recording_download_url

    close_stale_connections()
    with transaction.atomic():
        recording = Recording.objects.select_for_update().filter(id=recording_id).first()
        if recording is None:
            return "missing"
        if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED):
            return recording.status
        if recording.status != Recording.Status.PROCESSING:
            recording.status = Recording.Status.PROCESSING
            recording.finished_at = recording.finished_at or timezone.now()
            recording.save(update_fields=["status", "finished_at", "updated_at"])
        source = Path(recording.working_path) if recording.working_path else None
    if source is None or not source.exists() or source.stat().st_size == 0:
        return _recording_fail(recording_id, "no_media: nothing was written")
    target = source.with_name(f"{source.stem}.{uuid.uuid4().hex[:8]}.final.mp4")
    try:
        video_packets = _remux_faststart(source, target)
        if video_packets == 0:
            raise ValueError("no decodable video")
        duration_s, poster = _probe(target)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        target.unlink(missing_ok=True)
        logger.warning("recording finalisation failed recording_id=%s error=%s", recording_id, exc)
        return _recording_fail(recording_id, f"no_media: {exc}"[:300])
    sha256 = _sha256(target)
    size = target.stat().st_size
    try:
        with open(target, "rb") as fh:
            storage_name = default_storage.save(f"recordings/{recording_id}.mp4", File(fh))
        poster_name = default_storage.save(f"recordings/{recording_id}.jpg", ContentFile(poster)) if poster else ""
    finally:
        target.unlink(missing_ok=True)
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update(of=("self",)).select_related("room_session").get(id=recording_id)
        )
        if recording.status != Recording.Status.PROCESSING:  # an overlapping finalisation ended it first
            for name in {storage_name, poster_name} - {recording.storage_name, recording.poster_name, ""}:
                default_storage.delete(name)
            return recording.status
        recording.status = Recording.Status.COMPLETED
        recording.duration = round(duration_s, 3)
        recording.size_in_bytes = size
        recording.sha256 = sha256
        recording.storage_name = storage_name
        recording.poster_name = poster_name
        recording.failure_reason = ""
        recording.save()
        uri = recording_download_url(recording, ttl_seconds=settings.PARLEY_MEDIA_TTL_DEFAULT)
        _emit_recording("recording.ended", recording, uri=uri)
    source.unlink(missing_ok=True)
    logger.info("recording completed recording_id=%s duration_s=%.2f size=%d", recording_id, duration_s, size)
    return Recording.Status.COMPLETED


def recordings_recover_orphans(*, stale_after_seconds: int | None = None, now=None) -> list[str]:
    """Finalise recordings a worker left behind, from what is on disk: ``recording``/``paused`` rows whose
    progress heartbeat (``updated_at``, touched every few seconds while the worker records) is older than
    ``stale_after_seconds`` (default ``PARLEY_RECORDING_ORPHAN_AFTER_SECONDS``) — the worker died — and
    ``processing`` rows untouched as long — stopped, but no worker closed the file or the finalisation was lost.
    Returns their ids."""
    close_stale_connections()
    stale = settings.PARLEY_RECORDING_ORPHAN_AFTER_SECONDS if stale_after_seconds is None else stale_after_seconds
    cutoff = (now or timezone.now()) - timedelta(seconds=stale)
    statuses = (*LIVE_STATUSES, Recording.Status.PROCESSING)
    ids = [
        str(i)
        for i in Recording.objects.filter(status__in=statuses, updated_at__lte=cutoff).values_list("id", flat=True)
    ]
    for recording_id in ids:
        logger.warning("recovering orphaned recording recording_id=%s", recording_id)
        recording_finalize(recording_id)
    return ids


def streams_recover_orphans(*, stale_after_seconds: int | None = None, now=None) -> list[str]:
    """End live stream rows (``pending``/``streaming``/``retrying``) that no worker carries any more, so a dead
    worker never leaves a stream shown as live and a re-placed session can start a fresh copy of a standing
    stream (``media.worker.db._session_egress_autostart`` skips URLs with a live row).

    - the room session has ended → ``completed`` (``room_ended``);
    - the room session is live but its worker stopped heartbeating it (``RoomSession.updated_at``, touched every
      ``HEARTBEAT_SECONDS`` by its worker) or no worker holds it, and the stream row itself is as old →
      ``failed`` with ``failure_reason`` ``worker_lost``.

    ``stale_after_seconds`` defaults to the worker take-over window (``media.worker.db.STALE_AFTER_SECONDS``).
    Each ends through :func:`stream_finished` (``stream.ended`` event and webhook). Returns the ids ended."""
    from media.worker.db import STALE_AFTER_SECONDS

    close_stale_connections()
    stale = STALE_AFTER_SECONDS if stale_after_seconds is None else stale_after_seconds
    cutoff = (now or timezone.now()) - timedelta(seconds=stale)
    live = Stream.objects.filter(
        room_session__isnull=False,
        state__in=(Stream.State.PENDING, Stream.State.STREAMING, Stream.State.RETRYING),
    )
    ended_session = live.exclude(room_session__status=RoomSession.Status.IN_PROGRESS)
    lost_worker = live.filter(room_session__status=RoomSession.Status.IN_PROGRESS, updated_at__lte=cutoff).filter(
        Q(room_session__media_worker="") | Q(room_session__updated_at__lte=cutoff)
    )
    ended: list[str] = []
    for reason, rows in (("room_ended", ended_session), ("worker_lost", lost_worker)):
        for stream_id, restarts in rows.values_list("id", "restarts"):
            logger.warning("ending orphaned stream stream_id=%s reason=%s", stream_id, reason)
            stream_finished(str(stream_id), reason=reason, restarts=restarts)
            ended.append(str(stream_id))
    return ended


def playbacks_recover_orphans(*, stale_after_seconds: int | None = None, now=None) -> list[str]:
    """End live playback rows (``opening``/``playing``/``paused``) that no worker plays any more: a worker that died
    or whose stop abandoned a session cannot end them itself, and a playback is never re-opened on another worker.

    - the room session has ended → ``completed``;
    - the room session is live but its worker stopped heartbeating it (``RoomSession.updated_at``) or no worker
      holds it, and the playback row itself is as old → ``failed`` with ``failure_reason`` ``worker_lost``.

    ``stale_after_seconds`` defaults to the worker take-over window (``media.worker.db.STALE_AFTER_SECONDS``).
    Each ends through ``media.worker.db`` (``playback.ended`` event and webhook). Returns the ids ended."""
    from media.worker.db import STALE_AFTER_SECONDS, _playback_emit, _playback_failed

    close_stale_connections()
    stale = STALE_AFTER_SECONDS if stale_after_seconds is None else stale_after_seconds
    cutoff = (now or timezone.now()) - timedelta(seconds=stale)
    live = Playback.objects.filter(state__in=(Playback.State.OPENING, Playback.State.PLAYING, Playback.State.PAUSED))
    ended_session = live.exclude(room_session__status=RoomSession.Status.IN_PROGRESS)
    lost_worker = live.filter(room_session__status=RoomSession.Status.IN_PROGRESS, updated_at__lte=cutoff).filter(
        Q(room_session__media_worker="") | Q(room_session__updated_at__lte=cutoff)
    )
    ended: list[str] = []
    for playback_id in ended_session.values_list("id", flat=True):
        logger.warning("ending orphaned playback playback_id=%s reason=room_ended", playback_id)
        if _playback_emit(str(playback_id), ended=True) is not None:
            ended.append(str(playback_id))
    for playback_id in lost_worker.values_list("id", flat=True):
        logger.warning("ending orphaned playback playback_id=%s reason=worker_lost", playback_id)
        if _playback_failed(str(playback_id), "worker_lost") is not None:
            ended.append(str(playback_id))
    return ended


def recordings_apply_retention(*, now=None) -> int:
    """Delete recordings (stored files, working file and row, :func:`recording_delete`) finished more than
    ``PARLEY_RECORDING_RETENTION_DAYS`` ago, oldest first; 0 days keeps everything. A recording whose files
    the storage refuses (``StorageUnavailable``, logged) keeps its row and is retried by the next sweep; the
    sweep moves on to the next one. Returns how many were deleted."""
    close_stale_connections()
    days = settings.PARLEY_RECORDING_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = Recording.objects.filter(
        status__in=(Recording.Status.COMPLETED, Recording.Status.FAILED), started_at__lt=cutoff
    ).order_by("started_at")
    deleted = kept = 0
    for recording_id in list(old.values_list("id", flat=True)):
        try:
            with transaction.atomic():
                recording = Recording.objects.select_for_update().filter(id=recording_id).first()
                if recording is not None:
                    recording_delete(recording)
                    deleted += 1
        except StorageUnavailable:
            kept += 1
    if kept:
        logger.warning("recording retention kept %d recording(s) the storage refused; next sweep retries", kept)
    return deleted


def _storage_errors() -> tuple[type[BaseException], ...]:
    """What a storage backend raises when it fails: ``OSError`` (local disk) and botocore's errors (S3:
    ``ClientError`` for a refusal, ``BotoCoreError`` such as ``EndpointConnectionError`` for no answer)."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # only the local storage is in use
        return tuple(errors)
    return (*errors, BotoCoreError, ClientError)


STORAGE_ERRORS = _storage_errors()


def storage_error_summary(exc: BaseException) -> str:
    """A loggable description of a storage failure: the exception type with the S3 error code and HTTP status
    or the ``errno``, never its message (botocore's messages carry endpoint URLs and request details)."""
    parts = [type(exc).__name__]
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        parts.append(str(response.get("Error", {}).get("Code", "")))
        parts.append(f"HTTP {response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')}")
    elif isinstance(exc, OSError) and exc.errno is not None:
        parts.append(f"errno={exc.errno}")
    return " ".join(p for p in parts if p)


def recording_working_file(recording: Recording) -> Path | None:
    """The working file (fragmented MP4) of ``recording`` when it lies under ``PARLEY_DATA_DIR`` (a path
    elsewhere, e.g. another host's data directory, is not this process's to remove), else None."""
    if not recording.working_path:
        return None
    path = Path(recording.working_path).resolve()
    if not path.is_relative_to(Path(settings.PARLEY_DATA_DIR).resolve()):
        return None
    return path


def recording_files_delete(recording: Recording) -> None:
    """Remove a recording's poster, stored file (``default_storage``) and working file, in that order; missing
    ones are ignored, so each removal is idempotent and a retry after a failure finishes the job.

    Raises ``StorageUnavailable`` (logged with :func:`storage_error_summary`) at the first failure: an
    unreachable or refusing storage fails at the first file, before anything is removed."""
    working = recording_working_file(recording)
    steps = [(name, default_storage.delete) for name in (recording.poster_name, recording.storage_name) if name]
    if working is not None:
        steps.append((str(working), lambda path: Path(path).unlink(missing_ok=True)))
    for name, remove in steps:
        try:
            remove(name)
        except STORAGE_ERRORS as exc:
            logger.error(
                "recording file delete failed recording_id=%s name=%s error=%s",
                recording.id,
                name,
                storage_error_summary(exc),
            )
            raise StorageUnavailable() from exc


def recording_delete(recording: Recording) -> None:
    """Delete a finished recording: its files (:func:`recording_files_delete`), then its row. Call inside a
    transaction holding the row. Raises ``StorageUnavailable`` with the row left in place."""
    recording_files_delete(recording)
    recording.delete()
