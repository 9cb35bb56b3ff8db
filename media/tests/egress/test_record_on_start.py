"""Egress a session starts with: ``record_on_start`` and the room's standing streams begin when the media worker
takes the session (the first media member joins), through the ``media.egress`` path, with their events."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage

from media import protocol
from media.tests.egress.helpers import wait_until
from media.tests.worker.conftest import join, placed_channel
from media.tests.worker.synthetic import SyntheticMember
from rooms.models import Recording, RoomSessionEvent, Stream
from rooms.tests.factories import RoomFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


async def finished(recording_id) -> Recording | None:
    recording = await Recording.objects.aget(id=recording_id)
    return recording if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED) else None


async def test_a_record_on_start_session_records_from_the_first_media_member_and_runs_its_standing_streams(
    channel_layer, worker, make_session, make_member, rtmp_server
):
    url, received, _process = rtmp_server()
    room = await sync_to_async(RoomFactory)(record_on_start=True)
    standing = await Stream.objects.acreate(project_id=room.project_id, room=room, url=url)
    session = await make_session(room=room, record_on_start=True)
    assert not await Recording.objects.filter(room_session=session).aexists()

    member = await make_member(session, name="first")
    client = SyntheticMember((30, 30, 220), 440.0)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        recording = await wait_until(
            lambda: Recording.objects.filter(room_session=session, status="recording").afirst(), 10, "recording"
        )
        await wait_until(
            lambda: RoomSessionEvent.objects.filter(name="recording.started", recording_id=recording.id).aexists(),
            5,
            "recording.started",
        )
        copy = await wait_until(
            lambda: Stream.objects.filter(room_session=session, state="streaming").afirst(), 10, "stream copy"
        )
        assert copy.id != standing.id and copy.url == url
        await wait_until(
            lambda: RoomSessionEvent.objects.filter(name="stream.started", room_session=session).aexists(),
            5,
            "stream.started",
        )
        await wait_until(lambda: _has_bytes(Path(received)), 15, "FLV bytes at the RTMP server")
        # The standing definition itself stays a definition.
        await standing.arefresh_from_db()
        assert standing.room_session_id is None and standing.state == Stream.State.PENDING
        assert worker.egress.recorders.keys() == {str(recording.id)}
        assert await placed_channel(session) == worker.channel_name
        # Long enough for the egress keyframe interval to show in the file.
        await wait_until(lambda: _recorded_at_least(recording.id, 5.0), 15, "five seconds recorded")
        # The last member leaving ends the room's egress: the recording is finalised.
        await channel_layer.send(
            worker.channel_name,
            {"type": protocol.LEAVE, "room_session_id": str(session.id), "member_id": str(member.id)},
        )
    finally:
        await client.close()
    done = await wait_until(lambda: finished(recording.id), 30, "finalisation")
    assert done.status == Recording.Status.COMPLETED, done.failure_reason
    await wait_until(lambda: Stream.objects.filter(id=copy.id, state="completed").aexists(), 10, "stream ended")
    # Recordings and RTMP outputs get a keyframe at least every 2 s (the shared encoder's egress interval): the
    # first canvas frame rendered 2 s after the last keyframe is one, so on a loaded machine a late render can
    # stretch a gap by a few frame intervals, while without the interval the encoder's GOP would be far longer.
    keyframes_s = _keyframe_times_s(default_storage.path(done.storage_name))
    assert len(keyframes_s) >= 3, keyframes_s
    assert max(b - a for a, b in itertools.pairwise(keyframes_s)) <= 2.0 + 0.6, keyframes_s


async def test_a_session_without_record_on_start_or_standing_streams_starts_no_egress(
    channel_layer, worker, make_session, make_member
):
    session = await make_session(record_on_start=False)
    member = await make_member(session)
    client = SyntheticMember((30, 220, 30), None)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        # A command queued after the join runs after the placement's egress step: then nothing has started.
        stats = await _round_trip(channel_layer, session)
        assert stats["type"] == protocol.ERROR
    finally:
        await client.close()
    assert not await Recording.objects.filter(room_session=session).aexists()
    assert not await Stream.objects.filter(room_session=session).aexists()
    assert not worker.egress.recorders


async def _recorded_at_least(recording_id, seconds: float) -> bool:
    recording = await Recording.objects.aget(id=recording_id)
    return (recording.duration or 0) >= seconds or recording.status != Recording.Status.RECORDING


def _keyframe_times_s(path: str) -> list[float]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        return [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None and p.is_keyframe]


async def _has_bytes(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def _round_trip(channel_layer, session) -> dict:
    """A refused egress command on the session's worker channel: answered once the session's queue is drained."""
    from media.tests.egress.helpers import egress

    channel = await placed_channel(session)
    return await egress(channel_layer, channel, session, "recording.pause", "00000000-0000-0000-0000-000000000000")
