"""Fixtures for the egress tests: the media worker fixtures (fresh channel layer, a running worker, sessions and
members), a free loopback port and an ``ffmpeg -listen`` RTMP server."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from media.tests.worker.conftest import channel_layer, make_member, make_session, worker  # noqa: F401


@pytest.fixture
def ffmpeg():
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("needs ffmpeg and ffprobe (scripts/system-deps.sh installs them)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rtmp_server(ffmpeg, tmp_path):
    """``start(port=None)`` → ``(url, output_path, process)``: ffmpeg listening on a loopback RTMP port (a free one,
    or ``port`` again to bring a server back), copying what it receives into a new FLV file. Killed at teardown."""
    processes: list[subprocess.Popen] = []

    def start(port: int | None = None) -> tuple[str, str, subprocess.Popen]:
        port = port or free_port()
        url = f"rtmp://127.0.0.1:{port}/live/secret-key-123"
        output = str(tmp_path / f"received-{port}-{len(processes)}.flv")
        process = subprocess.Popen(
            [
                ffmpeg,
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-listen",
                "1",
                "-i",
                url,
                "-c",
                "copy",
                "-flush_packets",
                "1",
                output,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return url, output, process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(5)
