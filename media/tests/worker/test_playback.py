"""Playback into a room: a generated MP4 (solid colour + sine tone) played through ``media.egress`` ``playback.*``
to a room with one synthetic member; assertions on the member's decoded canvas, its audio spectrum, the
``Playback`` row and the room events. URLs that are missing, not media or never answer (a silent TCP server) are
refused with a reason while the room's other commands go on."""

# The media fixtures are imported by name (pytest finds them here); the test arguments reuse the names.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import http.server
import threading
import uuid

import av
import numpy as np
import pytest
from asgiref.sync import sync_to_async

from media import protocol
from media.tests.worker.conftest import join, latest_layout, listen_room_events, receive, request
from media.tests.worker.playback_media import (  # noqa: F401
    PLAYBACK_RGB,
    PLAYBACK_TONE_HZ,
    http_media,
    make_mp4,
    private_playback_urls,
    silent_url,
)
from media.tests.worker.synthetic import SyntheticMember, tone_magnitude
from media.worker.playback import _open_options
from rooms.models import Playback

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

MEMBER_RGB = (40, 60, 230)


@sync_to_async
def create_playback(session, url: str, volume: float = 0.0) -> Playback:
    return Playback.objects.create(project_id=session.project_id, room_session=session, url=url, volume=volume)


@sync_to_async
def playback_row(playback: Playback) -> Playback:
    return Playback.objects.get(id=playback.id)


async def playback_command(layer, session, playback: Playback, action: str, **extra) -> dict:
    return await request(
        layer,
        {
            "type": protocol.EGRESS,
            "room_session_id": str(session.id),
            "action": f"playback.{action}",
            "object_id": str(playback.id),
            **extra,
        },
    )


async def wait_event(layer, channel: str, event_type: str, timeout_s: float = 10.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        message = await receive(layer, channel, max(0.1, deadline - loop.time()))
        if message["event"]["event_type"] == event_type:
            return message["event"]


def colour_at(canvas: np.ndarray, layer: dict) -> np.ndarray:
    h, w = canvas.shape[:2]
    cx = int((layer["x"] + layer["width"] / 2) / 100 * w)
    cy = int((layer["y"] + layer["height"] / 2) / 100 * h)
    return canvas[cy - 4 : cy + 4, cx - 4 : cx + 4].reshape(-1, 3).mean(axis=0)


def close_to(rgb: np.ndarray, expected, tolerance: float = 40.0) -> bool:
    return float(np.abs(rgb - np.array(expected)).max()) <= tolerance


async def joined_member(channel_layer, make_session, make_member, **session_fields):
    """A live session (``session_fields`` for its factory) placed on the worker by one joined synthetic member.
    Returns ``(session, member, client, events_channel)``."""
    session = await make_session(**session_fields)
    member = await make_member(session, name="viewer")
    client = SyntheticMember(MEMBER_RGB, None)
    events = await listen_room_events(channel_layer, session)
    reply, _ = await join(channel_layer, session, member, client)
    assert reply["type"] == protocol.ANSWER, reply
    await client.wait_connected()
    return session, member, client, events


async def test_a_playback_shows_its_video_in_the_announced_layer_and_everyone_hears_it(
    channel_layer, worker, make_session, make_member, tmp_path
):
    url = make_mp4(tmp_path / "clip.mp4", 8.0).as_uri()
    session, member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, url)
        reply = await playback_command(channel_layer, session, playback, "start", url=url, volume=0)
        assert reply["type"] == protocol.ANSWER, reply
        assert reply["object_id"] == str(playback.id)

        layout = await latest_layout(channel_layer, events, 2)
        rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
        assert set(rects) == {str(member.id), str(playback.id)}
        assert rects[str(playback.id)]["playing_file"] is True

        def playback_visible() -> bool:
            if client.latest_frame is None:
                return False
            canvas = client.canvas_rgb()
            return close_to(colour_at(canvas, rects[str(playback.id)]), PLAYBACK_RGB) and close_to(
                colour_at(canvas, rects[str(member.id)]), MEMBER_RGB
            )

        await client.wait_for(playback_visible, timeout_s=8, what="the playback colour in its layer")
        await client.wait_for(
            lambda: tone_magnitude(client.recent_audio(0.5), PLAYBACK_TONE_HZ) > 200,
            timeout_s=8,
            what="the playback tone",
        )
    finally:
        await client.close()


