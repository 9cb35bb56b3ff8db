"""Row locks of control actions against concurrent writers on PostgreSQL: joins, leaves, moderation, playback and
recording starts lock their rows in ``NO KEY UPDATE`` mode (a playback start its room session's row alone), so
the event inserts of other members and of the media worker (whose foreign-key checks take ``FOR KEY SHARE`` on
the project and session rows when they commit) neither wait for them nor deadlock with them.

Skipped, with the reason printed, unless ``DATABASE_URL`` is PostgreSQL (SQLite locks the whole database).
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import OperationalError, connection, transaction

from media.tests.worker.playback_media import private_playback_urls  # noqa: F401
from rooms.actors import Actor
from rooms.models import Playback, RoomSessionEvent
from rooms.services.egress import recording_check_none_live
from rooms.services.members import member_resolve
from rooms.services.playbacks import in_session, playback_start_prepare
from rooms.services.sessions import member_leave
from rooms.tests.factories import MemberFactory, RoomSessionFactory

pytestmark = pytest.mark.django_db(transaction=True)

LOCK_TIMEOUT = "3s"


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs row locks between concurrent connections (SQLite locks the whole database for each write): "
            "set DATABASE_URL to PostgreSQL"
        )


class OpenInsert:
    """Another connection inserts an event row of ``session`` and keeps its transaction open until released."""

    def __init__(self, session) -> None:
        self.session = session
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Django's foreign keys are deferred: their checks (and locks) come at commit. Run them now, so
                    # the locks a committing insert takes are held while the test runs.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                RoomSessionEvent.objects.create(
                    project_id=self.session.project_id, room_session=self.session, name="member.talking"
                )
                self.inserted.set()
                self.release.wait(30)
        except BaseException as error:  # reported by the test
            self.errors.append(error)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.inserted.wait(10), self.errors
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)
        assert not self.errors, self.errors


@contextlib.contextmanager
def lock_timeout(what: str):
    """Fail the test if a statement of this connection waits more than ``LOCK_TIMEOUT`` for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        yield
    except OperationalError as error:
        pytest.fail(f"{what} waited for a concurrent insert: {error}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


def test_a_playback_start_does_not_wait_for_an_open_insert_referencing_the_session(postgresql):
    session = RoomSessionFactory(media_worker="specific.worker!test")
    actor = in_session(Actor.system(session.project_id), session.id)
    with OpenInsert(session), lock_timeout("the playback start"):
        channel, payload, command = playback_start_prepare(actor=actor, params={"url": "http://127.0.0.1:9/clip.mp4"})
    assert channel == "specific.worker!test" and command["action"] == "playback.start"
    assert Playback.objects.get(id=payload["id"]).state == Playback.State.OPENING
    assert RoomSessionEvent.objects.filter(room_session=session, name="member.talking").exists()


def test_a_recording_start_check_does_not_wait_for_an_open_insert_referencing_the_session(postgresql):
    session = RoomSessionFactory(media_worker="specific.worker!test")
    with OpenInsert(session), lock_timeout("the recording check"), transaction.atomic():
        recording_check_none_live(session.id)


def test_a_leave_does_not_wait_for_an_open_insert_referencing_the_session(postgresql):
    session = RoomSessionFactory(media_worker="specific.worker!test")
    leaving, staying = MemberFactory(room_session=session), MemberFactory(room_session=session)
    with OpenInsert(session), lock_timeout("the leave"):
        assert member_leave(member_id=leaving.id, reason="left") is not None
    leaving.refresh_from_db()
    assert leaving.leave_time is not None and staying.room_session.status == session.Status.IN_PROGRESS


def test_a_moderation_lookup_does_not_wait_for_an_open_insert_referencing_the_session(postgresql):
    session = RoomSessionFactory(media_worker="specific.worker!test")
    member = MemberFactory(room_session=session)
    with OpenInsert(session), lock_timeout("the member lookup"), transaction.atomic():
        assert member_resolve(actor=Actor.system(session.project_id), member_id=member.id) == member
