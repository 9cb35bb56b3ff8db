"""Decoding helpers for recorded and streamed files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
from django.conf import settings

from media import protocol
from media.tests.worker.conftest import request

ROOT = Path(__file__).resolve().parents[3]


def ffprobe(path: str) -> dict:
    """``ffprobe -show_streams -show_format`` as a dict."""
    binary = shutil.which("ffprobe")
    assert binary, "ffprobe missing"
    out = subprocess.run(
        [binary, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return json.loads(out.stdout)


def decode(path: str) -> tuple[list[av.VideoFrame], np.ndarray]:
    """Every video frame (rgb24 ndarrays are taken later) and the audio as mono float64 at 48 kHz."""
    frames: list[av.VideoFrame] = []
    audio: list[np.ndarray] = []
    with av.open(path) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame)
            else:
                audio.append(frame.to_ndarray()[0].astype(np.float64))
    return frames, (np.concatenate(audio) if audio else np.zeros(0))


def video_packets(path: str) -> list[tuple[float, bool]]:
    """``(time_s, keyframe)`` of every complete video packet of a file, also one still being written."""
    packets: list[tuple[float, bool]] = []
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    packets.append((float(packet.pts * stream.time_base), packet.is_keyframe))
    except (av.error.FFmpegError, IndexError):
        pass  # not enough written yet, or a tail cut short: what was read counts
    return packets


async def media_seconds_at_least(path: str, seconds: float) -> bool:
    """True once the file holds ``seconds`` of video (first to last packet), read in a thread."""
    packets = await asyncio.to_thread(video_packets, path) if os.path.exists(path) else []
    return bool(packets) and packets[-1][0] - packets[0][0] >= seconds


async def egress(layer, channel: str, session, action: str, object_id, **extra) -> dict:
    return await request(
        layer,
        {
            "type": protocol.EGRESS,
            "room_session_id": str(session.id),
            "action": action,
            "object_id": str(object_id),
            **extra,
        },
        channel=channel,
    )


async def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Await an async ``predicate`` until it returns a truthy value; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval_s)


def decoded_video_frames(path: Path) -> int:
    """Video frames decodable from the fragment-complete part of ``path`` (a file that may still be written)."""
    frames = 0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(video=0):
                try:
                    frames += len(packet.decode())
                except av.error.InvalidDataError:
                    continue  # a damaged packet (the one a crash or a full disk cut): players skip it too
    except (av.error.InvalidDataError, av.error.EOFError, OSError):
        pass  # the demuxer stops at the cut
    return frames


def record_then_kill(path: Path, min_frames: int, deadline_s: float = 60.0) -> float:
    """Run ``record_child`` until ``path`` holds at least ``min_frames`` decodable video frames, then SIGKILL it;
    returns the wall seconds from launch to kill (an upper bound on the recorded duration).

    The kill follows what is on disk, not a fixed sleep, so a loaded machine that starts the child slowly still
    records enough; ``deadline_s`` bounds the wait (AssertionError past it)."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "media.tests.egress.record_child", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PARLEY_DATA_DIR": str(settings.PARLEY_DATA_DIR)},
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == b"recording", line
        while decoded_video_frames(path) < min_frames:
            assert time.monotonic() - started < deadline_s, "the child recorded too little before the deadline"
            assert child.poll() is None, "the recording child exited by itself"
            time.sleep(0.25)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        return time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()


def age(model, pk, seconds: float) -> None:
    """Set the row's ``updated_at`` ``seconds`` in the past (as a worker that stopped touching it would leave it)."""
    from datetime import timedelta

    from django.utils import timezone

    model.objects.filter(pk=pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def ended_events(row, event_name: str) -> list:
    """The payloads of the ``event_name`` events recorded in ``row``'s room session that name ``row``."""
    from rooms.models import RoomSessionEvent

    return [
        payload
        for payload in RoomSessionEvent.objects.filter(room_session_id=row.room_session_id, name=event_name).values_list(
            "payload", flat=True
        )
        if str(row.id) in str(payload)
    ]
