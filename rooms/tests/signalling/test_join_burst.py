"""Joins under concurrency, the join's gate (no room lock across channel-layer I/O) and the ordered event sender
with ``memberList.updated`` coalescing (``rooms.event_sender``)."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers

from rooms import event_sender
from rooms.events import room_session_group
from rooms.models import Member, RoomSession
from rooms.tests.signalling.conftest import connect, joined, mint

pytestmark = pytest.mark.django_db(transaction=True)


async def _poll_db(query, *, timeout: float = 60.0):
    """Poll ``query`` (sync ORM code) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            found = await database_sync_to_async(query)()
            if found:
                return found
            await asyncio.sleep(0.05)


async def _until(predicate, *, timeout: float = 60.0, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


class LoggingLayer(InMemoryChannelLayer):
    """The in-memory layer, logging each group send as ``(group, event_type, body)``; ``block_adds`` makes
    ``group_add`` wait until the event is set."""

    sends: list[tuple] = []
    block_adds: asyncio.Event | None = None
    blocked: list[str] = []

    async def group_add(self, group, channel):
        gate = LoggingLayer.block_adds
        if gate is not None and group.startswith("rs."):
            LoggingLayer.blocked.append(channel)
            await gate.wait()
        await super().group_add(group, channel)

    async def group_send(self, group, message):
        event = message.get("event") or {}
        LoggingLayer.sends.append((group, event.get("event_type"), event))
        await super().group_send(group, message)


@pytest.fixture
def logging_layer(settings):
    LoggingLayer.sends = []
    LoggingLayer.block_adds = None
    LoggingLayer.blocked = []
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.LoggingLayer"}}
    channel_layers.backends = {}
    yield LoggingLayer
    channel_layers.backends = {}


def _lists(client) -> list[dict]:
    return [
        m["params"]["params"]
        for m in client.events
        if m.get("method") == "event" and m["params"]["event_type"] == "memberList.updated"
    ]


async def _drain(client, *, until, timeout: float = 60.0) -> None:
    """Read notifications into ``client.events`` until ``until()`` holds."""
    async with asyncio.timeout(timeout):
        while not until():
            client.events.append(await client._next(timeout))


async def test_concurrent_first_joins_create_one_room_session(project, room):
    tokens = [await database_sync_to_async(mint)(project, "standup", user_name=f"m{i}") for i in range(8)]
    clients = [await connect(t) for t in tokens]
    await asyncio.gather(*(c.join() for c in clients))
    assert len({c.room_session_id for c in clients}) == 1
    sessions = await database_sync_to_async(
        lambda: list(RoomSession.objects.filter(room=room, status=RoomSession.Status.IN_PROGRESS))
    )()
    assert [str(s.id) for s in sessions] == [clients[0].room_session_id]
    count = await database_sync_to_async(
        lambda: Member.objects.filter(room_session=sessions[0], leave_time__isnull=True).count()
    )()
    assert count == 8
    # every member ends up with the final list, whatever lists were coalesced on the way
    everyone = {c.member_id for c in clients}
    for c in clients:
        await _drain(c, until=lambda c=c: any(lst["total"] == 8 for lst in _lists(c)))
        last = _lists(c)[-1]
        assert last["total"] == 8 and {m["id"] for m in last["members"]} == everyone
        assert [lst["total"] for lst in _lists(c)] == sorted(lst["total"] for lst in _lists(c))
    for c in clients:
        await c.close()


def test_joins_from_threads_share_one_room_session(project, room):
    """The room's row lock serialises joins of separate database connections (PostgreSQL when DATABASE_URL
    is set): one session, every member in it."""
    from django.db import connection

    from rooms.services.sessions import member_join
    from rooms.tokens import room_token_verify

    if connection.vendor != "postgresql":
        pytest.skip(
            "needs row locks between concurrent connections (SQLite locks the whole database for each write): "
            "set DATABASE_URL to PostgreSQL"
        )

    grants = [room_token_verify(mint(project, "standup", user_name=f"t{i}")) for i in range(6)]
    results: list = []
    errors: list = []
    barrier = threading.Barrier(len(grants))

    def join(grant) -> None:
        try:
            barrier.wait(timeout=60)
            results.append(member_join(grant=grant, channel_name=f"test.{uuid.uuid4().hex}"))
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=join, args=(g,)) for g in grants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len({session.id for _, session in results}) == 1
    session = results[0][1]
    assert RoomSession.objects.filter(room=room, status=RoomSession.Status.IN_PROGRESS).count() == 1
    assert session.members.filter(leave_time__isnull=True).count() == 6


