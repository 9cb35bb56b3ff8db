"""RTMP egress to a real server on loopback (``ffmpeg -listen 1``): ``stream.started`` only once a server accepted
the output, what it received decodes; a dropped server that comes back puts the stream back to ``streaming``
(``stream.updated``); one that stays away is retried with back-off and the stream ends with a reason, the stream
key never shown."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import pytest

from media import protocol
from media.tests.egress.helpers import decode, egress, ffprobe, media_seconds_at_least, video_packets, wait_until
from media.tests.worker.conftest import join, listen_room_events, placed_channel, receive
from media.tests.worker.synthetic import SyntheticMember
from rooms.models import RoomSessionEvent, Stream

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

EVENT_TIMEOUT_S = 60.0


async def one_member_room(channel_layer, make_session, make_member):
    session = await make_session()
    member = await make_member(session, name="m0")
    client = SyntheticMember((220, 30, 30), 600.0)
    reply, _ = await join(channel_layer, session, member, client)
    assert reply["type"] == protocol.ANSWER, reply
    await client.wait_connected()
    return session, client


async def new_stream(session, url: str) -> Stream:
    """A ``pending`` stream row, as the REST/RPC start leaves it before the worker runs it."""
    return await Stream.objects.acreate(project_id=session.project_id, room_session=session, url=url)


async def next_event(layer, events: str, event_type: str, state: str | None = None) -> dict:
    """The next room event ``event_type`` (whose ``stream.state`` is ``state``, when given); others are skipped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EVENT_TIMEOUT_S
    while True:
        body = (await receive(layer, events, max(0.1, deadline - loop.time())))["event"]
        if body["event_type"] == event_type and (state is None or body["params"]["stream"]["state"] == state):
            return body


async def stream_started(layer, session, events: str, url: str, output: str) -> tuple[Stream, str]:
    """Start a stream of ``session`` to a listening server; return ``(row, worker channel)`` once
    ``stream.started`` was emitted and the server holds some media."""
    stream = await new_stream(session, url)
    channel = await placed_channel(session)
    assert (await egress(layer, channel, session, "stream.start", stream.id, url=url))["type"] == protocol.ANSWER
    await next_event(layer, events, "stream.started")
    await wait_until(lambda: file_size_at_least(output, 5_000), 30, "media at the server")
    return stream, channel


async def file_size_at_least(path: str, size: int) -> bool:
    return os.path.exists(path) and os.path.getsize(path) >= size


async def test_stream_started_waits_for_the_server_and_what_it_received_decodes(
    channel_layer, worker, make_session, make_member, rtmp_server, settings
):
    settings.PARLEY_RTMP_MAX_FAILURES = 1000
    settings.PARLEY_RTMP_BACKOFF_BASE_SECONDS = 0.2
    settings.PARLEY_RTMP_BACKOFF_MAX_SECONDS = 0.5
    session, client = await one_member_room(channel_layer, make_session, make_member)
    events = await listen_room_events(channel_layer, session)
    try:
        # Nothing listens on the port yet: the worker acknowledges, but no server has accepted the stream.
        url, _unused, first = rtmp_server()
        first.kill()
        await asyncio.to_thread(first.wait, 10)
        stream = await new_stream(session, url)
        channel = await placed_channel(session)
        reply = await egress(channel_layer, channel, session, "stream.start", stream.id, url=url)
        assert reply["type"] == protocol.ANSWER, reply
        retrying = await next_event(channel_layer, events, "stream.updated", "retrying")
        assert retrying["params"]["stream"]["started_at"] is None
        assert not await RoomSessionEvent.objects.filter(name="stream.started", room_session_id=session.id).aexists()
        assert (await Stream.objects.aget(id=stream.id)).state == Stream.State.RETRYING

        # The server comes up: the retry is accepted, and only now is the stream started.
        _url, output, server = rtmp_server(urlsplit(url).port)
        started = await next_event(channel_layer, events, "stream.started")
        payload = started["params"]["stream"]
        assert payload["id"] == str(stream.id) and payload["state"] == "streaming" and payload["started_at"]
        assert "secret-key-123" not in str(started)
        row = await Stream.objects.aget(id=stream.id)
        assert row.state == Stream.State.STREAMING and row.started_at is not None
        assert server.poll() is None

        await wait_until(lambda: media_seconds_at_least(output, 2.5), 60, "2.5 s of video at the server", 0.5)
        assert (await egress(channel_layer, channel, session, "stream.stop", stream.id))["type"] == protocol.ANSWER
        await asyncio.to_thread(server.wait, 15)
        ended = await wait_until(
            lambda: Stream.objects.filter(id=stream.id, state=Stream.State.COMPLETED).afirst(), 10, "stream end"
        )
    finally:
        await client.close()
    assert ended.failure_reason == "" and ended.ended_at is not None
    assert await RoomSessionEvent.objects.filter(name="stream.started", room_session_id=session.id).acount() == 1
    probe = ffprobe(output)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    frames, audio = decode(output)
    assert len(frames) >= 15 * 2 and audio.size >= 48000 * 2
    # The member's red fills the single tile.
    rgb = frames[-3].to_ndarray(format="rgb24")
    centre = rgb[170:190, 310:330].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 170 and centre[1] < 80 and centre[2] < 80, centre


