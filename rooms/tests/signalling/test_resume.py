"""Resumable sessions: a member that reconnects within the grace keeps its identity; after it, it is removed."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from rooms.models import Member
from rooms.services.sessions import members_expire_disconnected
from rooms.tests.signalling.conftest import connect, joined, mint

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_member_that_reconnects_within_the_grace_is_resumed(project, room, settings):
    settings.PARLEY_RECONNECT_GRACE_SECONDS = 5
    watcher = await joined(project, "standup")
    token = await database_sync_to_async(mint)(project, "standup", user_name="Flaky")
    client = await connect(token)
    await client.join()
    member_id = client.member_id
    await client.close()
    member = await database_sync_to_async(Member.objects.get)(id=member_id)
    assert member.disconnected_at is not None and member.leave_time is None

    again = await connect(token)
    result = await again.join({"member_id": member_id})
    assert result["member_id"] == member_id
    member = await database_sync_to_async(Member.objects.get)(id=member_id)
    assert member.disconnected_at is None
    assert member.channel_name
    await watcher.no_event("member.left")
    # the resumed socket acts as the member and receives the room's events
    await watcher.call("member.audio_mute")
    assert (await again.event("member.updated"))["member"]["id"] == watcher.member_id
    assert "result" in await again.call("member.video_mute")
    await watcher.close()
    await again.close()


async def test_a_member_that_does_not_return_is_removed_with_reason_timeout(project, room, settings):
    settings.PARLEY_RECONNECT_GRACE_SECONDS = 0.3
    watcher = await joined(project, "standup")
    client = await joined(project, "standup")
    member_id = client.member_id
    await client.close()
    left = await watcher.event("member.left", timeout=3, where=lambda p: p["member"]["id"] == member_id)
    assert left["reason"] == "timeout"
    member = await database_sync_to_async(Member.objects.get)(id=member_id)
    assert member.leave_reason == "timeout"
    await watcher.close()


async def test_resuming_after_the_grace_is_not_found(project, room, settings):
    settings.PARLEY_RECONNECT_GRACE_SECONDS = 0.2
    watcher = await joined(project, "standup")
    token = await database_sync_to_async(mint)(project, "standup")
    client = await connect(token)
    await client.join()
    member_id = client.member_id
    await client.close()
    await watcher.event("member.left", timeout=3, where=lambda p: p["member"]["id"] == member_id)
    again = await connect(token)
    assert (await again.call("room.join", {"member_id": member_id}))["error"]["code"] == -32004
    await watcher.close()
    await again.close()


async def test_another_token_cannot_resume_a_member(project, room, settings):
    settings.PARLEY_RECONNECT_GRACE_SECONDS = 5
    watcher = await joined(project, "standup")
    client = await joined(project, "standup")
    member_id = client.member_id
    await client.close()
    thief = await connect(await database_sync_to_async(mint)(project, "standup"))
    assert (await thief.call("room.join", {"member_id": member_id}))["error"]["code"] == -32004
    await watcher.close()
    await thief.close()


async def test_the_sweep_removes_members_disconnected_past_the_grace(project, room, settings):
    settings.PARLEY_RECONNECT_GRACE_SECONDS = 60
    watcher = await joined(project, "standup")
    client = await joined(project, "standup")
    member_id = client.member_id
    await client.close()
    assert await database_sync_to_async(members_expire_disconnected)() == 0
    later = timezone.now() + timezone.timedelta(seconds=61)
    assert await database_sync_to_async(members_expire_disconnected)(now=later) == 1
    left = await watcher.event("member.left", where=lambda p: p["member"]["id"] == member_id)
    assert left["reason"] == "timeout"
    await watcher.close()
