"""A joiner misses no event: the join's events wait until its socket is in the room's groups (they go out after it)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers

from rooms.events import room_session_group
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingLayer(InMemoryChannelLayer):
    """The in-memory layer, keeping the order of group subscriptions and group sends."""

    log: list[tuple] = []

    async def group_add(self, group, channel):
        RecordingLayer.log.append(("add", group, channel))
        await super().group_add(group, channel)

    async def group_send(self, group, message):
        event = message.get("event") or {}
        member = (event.get("params") or {}).get("member") or {}
        RecordingLayer.log.append(("send", group, event.get("event_type"), member.get("id")))
        await super().group_send(group, message)


@pytest.fixture
def recording_layer(settings):
    RecordingLayer.log = []
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.RecordingLayer"}}
    channel_layers.backends = {}
    yield RecordingLayer.log
    channel_layers.backends = {}


async def test_the_joiner_receives_the_member_list_update_of_its_own_join(project, room):
    host = await joined(project, "standup", user_name="Ada")
    listed = await host.event("memberList.updated")
    assert host.member_id in [m["id"] for m in listed["members"]]
    guest = await joined(project, "standup", user_name="Bob")
    listed = await guest.event("memberList.updated")
    assert {m["id"] for m in listed["members"]} == {host.member_id, guest.member_id}
    await guest.no_event("member.joined")  # it learns of itself from room.joined
    await host.close()
    await guest.close()


async def test_the_socket_is_in_the_room_group_before_its_join_is_broadcast(project, room, recording_layer):
    host = await joined(project, "standup", user_name="Ada")
    guest = await joined(project, "standup", user_name="Bob")
    group = room_session_group(guest.room_session_id)

    def broadcasts(client) -> list[int]:
        return [
            i
            for i, e in enumerate(recording_layer)
            if e[0] == "send" and e[1] == group and e[2] == "member.joined" and e[3] == client.member_id
        ]

    # Events leave through the process's event sender after the join's answer: wait for the guest's to go out.
    for _ in range(200):
        if broadcasts(guest):
            break
        await asyncio.sleep(0.05)
    adds = [i for i, e in enumerate(recording_layer) if e[0] == "add" and e[1] == group]
    assert len(adds) == 2  # host, then guest
    for add, client in zip(adds, (host, guest), strict=True):
        broadcast = broadcasts(client)
        assert len(broadcast) == 1 and add < broadcast[0], recording_layer
    await host.close()
    await guest.close()
