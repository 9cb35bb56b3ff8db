"""Muxing the hub's shared packets into a container (fragmented MP4 file, FLV over RTMP) in a thread.

``Timeline`` (event loop side) turns room-clock times into output times: the first keyframe is 0, video waits for
a keyframe after a start or a resume, and paused time is cut out so the output has no gap.

``ContainerWriter`` (thread side) opens the container on the first video item — a keyframe whose in-band SPS/PPS
become the H.264 stream's extradata (Annex B; the mp4 and flv muxers write the avcC from it) — and muxes copies
of the packets (no re-encode). Blocking I/O stays in the thread; the first packet written comes back to the loop
through ``on_opened()`` (for ``rtmp://`` that is after the TCP connect, the RTMP handshake, ``connect`` /
``publish`` and the FLV header: PyAV opens the output on the first ``mux``), errors through ``on_error(exc)``,
the close through ``on_closed(stats)``, all called with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import fractions
import logging
import os
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from media.egress.hub import AUDIO_RATE_HZ, MediaItem

logger = logging.getLogger(__name__)

AAC_FRAME_S = 1024 / AUDIO_RATE_HZ
WRITER_QUEUE_SIZE = 1500  # ~10 s of video + audio items
H264_SPS, H264_PPS = 7, 8
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE_HZ)


def annexb_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte string (start codes removed)."""
    units: list[bytes] = []
    i, n = 0, len(data)
    start = -1
    while i + 3 <= n:
        if (
            data[i] == 0
            and data[i + 1] == 0
            and (data[i + 2] == 1 or (data[i + 2] == 0 and i + 3 < n and data[i + 3] == 1))
        ):
            code_len = 3 if data[i + 2] == 1 else 4
            if start >= 0:
                units.append(data[start:i].rstrip(b"\x00"))
            i += code_len
            start = i
        else:
            i += 1
    if start >= 0:
        units.append(data[start:])
    return [u for u in units if u]


def h264_extradata(keyframe: bytes) -> bytes:
    """SPS and PPS of a keyframe as Annex B extradata; ``b""`` when the keyframe carries none."""
    parts = [u for u in annexb_nal_units(keyframe) if u[0] & 0x1F in (H264_SPS, H264_PPS)]
    return b"".join(b"\x00\x00\x00\x01" + u for u in parts)


def complete_fragments_size(path: str | os.PathLike) -> int:
    """Bytes of ``path`` — a fragmented MP4 that a full disk or a crash may have cut anywhere — up to the end of
    its last complete fragment (``moof`` + ``mdat``), or of ``ftyp``/``moov`` before the first.

    Walks the top-level boxes (ISO/IEC 14496-12 §4.2: a 32-bit size, a 64-bit ``largesize`` when it is 1, 0 for
    "to the end of the file") with one seek and one read per box. A ``moof`` counts only with its complete
    ``mdat``. Why it matters: FFmpeg's mov demuxer reads every top-level box when it opens a file, and a file cut
    inside a ``moof`` does not open at all ("error reading header"); cut after a complete box it plays up to the
    cut. Raises ``OSError`` when ``path`` cannot be read."""
    with open(path, "rb") as fh:
        total = os.fstat(fh.fileno()).st_size
        offset = kept = 0
        while offset + 8 <= total:
            fh.seek(offset)
            header = fh.read(16)
            size, box_type = struct.unpack(">I4s", header[:8])
            header_len = 8
            if size == 1:
                if len(header) < 16:
                    break
                size, header_len = struct.unpack(">Q", header[8:16])[0], 16
            elif size == 0:
                size = total - offset
            if size < header_len or offset + size > total:
                break
            offset += size
            if box_type != b"moof":
                kept = offset
    return kept


def trim_to_complete_fragments(path: str | os.PathLike) -> int:
    """Truncate ``path`` (fragmented MP4) to ``complete_fragments_size``; returns the bytes removed (0 when the
    file ends on a complete fragment). Only for a file nothing writes any more. Raises ``OSError``."""
    size = os.path.getsize(path)
    kept = complete_fragments_size(path)
    if kept < size:
        os.truncate(path, kept)
        logger.info(
            "fragmented mp4 trimmed to its last complete fragment path=%s size=%d removed=%d", path, kept, size - kept
        )
    return size - kept


@dataclass(slots=True)
class OutItem:
    kind: str
    data: bytes
    time_s: float
    keyframe: bool


