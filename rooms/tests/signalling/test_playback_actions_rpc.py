"""Playback actions are acknowledged by the media worker (``rooms.services.playbacks``): over the signalling socket a
seek of a live stream (an MPEG-TS served over HTTP on 127.0.0.1 without a length: no duration) is refused with
-32009 ``not_seekable`` and nothing is written; an action on a playback the worker does not hold is -32004, its
``stop`` still records the end. Real worker in this process, real aiortc member on 127.0.0.1."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import fractions
import http.server
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from media.tests.worker.playback_media import private_playback_urls  # noqa: F401
from rooms.models import Playback, RoomSession
from rooms.tests.signalling.conftest import joined
from rooms.tests.signalling.test_playback_rpc import _media_joined, worker  # noqa: F401

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


def make_ts(path: Path, seconds: int = 20, fps: int = 15) -> bytes:
    """A 320×180 H.264 MPEG-TS of ``seconds``; returns its bytes."""
    with av.open(str(path), mode="w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        image = np.full((180, 320, 3), 90, np.uint8)
        for n in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = n
            frame.time_base = fractions.Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path.read_bytes()


@pytest.fixture
def live_stream_url(tmp_path):
    """An ``http://`` URL of an MPEG-TS sent without ``Content-Length`` and held open: FFmpeg sees a live stream
    (no duration, not seekable)."""
    data = make_ts(tmp_path / "live.ts")
    closing = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:  # noqa: N802 (the base class's name)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            try:
                self.wfile.write(data)
                self.wfile.flush()
                closing.wait(120)
            except OSError:
                pass

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-live-stream", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_seek_of_a_live_stream_is_refused_with_not_seekable_and_nothing_is_written(
    project, room, worker, live_stream_url
):
    host = await joined(project, "standup")
    media = await _media_joined(host)
    try:
        started = await host.call("room.playback.start", {"url": live_stream_url}, timeout=20)
        playback = started["result"]["playback"]
        assert playback["state"] == "playing"

        refused = await host.call("playback.seek", {"playback_id": playback["id"], "position_ms": 4000}, timeout=20)
        assert refused["error"]["code"] == -32009 and refused["error"]["data"]["reason"] == "not_seekable", refused
        row = await Playback.objects.aget(id=playback["id"])
        assert (row.state, row.position_ms) == (Playback.State.PLAYING, 0)

        paused = await host.call("playback.pause", {"playback_id": playback["id"]}, timeout=20)
        assert paused["result"]["playback"]["state"] == "paused"
        assert worker.playbacks[host.room_session_id][playback["id"]].state == "paused"
    finally:
        await media.close()
        await host.close()


async def test_an_action_on_a_playback_the_worker_does_not_hold_is_not_found_and_ends_it_and_stop_records_the_end(
    project, room, worker
):
    host = await joined(project, "standup")
    media = await _media_joined(host)
    try:
        session = await RoomSession.objects.aget(id=host.room_session_id)
        assert session.media_worker == worker.channel_name
        lost, also_lost = [
            await Playback.objects.acreate(
                project_id=session.project_id,
                room_session=session,
                url="https://media.example.com/a.mp4",
                state="playing",
            )
            for _ in range(2)
        ]
        # The worker that holds the session does not play it: the caller gets -32004 and the row ends, with
        # playback.ended, instead of showing as playing until the session ends.
        paused = await host.call("playback.pause", {"playback_id": str(lost.id)}, timeout=20)
        assert paused["error"]["code"] == -32004, paused
        row = await Playback.objects.aget(id=lost.id)
        assert (row.state, row.failure_reason) == (Playback.State.FAILED, "worker_lost")
        ended = await host.event("playback.ended", where=lambda p: p["playback"]["id"] == str(lost.id))
        assert (ended["playback"]["state"], ended["playback"]["failure_reason"]) == ("failed", "worker_lost")
        again = await host.call("playback.resume", {"playback_id": str(lost.id)}, timeout=20)
        assert again["error"]["code"] == -32009, again  # it has ended

        stopped = await host.call("playback.stop", {"playback_id": str(also_lost.id)}, timeout=20)
        assert stopped["result"]["playback"]["state"] == "completed", stopped
        assert (await Playback.objects.aget(id=also_lost.id)).state == Playback.State.COMPLETED
    finally:
        await media.close()
        await host.close()