def _joined_sends(layer, group) -> list[str]:
    return [s[2]["params"]["member"]["id"] for s in layer.sends if s[0] == group and s[1] == "member.joined"]


async def test_a_join_holds_no_lock_while_subscribing_and_its_events_wait_for_it(project, room, logging_layer):
    host = await joined(project, "standup", user_name="Ada")
    await host.event("memberList.updated")
    group = room_session_group(host.room_session_id)
    release = logging_layer.block_adds = asyncio.Event()
    slow = await connect(await database_sync_to_async(mint)(project, "standup", user_name="Bob"))
    slow_join = asyncio.ensure_future(slow.join())
    await _until(lambda: logging_layer.blocked, what="Bob's group_add started")
    # Bob's join has committed and left the room free: the next join commits while Bob's socket subscribes
    bob = await database_sync_to_async(lambda: Member.objects.get(name="Bob", leave_time__isnull=True))()
    carol = await connect(await database_sync_to_async(mint)(project, "standup", user_name="Carol"))
    carol_join = asyncio.ensure_future(carol.join())
    carol_row = await _poll_db(lambda: Member.objects.filter(name="Carol", leave_time__isnull=True).first())
    assert str(carol_row.room_session_id) == host.room_session_id
    # … and Bob's events, then Carol's, wait until Bob's socket is in the room's groups
    assert _joined_sends(logging_layer, group) == [host.member_id]
    assert not slow_join.done()
    logging_layer.block_adds = None
    release.set()
    await slow_join
    await carol_join
    await _until(lambda: len(_joined_sends(logging_layer, group)) == 3, what="both joins broadcast")
    assert _joined_sends(logging_layer, group) == [host.member_id, str(bob.id), carol.member_id]  # commit order
    await slow.event("member.joined", where=lambda p: p["member"]["id"] == carol.member_id)
    seen = await host.event("member.joined", where=lambda p: p["member"]["id"] == str(bob.id))
    assert seen["member"]["name"] == "Bob"
    for c in (host, slow, carol):
        await c.close()


# --- the ordered sender ----------------------------------------------------------------------------------------


def _body(session_id: str, event_type: str, **params) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "project_id": str(uuid.uuid4()),
        "room_id": None,
        "room_session_id": session_id,
        "timestamp": 0,
        "params": {"room_session_id": session_id, **params},
    }


async def _submit(*bodies: dict) -> None:
    """Hand ``bodies`` to the sender from a server sync thread, as ``event_emit``'s commit hook does."""
    queued = await sync_to_async(lambda: [event_sender.submit(b) for b in bodies])()
    assert all(queued)


def _sent(layer, session_id: str) -> list[str]:
    group = room_session_group(session_id)
    return [s[2]["id"] for s in layer.sends if s[0] == group]


async def test_a_burst_of_member_lists_is_coalesced_to_the_latest_in_order(logging_layer, monkeypatch):
    monkeypatch.setattr(event_sender, "MEMBER_LIST_COALESCE_SECONDS", 600.0)
    rs = str(uuid.uuid4())
    j1, l1 = _body(rs, "member.joined", member={"id": "a"}), _body(rs, "memberList.updated", total=1)
    j2, l2 = _body(rs, "member.joined", member={"id": "b"}), _body(rs, "memberList.updated", total=2)
    j3, l3 = _body(rs, "member.joined", member={"id": "c"}), _body(rs, "memberList.updated", total=3)
    updated = _body(rs, "member.updated", member={"id": "a", "audio_muted": True})
    await _submit(j1, l1, j2, l2, j3, l3, updated)
    await _until(lambda: updated["id"] in _sent(logging_layer, rs))
    # the first list goes at once; the next is held, replaced by the newer one, and sent before any event that
    # is not a join/leave (those are followed by a newer list), so no list is older than what preceded it
    assert _sent(logging_layer, rs) == [j1["id"], l1["id"], j2["id"], j3["id"], l3["id"], updated["id"]]
    sent_bodies = {s[2]["id"]: s[2] for s in logging_layer.sends}
    assert sent_bodies[l3["id"]]["params"]["total"] == 3  # content untouched


