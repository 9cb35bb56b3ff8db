"""Playbacks a worker left behind: the sweep ends them with ``playback.ended`` (``completed`` when the session
ended, ``failed``/``worker_lost`` when its worker stopped heartbeating it) and leaves alone the playbacks of a session
whose worker still heartbeats it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from media.egress.services import playbacks_recover_orphans
from media.tests.egress.helpers import age, ended_events
from rooms.models import Playback, RoomSession
from rooms.tests.factories import RoomSessionFactory

pytestmark = [pytest.mark.media, pytest.mark.django_db]

URL = "https://media.example.com/clip.mp4"


def live_playback(session: RoomSession, state: str = Playback.State.PLAYING) -> Playback:
    return Playback.objects.create(project_id=session.project_id, room_session=session, url=URL, state=state)


def test_the_playbacks_of_a_session_whose_worker_stopped_heartbeating_fail_with_worker_lost():
    session = RoomSessionFactory(media_worker="specific.gone!worker")
    playbacks = [live_playback(session, state) for state in Playback.State.values[:3]]
    assert [p.state for p in playbacks] == ["opening", "playing", "paused"]
    for playback in playbacks:
        age(Playback, playback.id, 120)
    age(RoomSession, session.id, 120)

    assert sorted(playbacks_recover_orphans(stale_after_seconds=45)) == sorted(str(p.id) for p in playbacks)

    for playback in playbacks:
        playback.refresh_from_db()
        assert (playback.state, playback.failure_reason) == ("failed", "worker_lost")
        assert playback.ended_at is not None
        (payload,) = ended_events(playback, "playback.ended")
        assert "'failed'" in str(payload) and "worker_lost" in str(payload)
    # Ended rows are not swept again.
    assert playbacks_recover_orphans(stale_after_seconds=45) == []


def test_a_playback_of_a_heartbeating_session_is_left_alone():
    session = RoomSessionFactory(media_worker="specific.alive!worker")
    playback = live_playback(session)
    age(Playback, playback.id, 600)  # a long clip keeps its row untouched; its session is heartbeated

    assert playbacks_recover_orphans(stale_after_seconds=45) == []
    playback.refresh_from_db()
    assert playback.state == Playback.State.PLAYING and ended_events(playback, "playback.ended") == []


def test_a_playback_of_an_ended_session_completes():
    session = RoomSessionFactory(status=RoomSession.Status.COMPLETED, end_time=timezone.now())
    playback = live_playback(session, Playback.State.PAUSED)

    assert playbacks_recover_orphans(stale_after_seconds=45) == [str(playback.id)]
    playback.refresh_from_db()
    assert playback.state == Playback.State.COMPLETED and playback.failure_reason == ""
    assert len(ended_events(playback, "playback.ended")) == 1


def test_a_worker_taking_a_session_over_fails_the_playbacks_the_lost_worker_left():
    from media.worker.db import _session_take

    session = RoomSessionFactory(media_worker="specific.gone!worker")
    playbacks = [live_playback(session, state) for state in Playback.State.values[:3]]
    age(RoomSession, session.id, 120)  # the old worker stopped heartbeating it

    config = _session_take(str(session.id), "specific.new!worker")
    assert config["media_worker"] == "specific.new!worker"
    for playback in playbacks:
        playback.refresh_from_db()
        assert (playback.state, playback.failure_reason) == ("failed", "worker_lost")
        (payload,) = ended_events(playback, "playback.ended")
        assert "worker_lost" in str(payload)


def test_a_worker_taking_its_own_session_again_or_failing_to_take_one_leaves_the_playbacks_alone():
    from media.worker.db import _session_take

    mine = RoomSessionFactory(media_worker="specific.this!worker")
    theirs = RoomSessionFactory(media_worker="specific.alive!worker")  # heartbeated: not taken
    playbacks = [live_playback(mine), live_playback(theirs)]

    assert _session_take(str(mine.id), "specific.this!worker")["media_worker"] == "specific.this!worker"
    assert _session_take(str(theirs.id), "specific.this!worker")["media_worker"] == "specific.alive!worker"
    for playback in playbacks:
        playback.refresh_from_db()
        assert playback.state == Playback.State.PLAYING and ended_events(playback, "playback.ended") == []
