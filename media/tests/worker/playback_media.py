"""Media for playback tests: a generated MP4 (one colour, one sine tone), an HTTP server on 127.0.0.1 that serves a
directory (and answers 404 for anything else), and a TCP server that accepts connections and never says a word."""

from __future__ import annotations

import contextlib
import fractions
import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

PLAYBACK_RGB = (230, 40, 40)
PLAYBACK_TONE_HZ = 1000.0


def make_mp4(path: Path, seconds: float, rgb=PLAYBACK_RGB, tone_hz: float = PLAYBACK_TONE_HZ) -> Path:
    """A 320×180, 15 fps H.264 video of one colour with a 48 kHz AAC sine, ``seconds`` long (``moov`` first, so
    it plays over HTTP without range requests)."""
    fps = 15
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "zerolatency"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        image = np.empty((180, 320, 3), np.uint8)
        image[:] = rgb
        for n in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = n
            frame.time_base = fractions.Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = 1024
        for n in range(int(seconds * 48000 / samples)):
            t = (np.arange(samples) + n * samples) / 48000
            pcm = (0.4 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            frame.sample_rate = 48000
            frame.pts = n * samples
            frame.time_base = fractions.Fraction(1, 48000)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def http_media(tmp_path) -> Iterator[tuple[Path, str]]:
    """``(directory, base_url)``: files written to ``directory`` are served at ``base_url + name``."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="test-http-media", daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """``(url, accepted)``: an ``http://`` URL of a TCP server that accepts every connection and never answers,
    and an event set once it accepted one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop, accepted = threading.Event(), threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])
                accepted.set()

    thread = threading.Thread(target=accept, name="test-silent-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/never.mp4", accepted
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """An ``http://`` URL of a TCP server that accepts every connection and never answers."""
    with silent_server() as (url, _):
        yield url


@pytest.fixture(autouse=True)
def private_playback_urls(settings) -> None:
    """Autouse where imported: the media of these tests is served on 127.0.0.1 or read from local files, so the
    SSRF guard's ``PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS`` (off by default) is on; a test of the guard turns it off."""
    settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = True