async def test_a_held_member_list_is_sent_when_its_window_ends(logging_layer, monkeypatch):
    monkeypatch.setattr(event_sender, "MEMBER_LIST_COALESCE_SECONDS", 0.2)
    rs, other = str(uuid.uuid4()), str(uuid.uuid4())
    l1, l2 = _body(rs, "memberList.updated", total=1), _body(rs, "memberList.updated", total=2)
    o1 = _body(other, "memberList.updated", total=5)
    await _submit(l1, l2, o1)
    await _until(lambda: l2["id"] in _sent(logging_layer, rs))
    assert _sent(logging_layer, rs) == [l1["id"], l2["id"]]
    assert _sent(logging_layer, other) == [o1["id"]]  # sessions are independent


async def test_room_ended_drops_a_held_member_list(logging_layer, monkeypatch):
    monkeypatch.setattr(event_sender, "MEMBER_LIST_COALESCE_SECONDS", 600.0)
    rs = str(uuid.uuid4())
    l1, l2 = _body(rs, "memberList.updated", total=2), _body(rs, "memberList.updated", total=1)
    left = _body(rs, "member.left", member={"id": "a"}, reason="room_ended")
    ended = _body(rs, "room.ended", reason="ended")
    await _submit(l1, l2, left, ended)
    await _until(lambda: ended["id"] in _sent(logging_layer, rs))
    assert _sent(logging_layer, rs) == [l1["id"], left["id"], ended["id"]]


async def test_events_addressed_to_one_member_pass_a_held_list(logging_layer, monkeypatch):
    monkeypatch.setattr(event_sender, "MEMBER_LIST_COALESCE_SECONDS", 600.0)
    rs, member_id = str(uuid.uuid4()), str(uuid.uuid4())
    l1, l2 = _body(rs, "memberList.updated", total=1), _body(rs, "memberList.updated", total=2)
    promoted = _body(rs, "member.promoted", member_id=member_id)
    await sync_to_async(
        lambda: [
            event_sender.submit(l1),
            event_sender.submit(l2),
            event_sender.submit(promoted, to_member_id=member_id),
        ]
    )()
    await _until(lambda: any(s[2].get("id") == promoted["id"] for s in logging_layer.sends))
    assert _sent(logging_layer, rs) == [l1["id"]]  # l2 still held: a private event says nothing of the list


def test_outside_a_server_thread_events_are_not_queued():
    assert event_sender.submit(_body(str(uuid.uuid4()), "member.updated")) is False


# --- the process's room fan-out ---------------------------------------------------------------------------------


async def test_a_room_group_holds_one_channel_per_process_and_events_reach_every_socket(project, room, logging_layer):
    clients = [await joined(project, "standup", user_name=f"m{i}") for i in range(5)]
    layer = channel_layers["default"]
    group = room_session_group(clients[0].room_session_id)
    assert len(layer.groups[group]) == 1  # the fan-out's channel, not one per socket
    sends_before = len([s for s in layer.sends if s[0] == group])
    response = await clients[2].call("member.audio_mute")
    assert response["result"]["member"]["audio_muted"] is True
    for c in clients:
        seen = await c.event("member.updated", where=lambda p: p["member"]["id"] == clients[2].member_id)
        assert seen["member"]["updated"] == ["audio_muted"]
    assert len([s for s in layer.sends if s[0] == group and s[1] == "member.updated"]) == 1
    assert len([s for s in layer.sends if s[0] == group]) > sends_before
    for c in clients:
        await c.close()
    await _until(lambda: group not in layer.groups, what="the last socket took the process out of the group")


async def test_room_events_wait_until_the_sockets_own_request_is_answered(project, room):
    host = await joined(project, "standup", user_name="Ada")
    guest = await connect(await database_sync_to_async(mint)(project, "standup", user_name="Bob"))
    await guest.ws.send_to(text_data='{"jsonrpc":"2.0","id":"j","method":"room.join","params":{}}')
    frames = []
    async with asyncio.timeout(60):
        while not any(f.get("id") == "j" for f in frames):
            frames.append(await guest._next(60))
    # room.joined, then the response: the join's own events (its memberList.updated) come after both
    assert [f.get("params", {}).get("event_type") for f in frames[:-1]] == ["room.joined"]
    assert "result" in frames[-1]
    listed = await guest.event("memberList.updated")
    assert listed["total"] == 2
    await host.close()
    await guest.close()
