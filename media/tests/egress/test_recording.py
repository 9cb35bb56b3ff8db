"""Recording a loopback room end to end: synthetic members → the worker's shared encode → fragmented MP4 →
finalisation (faststart MP4 in storage), decoded with PyAV and ffprobe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage

from media import protocol
from media.tests.egress.helpers import decode, egress, ffprobe, wait_until
from media.tests.worker.conftest import join, latest_layout, listen_room_events, placed_channel
from media.tests.worker.synthetic import SyntheticMember, tone_magnitude
from rooms.models import Recording

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

COLOURS = [(220, 30, 30), (30, 200, 40)]
TONES_HZ = [500.0, 1200.0]
RECORD_S = 10.0


@contextlib.asynccontextmanager
async def room_of_two(channel_layer, make_session, make_member):
    session = await make_session()
    members = [await make_member(session, name=f"m{i}") for i in range(2)]
    clients = [SyntheticMember(COLOURS[i], TONES_HZ[i]) for i in range(2)]
    events = await listen_room_events(channel_layer, session)
    try:
        for member, client in zip(members, clients, strict=True):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
        await asyncio.gather(*(c.wait_connected() for c in clients))
        layout = await latest_layout(channel_layer, events, 2)
        yield session, members, clients, layout
    finally:
        for client in clients:
            await client.close()


async def new_recording(session) -> Recording:
    return await Recording.objects.acreate(project_id=session.project_id, room_session=session)


async def completed(recording_id) -> Recording | None:
    recording = await Recording.objects.aget(id=recording_id)
    return recording if recording.status in (Recording.Status.COMPLETED, Recording.Status.FAILED) else None


def colour_at(rgb: np.ndarray, layer: dict) -> np.ndarray:
    h, w = rgb.shape[:2]
    cx = int((layer["x"] + layer["width"] / 2) / 100 * w)
    cy = int((layer["y"] + layer["height"] / 2) / 100 * h)
    return rgb[cy - 4 : cy + 4, cx - 4 : cx + 4].reshape(-1, 3).mean(axis=0)


async def test_a_recorded_room_decodes_with_the_canvas_the_colours_and_the_tones(
    channel_layer, worker, make_session, make_member
):
    async with room_of_two(channel_layer, make_session, make_member) as (session, members, _clients, layout):
        channel = await placed_channel(session)
        recording = await new_recording(session)
        reply = await egress(channel_layer, channel, session, "recording.start", recording.id)
        assert reply["type"] == protocol.ANSWER and reply["object_id"] == str(recording.id), reply
        started_s = time.monotonic()
        working = Path((await Recording.objects.aget(id=recording.id)).working_path)
        await asyncio.sleep(RECORD_S / 2)
        # Fragments reach the disk while the room runs, and the row follows the size.
        assert working.stat().st_size > 10_000
        await wait_until(
            lambda: Recording.objects.filter(id=recording.id, size_in_bytes__gt=0).aexists(), 8, "live size"
        )
        await asyncio.sleep(max(0.0, RECORD_S - (time.monotonic() - started_s)))
        reply = await egress(channel_layer, channel, session, "recording.stop", recording.id)
        wall_s = time.monotonic() - started_s
        assert reply["type"] == protocol.ANSWER, reply
        done = await wait_until(lambda: completed(recording.id), 30, "finalisation")

    assert done.status == Recording.Status.COMPLETED, done.failure_reason
    assert len(done.sha256) == 64 and done.poster_name and done.size_in_bytes > 50_000
    path = default_storage.path(done.storage_name)
    assert not working.exists()

    probe = ffprobe(path)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["audio"]["codec_name"] == "aac"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (640, 360)
    duration_s = float(probe["format"]["duration"])
    assert abs(duration_s - wall_s) <= 0.5, (duration_s, wall_s)
    assert abs(done.duration - duration_s) <= 0.1

    # faststart: the moov box precedes the media data.
    head = Path(path).read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")

    frames, audio = decode(path)
    assert len(frames) >= RECORD_S * 15 * 0.8
    rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
    rgb = frames[-5].to_ndarray(format="rgb24")
    for i, member in enumerate(members):
        assert np.abs(colour_at(rgb, rects[str(member.id)]) - np.array(COLOURS[i])).max() <= 45
    tail = audio[-48000 * 3 :] * 32768
    off_tone = tone_magnitude(tail, 3000.0)
    for tone_hz in TONES_HZ:
        assert tone_magnitude(tail, tone_hz) > max(50.0, 10 * off_tone), tone_hz


async def test_pause_and_resume_cut_the_paused_time_out_of_the_file(channel_layer, worker, make_session, make_member):
    async with room_of_two(channel_layer, make_session, make_member) as (session, _members, _clients, _layout):
        channel = await placed_channel(session)
        recording = await new_recording(session)
        assert (await egress(channel_layer, channel, session, "recording.start", recording.id))[
            "type"
        ] == "media.answer"
        t0 = time.monotonic()
        await asyncio.sleep(2.5)
        await egress(channel_layer, channel, session, "recording.pause", recording.id)
        t_pause = time.monotonic()
        await asyncio.sleep(3.0)
        await egress(channel_layer, channel, session, "recording.resume", recording.id)
        t_resume = time.monotonic()
        await asyncio.sleep(2.5)
        await egress(channel_layer, channel, session, "recording.stop", recording.id)
        t_stop = time.monotonic()
        done = await wait_until(lambda: completed(recording.id), 30, "finalisation")

    assert done.status == Recording.Status.COMPLETED, done.failure_reason
    expected_s = (t_pause - t0) + (t_stop - t_resume)
    duration_s = float(ffprobe(default_storage.path(done.storage_name))["format"]["duration"])
    # The 3 s pause is not in the file (at most the recorded wall time, pause excluded), and the part after
    # the resume is (more than the part before the pause). The lower bound allows for the start and the
    # resume each waiting for a keyframe and for command latency on a loaded machine.
    assert max(t_pause - t0 + 0.5, expected_s - 2.0) <= duration_s <= expected_s + 0.3, (duration_s, expected_s)
    frames, _audio = decode(default_storage.path(done.storage_name))
    pts_s = [float(f.pts * f.time_base) for f in frames]
    assert max(np.diff(pts_s)) < 0.5  # no gap where the pause was


async def test_an_unknown_recording_is_refused_without_disturbing_the_room(
    channel_layer, worker, make_session, make_member
):
    async with room_of_two(channel_layer, make_session, make_member) as (session, _members, clients, _layout):
        channel = await placed_channel(session)
        reply = await egress(channel_layer, channel, session, "recording.pause", "5c3f3f0e-0000-4000-8000-000000000000")
        assert reply["type"] == protocol.ERROR and reply["code"] == "not_found"
        frames = clients[0].frames
        await clients[0].wait_for(lambda: clients[0].frames > frames + 5, timeout_s=5, what="video keeps flowing")
