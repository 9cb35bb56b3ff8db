"""A recording whose disk fills up: written to a 1 MiB tmpfs, it ends ``failed`` with ``disk_full`` (in the row
and in ``recording.ended``), the part written stays (trimmed to its last complete fragment) and decodes, and the
room and its other recording run on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from media import protocol
from media.egress.mux import complete_fragments_size
from media.tests.egress.helpers import decoded_video_frames, egress, wait_until
from media.tests.worker.conftest import join, listen_room_events, placed_channel, receive
from media.tests.worker.synthetic import SyntheticMember
from rooms.models import Recording

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

# Several 1 s fragments (≈ 0.2 MB each at the room's bitrate) fit before the disk is full, also when a loaded
# machine makes the first second heavier (keyframes asked for by a joining member's PLIs).
TINY_DISK_BYTES = 1024 * 1024
TINY_DISK = f"{TINY_DISK_BYTES // 1024}k"


@pytest.fixture
def tiny_disk(tmp_path):
    """A ``TINY_DISK`` tmpfs mounted for this test (needs root: skipped, with the reason, where mount is refused)."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY_DISK}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs to mount a tmpfs (root): mount said {mounted.stderr.strip() or mounted.returncode}")
    yield mount_point
    unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True, text=True)
    if unmounted.returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def recording_row(recording_id) -> Recording:
    return await Recording.objects.aget(id=recording_id)


async def test_a_full_disk_fails_the_recording_keeps_its_part_and_the_room_runs_on(
    channel_layer, worker, make_session, make_member, tiny_disk, settings
):
    session = await make_session()
    member = await make_member(session, name="m0")
    client = SyntheticMember((30, 160, 220), 500.0)
    events = await listen_room_events(channel_layer, session)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        channel = await placed_channel(session)

        full = await Recording.objects.acreate(project_id=session.project_id, room_session=session)
        other = await Recording.objects.acreate(project_id=session.project_id, room_session=session)
        # The recorder writes PARLEY_DATA_DIR/recordings/<id>.mp4: for ``full`` that name leads to the tiny disk.
        recordings_dir = Path(settings.PARLEY_DATA_DIR) / "recordings"
        recordings_dir.mkdir(parents=True, exist_ok=True)
        on_tiny_disk = tiny_disk / f"{full.id}.mp4"
        (recordings_dir / f"{full.id}.mp4").symlink_to(on_tiny_disk)

        for recording in (full, other):
            reply = await egress(channel_layer, channel, session, "recording.start", recording.id)
            assert reply["type"] == protocol.ANSWER, reply

        ended = None
        while ended is None:
            body = (await receive(channel_layer, events, 90))["event"]
            if body["event_type"] == "recording.ended" and body["params"]["recording"]["id"] == str(full.id):
                ended = body["params"]["recording"]
        assert ended["state"] == "failed" and ended["failure_reason"] == "disk_full", ended
        assert ended.get("uri") is None
        row = await recording_row(full.id)
        assert row.status == Recording.Status.FAILED and row.failure_reason == "disk_full"
        assert row.finished_at is not None

        # The part written stays on the full disk, trimmed to its last complete fragment, and decodes.
        written = on_tiny_disk.stat().st_size
        assert TINY_DISK_BYTES // 2 < written <= TINY_DISK_BYTES
        assert complete_fragments_size(on_tiny_disk) == written
        assert row.working_path.endswith(f"{full.id}.mp4") and Path(row.working_path).exists()
        frames = decoded_video_frames(on_tiny_disk)
        assert frames >= 15, f"{frames} video frames decoded from the {written} bytes written: {_probe(on_tiny_disk)}"

        # The room and the other recording run on.
        assert str(full.id) not in worker.egress.recorders and str(other.id) in worker.egress.recorders
        assert str(session.id) in worker.rooms
        frames_then = client.frames
        other_path = Path((await recording_row(other.id)).working_path)
        other_size_then = other_path.stat().st_size
        await client.wait_for(lambda: client.frames > frames_then + 15, 30, "canvas frames after the failure")
        await wait_until(lambda: _grown(other_path, other_size_then + 20_000), 60, "the other recording growing")
        assert (await recording_row(other.id)).status == Recording.Status.RECORDING

        reply = await egress(channel_layer, channel, session, "recording.stop", other.id)
        assert reply["type"] == protocol.ANSWER, reply
        done = await wait_until(lambda: _finished(other.id), 60, "the other recording's finalisation")
    finally:
        await client.close()
    assert done.status == Recording.Status.COMPLETED, done.failure_reason
    assert done.duration > 3.0
    # Nothing finalised (or deleted) the failed recording's part.
    assert on_tiny_disk.stat().st_size == written
    assert (await recording_row(full.id)).status == Recording.Status.FAILED


async def _grown(path: Path, size: int) -> bool:
    return path.stat().st_size > size


async def _finished(recording_id) -> Recording | None:
    recording = await recording_row(recording_id)
    return recording if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED) else None


def _probe(path: Path) -> str:
    """What ffprobe reads of ``path`` (streams, packets counted, errors), for a failure message."""
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_packets,nb_read_frames,extradata_size",
            "-of",
            "compact",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (probe.stdout + probe.stderr)[-2000:]