async def test_pause_resume_and_stop_change_the_playback_state(
    channel_layer, worker, make_session, make_member, tmp_path
):
    url = str(make_mp4(tmp_path / "clip.mp4", 8.0))
    session, _member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, url)
        assert (await playback_command(channel_layer, session, playback, "start", url=url))["type"] == protocol.ANSWER
        source = worker.playbacks[str(session.id)][str(playback.id)]
        await client.wait_for(
            lambda: tone_magnitude(client.recent_audio(0.5), PLAYBACK_TONE_HZ) > 200, timeout_s=8, what="the tone"
        )

        assert (await playback_command(channel_layer, session, playback, "pause"))["type"] == protocol.ANSWER
        assert source.state == "paused"
        paused_at = source.video_frames
        await client.wait_for(
            lambda: tone_magnitude(client.recent_audio(0.3), PLAYBACK_TONE_HZ) < 20, timeout_s=5, what="silence"
        )
        assert source.video_frames == paused_at

        assert (await playback_command(channel_layer, session, playback, "resume"))["type"] == protocol.ANSWER
        assert source.state == "playing"
        await client.wait_for(lambda: source.video_frames > paused_at, timeout_s=5, what="frames after resume")

        assert (await playback_command(channel_layer, session, playback, "stop"))["type"] == protocol.ANSWER
        assert source.state == "stopped"
        assert str(playback.id) not in worker.rooms[str(session.id)].members
        layout = await latest_layout(channel_layer, events, 1)
        assert all(layer["member_id"] != str(playback.id) for layer in layout["layers"])
        reply = await playback_command(channel_layer, session, playback, "pause")
        assert reply["type"] == protocol.ERROR and reply["code"] == "not_found"
    finally:
        await client.close()


async def test_a_missing_or_non_media_url_is_refused_with_its_reason_and_the_room_is_unaffected(
    channel_layer, worker, make_session, make_member, tmp_path, http_media
):
    served, base_url = http_media
    (served / "notes.txt").write_text("this is not a video\n" * 50)
    session, member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        for url, reason in (
            (str(tmp_path / "missing.mp4"), "not_found"),
            (base_url + "missing.mp4", "not_found"),
            (base_url + "notes.txt", "not_media"),
        ):
            playback = await create_playback(session, url)
            reply = await playback_command(channel_layer, session, playback, "start", url=url)
            assert reply["type"] == protocol.ERROR, reply
            assert (reply["code"], reply["reason"]) == ("invalid_media", reason), url
            row = await playback_row(playback)
            assert (row.state, row.failure_reason) == (Playback.State.FAILED, reason)
            ended = await wait_event(channel_layer, events, "playback.ended")
            assert ended["params"]["playback"]["id"] == str(playback.id)
            assert ended["params"]["playback"]["state"] == "failed"
            assert ended["params"]["playback"]["failure_reason"] == reason
        room = worker.rooms[str(session.id)]
        assert list(room.members) == [str(member.id)]
        assert worker.playbacks[str(session.id)] == {}
        frames = client.frames
        await client.wait_for(lambda: client.frames > frames + 5, timeout_s=5, what="the room still sending video")
    finally:
        await client.close()