class Timeline:
    """Output times for one sink. ``push(item)`` returns an ``OutItem`` or None (dropped)."""

    def __init__(self, fps: int) -> None:
        self.frame_s = 1.0 / max(1, fps)
        self.paused = False
        self.waiting_keyframe = True
        self.started = False
        self.cut_s = 0.0
        self.last_video_s = -1.0
        self.last_audio_s = -1.0

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.waiting_keyframe = True

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_video_s + self.frame_s) if self.started else 0.0

    def push(self, item: MediaItem) -> OutItem | None:
        if self.paused:
            return None
        if item.kind == "video":
            if self.waiting_keyframe:
                if not item.keyframe:
                    return None
                # Start (0) or resume right after the last written frame: the paused span is cut out.
                target_s = self.last_video_s + self.frame_s if self.started else 0.0
                self.cut_s = item.time_s - target_s
                self.waiting_keyframe = False
                self.started = True
            out_s = item.time_s - self.cut_s
            if out_s <= self.last_video_s:
                return None
            self.last_video_s = out_s
            return OutItem("video", item.data, out_s, item.keyframe)
        if self.waiting_keyframe:
            return None
        out_s = item.time_s - self.cut_s
        if out_s < 0 or out_s < self.last_audio_s + AAC_FRAME_S * 0.5:
            return None
        self.last_audio_s = out_s
        return OutItem("audio", item.data, out_s, False)


class ContainerWriter:
    """A thread muxing ``OutItem``s into ``target`` (a path or URL) with ``format`` and ``options``.

    ``on_opened()`` (once the first packet is written), ``on_error(exc)`` and ``on_closed(stats)`` are called on
    ``loop``. ``stats``: ``{"video_packets", "audio_packets", "duration_s"}``. ``repair(target)``, when given, runs
    in the writer thread after a failed write closed the container and before ``on_error`` (the recorder trims a
    file cut by a full disk to its last complete fragment); its own errors are logged."""

    def __init__(
        self,
        *,
        target: str,
        format: str,
        options: dict[str, str],
        width_px: int,
        height_px: int,
        fps: int,
        aac_extradata: bytes,
        loop,
        on_opened: Callable[[], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        on_closed: Callable[[dict], Any] | None = None,
        repair: Callable[[str], Any] | None = None,
        name: str = "egress",
    ) -> None:
        self.target = target
        self.format = format
        self.options = options
        self.width_px, self.height_px, self.fps = width_px, height_px, fps
        self.aac_extradata = aac_extradata
        self.loop = loop
        self.on_opened, self.on_error, self.on_closed = on_opened, on_error, on_closed
        self.repair = repair
        self.queue: queue.Queue = queue.Queue(maxsize=WRITER_QUEUE_SIZE)
        self.failed = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, item: OutItem) -> None:
        if self.failed:
            return
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Flush what is queued, write the trailer and close (asynchronously; ``on_closed`` follows)."""
        while True:
            try:
                self.queue.put(None, timeout=1.0)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    return

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def _call(self, func, *args) -> None:
        if func is not None:
            try:
                self.loop.call_soon_threadsafe(func, *args)
            except RuntimeError:  # loop closed
                pass

    def _open(self, keyframe: bytes):
        container = av.open(self.target, "w", format=self.format, options=self.options)
        video = container.add_stream("h264", rate=self.fps)
        video.width, video.height = self.width_px, self.height_px
        video.pix_fmt = "yuv420p"
        video.time_base = fractions.Fraction(1, 90000)
        video.codec_context.extradata = h264_extradata(keyframe)
        audio = container.add_stream("aac", rate=AUDIO_RATE_HZ)
        audio.codec_context.layout = "mono"
        audio.time_base = fractions.Fraction(1, AUDIO_RATE_HZ)
        if self.aac_extradata:
            audio.codec_context.extradata = self.aac_extradata
        return container, video, audio

    def _run(self) -> None:
        container = video = audio = None
        stats = {"video_packets": 0, "audio_packets": 0, "duration_s": 0.0}
        last_pts: dict[str, int] = {}
        try:
            while True:
                item: OutItem | None = self.queue.get()
                if item is None:
                    break
                if container is None:
                    if item.kind != "video":
                        continue
                    container, video, audio = self._open(item.data)
                stream = video if item.kind == "video" else audio
                time_base = VIDEO_TIME_BASE if item.kind == "video" else AUDIO_TIME_BASE
                packet = av.Packet(item.data)
                pts = round(item.time_s / time_base)
                if pts <= last_pts.get(item.kind, -1):
                    continue
                last_pts[item.kind] = pts
                packet.pts = packet.dts = pts
                packet.time_base = time_base
                packet.stream = stream
                if item.kind == "video":
                    packet.is_keyframe = item.keyframe
                    packet.duration = max(1, round(1.0 / self.fps / time_base))
                    stats["video_packets"] += 1
                    stats["duration_s"] = item.time_s + 1.0 / self.fps
                else:
                    packet.duration = 1024
                    stats["audio_packets"] += 1
                container.mux(packet)
                if stats["video_packets"] + stats["audio_packets"] == 1:
                    self._call(self.on_opened)
            if container is not None:
                container.close()
                container = None
        except BaseException as exc:  # noqa: BLE001 - reported to the loop, the thread ends
            self.failed = True
            if container is not None:
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - the original error is the one to report
                    pass
                if self.repair is not None:
                    try:
                        self.repair(self.target)
                    except Exception:  # noqa: BLE001 - the write error is the one to report
                        logger.exception("repair after a write error failed target=%s", self.target)
            self._call(self.on_error, exc)
        self._call(self.on_closed, stats)