async def test_a_stream_whose_server_comes_back_returns_to_streaming(
    channel_layer, worker, make_session, make_member, rtmp_server, settings
):
    settings.PARLEY_RTMP_MAX_FAILURES = 1000
    settings.PARLEY_RTMP_BACKOFF_BASE_SECONDS = 0.2
    settings.PARLEY_RTMP_BACKOFF_MAX_SECONDS = 0.5
    url, output, server = rtmp_server()
    port = urlsplit(url).port
    session, client = await one_member_room(channel_layer, make_session, make_member)
    events = await listen_room_events(channel_layer, session)
    try:
        stream, channel = await stream_started(channel_layer, session, events, url, output)

        server.kill()
        await asyncio.to_thread(server.wait, 10)
        retrying = await next_event(channel_layer, events, "stream.updated", "retrying")
        assert retrying["params"]["stream"]["restarts"] >= 1
        assert (await Stream.objects.aget(id=stream.id)).state == Stream.State.RETRYING

        _url, second_output, second = rtmp_server(port)
        back = await next_event(channel_layer, events, "stream.updated", "streaming")
        assert back["params"]["stream"]["id"] == str(stream.id)
        row = await Stream.objects.aget(id=stream.id)
        assert row.state == Stream.State.STREAMING and row.restarts >= 1 and row.failure_reason == ""
        await wait_until(lambda: media_seconds_at_least(second_output, 1.0), 60, "video at the second server", 0.5)

        assert (await egress(channel_layer, channel, session, "stream.stop", stream.id))["type"] == protocol.ANSWER
        await asyncio.to_thread(second.wait, 15)
        await wait_until(
            lambda: Stream.objects.filter(id=stream.id, state=Stream.State.COMPLETED).afirst(), 10, "stream end"
        )
    finally:
        await client.close()
    # One start for the whole life of the stream; the reconnect was an update.
    assert await RoomSessionEvent.objects.filter(name="stream.started", room_session_id=session.id).acount() == 1
    packets = video_packets(second_output)
    assert packets and packets[0][1], "a reconnect starts with a keyframe"
    frames, audio = decode(second_output)
    assert frames and audio.size, "the second server received no decodable media"


async def test_a_dropped_server_is_retried_then_the_stream_ends_with_a_reason(
    channel_layer, worker, make_session, make_member, rtmp_server, settings
):
    settings.PARLEY_RTMP_MAX_FAILURES = 3
    settings.PARLEY_RTMP_BACKOFF_BASE_SECONDS = 0.2
    url, output, server = rtmp_server()
    session, client = await one_member_room(channel_layer, make_session, make_member)
    events = await listen_room_events(channel_layer, session)
    try:
        stream, _channel = await stream_started(channel_layer, session, events, url, output)
        server.kill()
        await asyncio.to_thread(server.wait, 5)
        ended_event = await next_event(channel_layer, events, "stream.ended")
    finally:
        await client.close()
    row = await Stream.objects.aget(id=stream.id)
    assert row.state == Stream.State.FAILED
    assert row.restarts == 2  # failures 1 and 2 restarted, the 3rd gave up
    assert row.failure_reason and "secret-key-123" not in row.failure_reason
    payload = ended_event["params"]["stream"]
    assert payload["state"] == "failed" and payload["failure_reason"] == row.failure_reason
    assert "secret-key-123" not in str(ended_event)