async def test_a_url_that_never_answers_does_not_hold_up_the_rooms_other_commands(
    channel_layer, worker, make_session, make_member, settings, silent_url, http_media
):
    # The open gives up 3 s before the web side would: 6 s here.
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 9
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 8.0)
    session, member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        stuck = await create_playback(session, silent_url)
        stuck_reply_channel = await channel_layer.new_channel("test.reply.")
        await channel_layer.send(
            protocol.CONTROL_CHANNEL,
            {
                "type": protocol.EGRESS,
                "room_session_id": str(session.id),
                "action": "playback.start",
                "object_id": str(stuck.id),
                "url": silent_url,
                "reply_channel": stuck_reply_channel,
                "request_id": uuid.uuid4().hex,
            },
        )
        # A member command and a second playback of the same room, sent right behind it, are handled while the
        # first URL is still opening.
        await channel_layer.send(
            protocol.CONTROL_CHANNEL,
            {
                "type": protocol.MEMBER_UPDATE,
                "room_session_id": str(session.id),
                "member_id": str(member.id),
                "fields": {"audio_muted": True},
            },
        )
        good = await create_playback(session, base_url + "clip.mp4")
        reply = await playback_command(channel_layer, session, good, "start", url=base_url + "clip.mp4")
        assert reply["type"] == protocol.ANSWER, reply
        source = worker.playbacks[str(session.id)][str(stuck.id)]
        assert source.state == "opening"
        assert worker.rooms[str(session.id)].members[str(member.id)].audio_muted is True
        with pytest.raises(asyncio.TimeoutError):  # nothing answered the first start yet
            await asyncio.wait_for(channel_layer.receive(stuck_reply_channel), 0.05)

        refused = await receive(channel_layer, stuck_reply_channel, timeout_s=30)
        assert (refused["type"], refused["code"], refused["reason"]) == (protocol.ERROR, "invalid_media", "timeout")
        row = await playback_row(stuck)
        assert (row.state, row.failure_reason) == (Playback.State.FAILED, "timeout")
        assert str(stuck.id) not in worker.playbacks[str(session.id)]
        assert worker.playbacks[str(session.id)][str(good.id)].state == "playing"
    finally:
        await client.close()


async def test_stopping_a_playback_whose_url_is_opening_answers_its_start(
    channel_layer, worker, make_session, make_member, settings, silent_url
):
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = 60  # the open would wait 10 s: the stop comes first
    session, _member, client, _events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, silent_url)
        start = asyncio.ensure_future(playback_command(channel_layer, session, playback, "start", url=silent_url))
        await client.wait_for(
            lambda: str(playback.id) in worker.playbacks.get(str(session.id), {}), timeout_s=10, what="opening"
        )
        stopped = await playback_command(channel_layer, session, playback, "stop")
        assert stopped["type"] == protocol.ANSWER, stopped
        reply = await asyncio.wait_for(start, 10)
        assert (reply["type"], reply["code"], reply["reason"]) == (protocol.ERROR, "not_found", "stopped")
        assert str(playback.id) not in worker.rooms[str(session.id)].members
    finally:
        await client.close()


async def test_the_end_of_the_file_ends_the_playback(channel_layer, worker, make_session, make_member, tmp_path):
    url = str(make_mp4(tmp_path / "short.mp4", 1.0))
    session, _member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, url)
        assert (await playback_command(channel_layer, session, playback, "start", url=url))["type"] == protocol.ANSWER
        event = await wait_event(channel_layer, events, "playback.ended", timeout_s=10)
        assert event["params"]["playback"]["id"] == str(playback.id)
        assert event["params"]["playback"]["state"] == "completed"
        row = await playback_row(playback)
        assert row.state == Playback.State.COMPLETED and row.ended_at is not None
        assert str(playback.id) not in worker.playbacks.get(str(session.id), {})
        assert str(playback.id) not in worker.rooms[str(session.id)].members
    finally:
        await client.close()


async def test_seek_moves_the_position_and_set_volume_changes_the_level_heard(
    channel_layer, worker, make_session, make_member, tmp_path
):
    url = str(make_mp4(tmp_path / "clip.mp4", 8.0))
    session, _member, client, _events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, url)
        assert (await playback_command(channel_layer, session, playback, "start", url=url))["type"] == protocol.ANSWER
        source = worker.playbacks[str(session.id)][str(playback.id)]
        await client.wait_for(
            lambda: tone_magnitude(client.recent_audio(0.5), PLAYBACK_TONE_HZ) > 200, timeout_s=8, what="the tone"
        )
        loud = tone_magnitude(client.recent_audio(0.5), PLAYBACK_TONE_HZ)

        reply = await playback_command(channel_layer, session, playback, "seek", position_ms=5000)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_for(lambda: source.position_ms >= 5000, timeout_s=3, what="the position after seek")

        reply = await playback_command(channel_layer, session, playback, "set_volume", volume=-20)
        assert reply["type"] == protocol.ANSWER, reply
        assert source.member.input_volume == -20
        # -20 dB is a tenth of the amplitude.
        await client.wait_for(
            lambda: 0 < tone_magnitude(client.recent_audio(0.3), PLAYBACK_TONE_HZ) < loud / 5,
            timeout_s=5,
            what="the quieter tone",
        )
    finally:
        await client.close()


