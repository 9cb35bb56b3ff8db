"""Streams a worker left behind: the sweep ends them with a reason and ``stream.ended``, and leaves alone the
streams of a session whose worker still heartbeats it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from media.egress.services import streams_recover_orphans
from media.tests.egress.helpers import age, ended_events
from media.worker.db import _session_egress_autostart
from rooms.models import RoomSession, Stream
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db]

URL = "rtmp://127.0.0.1:1935/live/secret-key"


def live_stream(session: RoomSession, state: str = Stream.State.STREAMING, url: str = URL) -> Stream:
    return Stream.objects.create(
        project_id=session.project_id, room_id=session.room_id, room_session=session, url=url, state=state
    )


def test_a_stream_of_a_session_whose_worker_stopped_heartbeating_fails_with_worker_lost():
    session = RoomSessionFactory(media_worker="specific.gone!worker")
    streaming = live_stream(session)
    retrying = live_stream(session, Stream.State.RETRYING, url=URL + "-2")
    for stream in (streaming, retrying):
        age(Stream, stream.id, 120)
    age(RoomSession, session.id, 120)

    assert sorted(streams_recover_orphans(stale_after_seconds=45)) == sorted([str(streaming.id), str(retrying.id)])

    for stream in (streaming, retrying):
        stream.refresh_from_db()
        assert stream.state == Stream.State.FAILED
        assert stream.failure_reason == "worker_lost"
        assert stream.ended_at is not None
        (payload,) = ended_events(stream, "stream.ended")
        assert "'failed'" in str(payload) and "worker_lost" in str(payload)
        assert "secret-key" not in str(payload)  # the stream key is masked
    # Ended rows are not swept again.
    assert streams_recover_orphans(stale_after_seconds=45) == []


def test_a_stream_of_a_heartbeating_session_is_left_alone():
    session = RoomSessionFactory(media_worker="specific.alive!worker")
    stream = live_stream(session)
    age(Stream, stream.id, 600)  # a steady stream is not touched, but its session is

    assert streams_recover_orphans(stale_after_seconds=45) == []
    stream.refresh_from_db()
    assert stream.state == Stream.State.STREAMING


def test_a_stream_of_an_ended_session_completes_with_room_ended():
    session = RoomSessionFactory(status=RoomSession.Status.COMPLETED, end_time=timezone.now())
    stream = live_stream(session, Stream.State.PENDING)

    assert streams_recover_orphans(stale_after_seconds=45) == [str(stream.id)]
    stream.refresh_from_db()
    assert stream.state == Stream.State.COMPLETED
    assert stream.failure_reason == ""


def test_a_re_placed_session_starts_one_copy_of_a_standing_stream_only_once_the_old_copy_ended():
    session = RoomSessionFactory(media_worker="specific.new!worker")
    Stream.objects.create(project_id=session.project_id, room_id=session.room_id, url=URL)  # standing
    old_copy = live_stream(session, Stream.State.RETRYING)

    # The copy the dead worker left `retrying` still counts as live: no duplicate.
    assert [kind for kind, _ in _session_egress_autostart(str(session.id), "specific.new!worker")] == []

    age(Stream, old_copy.id, 120)
    RoomSession.objects.filter(id=session.id).update(media_worker="")
    assert streams_recover_orphans(stale_after_seconds=45) == [str(old_copy.id)]
    RoomSession.objects.filter(id=session.id).update(media_worker="specific.new!worker")
    assert [kind for kind, _ in _session_egress_autostart(str(session.id), "specific.new!worker")] == ["stream"]
    assert Stream.objects.filter(room_session=session, state=Stream.State.PENDING).count() == 1
