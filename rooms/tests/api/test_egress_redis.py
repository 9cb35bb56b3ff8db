"""Recording control over REST through the real Redis channel layer on PostgreSQL.

Two placements of the media worker: a ``manage.py mediaworker`` process, and a worker in this process on the
same layer instance as the view (the embedded default under Daphne, where the REST view, the signalling consumers
and the worker all receive on one channels-redis layer). A synthetic member joins through Redis so the session
is placed; ``POST room_sessions/{id}/recordings``, ``pause``, ``resume`` and ``stop`` run the test client's sync
view on a thread of its own (as Daphne does) and wait for the worker's acknowledgement on a reply channel of the
Redis layer. The recording is finalised and decoded.

Skipped, with the reason printed, unless ``DATABASE_URL`` is PostgreSQL and ``REDIS_URL`` is set (CI runs the
suite once with both).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import av
import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.core.files.storage import default_storage
from django.db import connection

from media import protocol
from media.tests.egress.helpers import wait_until
from media.tests.worker.conftest import join
from media.tests.worker.synthetic import SyntheticMember
from media.worker.ice import restrict_host_addresses
from media.worker.worker import MediaWorker
from rooms.models import Recording, RoomSession, RoomSessionEvent
from rooms.tests.factories import MemberFactory, RoomFactory, RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]


def _postgres_url() -> str:
    """The test database as a URL another process can open; skip (with the reason) unless it is PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL shared with a media worker: set DATABASE_URL (CI runs with PostgreSQL + Redis)")
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host, port = s.get("HOST") or "127.0.0.1", s.get("PORT") or 5432
    return f"postgres://{s.get('USER') or 'postgres'}{password}@{host}:{port}/{s['NAME']}"


@pytest.fixture
def redis_layer(redis_url, settings):
    """The configured Redis channel layer (``parley.settings`` built from ``REDIS_URL``) under a prefix of this
    test's own. Returns the prefix."""
    _postgres_url()
    configured = settings.CHANNEL_LAYERS["default"]
    assert configured["BACKEND"] == "channels_redis.core.RedisChannelLayer", configured
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}"
    layer_config = copy.deepcopy(configured)
    layer_config["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = {"default": layer_config}
    channel_layers.backends.clear()
    restrict_host_addresses()
    yield prefix
    channel_layers.backends.clear()


@pytest.fixture
def media_worker_process(redis_url, redis_layer, settings, tmp_path):
    """``python manage.py mediaworker`` on the test database and this test's Redis prefix, writing under this
    test's data directory. Yields ``(process, log_path)``; SIGTERM at teardown (it releases its sessions)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "parley.settings",
        "DATABASE_URL": _postgres_url(),
        "REDIS_URL": redis_url,
        "PARLEY_CHANNEL_PREFIX": redis_layer,
        "PARLEY_MEDIA_WORKER": "external",
        "PARLEY_DATA_DIR": str(settings.PARLEY_DATA_DIR),
        # No Celery worker runs here: the worker process runs the finalisation task itself.
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    log_path = tmp_path / "mediaworker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "mediaworker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while b"media worker listening" not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"mediaworker did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    yield process, log_path
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
async def media_worker_in_process(redis_layer):
    worker = MediaWorker()
    await worker.start()
    yield worker
    await worker.stop()  # bounded by the worker itself (stop_bound_s); what it abandons is logged


def post(client, path: str):
    """The REST call on a thread of its own, as Daphne runs a sync view (the view blocks on the worker)."""
    return sync_to_async(client.post, thread_sensitive=False)(path, None, format="json")


async def record_over_rest(owner, diagnostics) -> Recording:
    """Join a member, then start, pause, resume and stop a recording over REST; return the finished row."""
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    room = await sync_to_async(RoomFactory)(project=owner.project)
    session = await sync_to_async(RoomSessionFactory)(room=room, quality="360p", fps=15)
    member = await sync_to_async(MemberFactory)(room_session=session, name="presenter")
    client = SyntheticMember((200, 40, 40), 700.0)
    try:
        reply, _ = await join(layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, (reply, diagnostics())
        await client.wait_connected()
        assert (await RoomSession.objects.aget(id=session.id)).media_worker

        base = f"/api/video/room_sessions/{session.id}"
        started = await post(owner.client, f"{base}/recordings")
        assert started.status_code == 201, (started.json(), diagnostics())
        recording_id = started.json()["id"]
        assert started.json()["status"] == "recording"
        assert await RoomSessionEvent.objects.filter(name="recording.started", room_session_id=session.id).aexists()

        working = Path(await wait_until(lambda: _working_path(recording_id), 30, "the worker's working file"))
        await wait_until(lambda: _size_at_least(working, 20_000), 60, "recorded bytes")
        # Progress reaches the row (duration ≥ 6 s): the idle receives meanwhile outlast channels-redis' 5 s
        # blocking pop, which used to end them with redis' own 5 s socket timeout.
        await wait_until(lambda: _duration_at_least(recording_id, 6.0), 60, "6 s of recorded progress")
        paused = await post(owner.client, f"/api/video/room_recordings/{recording_id}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused", (paused.json(), diagnostics())
        resumed = await post(owner.client, f"/api/video/room_recordings/{recording_id}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "recording", resumed.json()
        stopped = await post(owner.client, f"/api/video/room_recordings/{recording_id}/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] in ("processing", "completed"), stopped.json()
        return await wait_until(lambda: _finished(recording_id), 90, "finalisation")
    finally:
        await client.close()


def assert_decodes(recording: Recording) -> None:
    assert recording.status == Recording.Status.COMPLETED, recording.failure_reason
    stored = default_storage.path(recording.storage_name)
    assert Path(stored).stat().st_size == recording.size_in_bytes > 0
    with av.open(stored) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.width, video.height) == (640, 360)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert frames, "no decodable video"
    # The member's red tile is on the canvas of the last frame.
    last = frames[-1]
    red = (last[..., 0] > 150) & (last[..., 1] < 90) & (last[..., 2] < 90)
    assert red.mean() > 0.05, f"red covers {red.mean():.3f} of the canvas"


async def test_a_rest_recording_goes_through_redis_to_a_media_worker_process(owner, media_worker_process):
    process, log_path = media_worker_process
    done = await record_over_rest(owner, lambda: log_path.read_text()[-3000:])
    assert_decodes(done)
    assert process.poll() is None, "the media worker process died"
    assert "channel receive failed" not in log_path.read_text()


async def test_a_rest_recording_reaches_a_worker_on_the_same_redis_layer_instance(
    owner, media_worker_in_process, caplog
):
    done = await record_over_rest(owner, lambda: "")
    assert_decodes(done)
    assert "channel receive failed" not in caplog.text


async def _working_path(recording_id) -> str:
    return (await Recording.objects.aget(id=recording_id)).working_path


async def _duration_at_least(recording_id, duration_s: float) -> bool:
    return ((await Recording.objects.aget(id=recording_id)).duration or 0) >= duration_s


async def _size_at_least(path: Path, size: int) -> bool:
    return path.exists() and path.stat().st_size >= size


async def _finished(recording_id) -> Recording | None:
    recording = await Recording.objects.aget(id=recording_id)
    return recording if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED) else None