async def test_a_playback_ends_with_its_room_when_the_last_member_leaves(
    channel_layer, worker, make_session, make_member, tmp_path
):
    url = str(make_mp4(tmp_path / "clip.mp4", 8.0))
    session, member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        playback = await create_playback(session, url)
        assert (await playback_command(channel_layer, session, playback, "start", url=url))["type"] == protocol.ANSWER
        await channel_layer.send(
            worker.channel_name,
            {"type": protocol.LEAVE, "room_session_id": str(session.id), "member_id": str(member.id)},
        )
        event = await wait_event(channel_layer, events, "playback.ended", timeout_s=10)
        assert event["params"]["playback"]["id"] == str(playback.id)
        await client.wait_for(lambda: str(session.id) not in worker.rooms, timeout_s=5, what="the room released")
        assert (await playback_row(playback)).state == Playback.State.COMPLETED
    finally:
        await client.close()


async def test_the_worker_checks_the_url_again_before_opening_and_ends_a_private_one_with_url_not_allowed(
    channel_layer, worker, make_session, make_member, settings, tmp_path, http_media
):
    """The web side checked the URL's host; a name may resolve elsewhere by the time the worker opens it (DNS
    rebinding). Rows are created directly here, as if the web side's check had passed."""
    settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = False
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 4.0)
    local_url = base_url.replace("127.0.0.1", "localhost") + "clip.mp4"  # plays once allowed (below)
    session, member, client, events = await joined_member(channel_layer, make_session, make_member)
    try:
        for url in (local_url, "http://169.254.169.254/latest/meta-data/", str(make_mp4(tmp_path / "a.mp4", 1.0))):
            playback = await create_playback(session, url)
            reply = await playback_command(channel_layer, session, playback, "start", url=url)
            assert reply["type"] == protocol.ERROR, (url, reply)
            assert (reply["code"], reply["reason"]) == ("invalid_media", "url_not_allowed"), url
            row = await playback_row(playback)
            assert (row.state, row.failure_reason) == (Playback.State.FAILED, "url_not_allowed")
            ended = await wait_event(channel_layer, events, "playback.ended")
            assert ended["params"]["playback"]["id"] == str(playback.id)
            assert ended["params"]["playback"]["failure_reason"] == "url_not_allowed"
        assert list(worker.rooms[str(session.id)].members) == [str(member.id)]

        settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = True  # an on-premises media server
        playback = await create_playback(session, local_url)
        reply = await playback_command(channel_layer, session, playback, "start", url=local_url)
        assert reply["type"] == protocol.ANSWER, reply
        assert worker.playbacks[str(session.id)][str(playback.id)].state == "playing"
    finally:
        await client.close()


def test_with_the_url_guard_on_ffmpeg_does_not_follow_an_http_redirect(settings, http_media):
    """A public URL could redirect FFmpeg to an internal address: while the guard is on, redirects are refused.
    Both servers are on 127.0.0.1, so the options are exercised with FFmpeg directly (the guard itself would
    refuse the loopback redirector before FFmpeg opens it)."""
    served, base_url = http_media
    make_mp4(served / "clip.mp4", 1.0)
    target = base_url + "clip.mp4"

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the base class's name)
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, name="test-redirect", daemon=True)
    thread.start()
    redirecting = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
    try:
        settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = False
        with pytest.raises(OSError):
            av.open(redirecting, timeout=(10, 10), options=_open_options(redirecting)).close()
        settings.PARLEY_PLAYBACK_ALLOW_PRIVATE_URLS = True  # followed when private URLs are allowed
        container = av.open(redirecting, timeout=(10, 10), options=_open_options(redirecting))
        assert container.streams.video
        container.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
