"""Playback start behind a URL that never answers: how long a room's next command waits.

    .venv/bin/python bench/playback.py [--rounds 5]

Per round, in a fresh room session on an in-process media worker (in-memory channel layer, SQLite): a
``playback.start`` of an ``http://`` URL whose TCP server accepts and never answers, then at once a
``playback.start`` of a 10 s MP4 (made with the ffmpeg CLI) served over HTTP on 127.0.0.1. Printed: the time
until the second start is answered, against the same start alone, and the time until the dead URL is refused.
Everything stays on 127.0.0.1; only the worker's answers are timed (no media is decoded by the bench).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import harness  # bench/harness.py (its directory is on sys.path when run as a script)


def _clip(directory: Path) -> Path:
    path = directory / "clip.mp4"
    subprocess.run(
        [
            shutil.which("ffmpeg"),
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=320x180:r=15",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000",
            "-t",
            "10",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
    )
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


def _serve(directory: Path) -> str:
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def _silent_server() -> str:
    """An ``http://`` URL of a TCP server that accepts every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []

    def accept_forever() -> None:
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept_forever, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/never.mp4"


async def _round(layer, clip_url: str, dead_url: str | None) -> dict:
    """One room: optionally the dead URL first, then the clip. Seconds until each start is answered."""
    from asgiref.sync import sync_to_async

    from media import protocol
    from rooms.models import Playback
    from rooms.tests.factories import RoomSessionFactory

    session = await sync_to_async(RoomSessionFactory)(quality="360p", fps=15)
    reply_channel = await layer.new_channel("bench.reply.")
    sent: dict[str, tuple[str, float]] = {}

    async def start(url: str, what: str) -> None:
        playback = await sync_to_async(Playback.objects.create)(
            project_id=session.project_id, room_session=session, url=url
        )
        request_id = uuid.uuid4().hex
        sent[request_id] = (what, time.perf_counter())
        await layer.send(
            protocol.CONTROL_CHANNEL,
            {
                "type": protocol.EGRESS,
                "room_session_id": str(session.id),
                "action": "playback.start",
                "object_id": str(playback.id),
                "url": url,
                "reply_channel": reply_channel,
                "request_id": request_id,
            },
        )

    if dead_url:
        await start(dead_url, "dead")
    await start(clip_url, "clip")
    answered: dict = {}
    for _ in sent:
        reply = await asyncio.wait_for(layer.receive(reply_channel), 60)
        what, at = sent[reply["request_id"]]
        answered[what] = time.perf_counter() - at
        answered[f"{what}_reply"] = reply["type"]
    return answered


async def main(rounds: int, work_dir: Path) -> dict:
    from channels.layers import get_channel_layer

    from media.worker.worker import MediaWorker

    clip_url = _serve(_clip(work_dir).parent) + "clip.mp4"
    dead_url = _silent_server()
    layer = get_channel_layer()
    worker = MediaWorker(layer=layer)
    await worker.start()
    try:
        alone = [(await _round(layer, clip_url, None))["clip"] for _ in range(rounds)]
        behind, dead = [], []
        for _ in range(rounds):
            result = await _round(layer, clip_url, dead_url)
            assert result["clip_reply"] == "media.answer" and result["dead_reply"] == "media.error", result
            behind.append(result["clip"])
            dead.append(result["dead"])
    finally:
        await worker.stop()
    return {
        "rounds": rounds,
        "clip_start_alone_ms_median": round(statistics.median(alone) * 1000, 1),
        "clip_start_behind_dead_url_ms_median": round(statistics.median(behind) * 1000, 1),
        "clip_start_behind_dead_url_ms_max": round(max(behind) * 1000, 1),
        "dead_url_refused_after_s_median": round(statistics.median(dead), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-bench-playback-") as data_dir:
        os.environ["PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS"] = "1"  # the media is served on 127.0.0.1
        harness.django_setup(data_dir)
        print(json.dumps(asyncio.run(main(args.rounds, Path(data_dir)))), flush=True)
