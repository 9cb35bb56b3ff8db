"""The media worker end to end: real aiortc members on 127.0.0.1 driven through the channel layer as the
signalling consumer drives it; assertions on decoded pixels and audio spectra."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from media import protocol
from media.tests.worker.conftest import join, latest_layout, listen_room_events, placed_channel
from media.tests.worker.synthetic import SyntheticMember, tone_magnitude

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]
TONES_HZ = [400.0, 700.0, 1100.0]


@contextlib.asynccontextmanager
async def room_of_three(channel_layer, worker, make_session, make_member, amplitudes=(8000,) * 3, **session_fields):
    session = await make_session(**session_fields)
    members = [await make_member(session, name=f"m{i}") for i in range(3)]
    clients = [SyntheticMember(COLOURS[i], TONES_HZ[i], tone_amplitude=amplitudes[i]) for i in range(3)]
    events = await listen_room_events(channel_layer, session)
    try:
        for member, client in zip(members, clients, strict=True):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
            assert reply["member_id"] == str(member.id)
        await asyncio.gather(*(c.wait_connected() for c in clients))
        yield session, members, clients, events
    finally:
        for client in clients:
            await client.close()


def colour_at(canvas: np.ndarray, layer: dict) -> np.ndarray:
    """Mean RGB of a small patch at the centre of a layer given in percent of the canvas."""
    h, w = canvas.shape[:2]
    cx = int((layer["x"] + layer["width"] / 2) / 100 * w)
    cy = int((layer["y"] + layer["height"] / 2) / 100 * h)
    return canvas[cy - 4 : cy + 4, cx - 4 : cx + 4].reshape(-1, 3).mean(axis=0)


def close_to(rgb: np.ndarray, expected: tuple[int, int, int], tolerance: float = 40.0) -> bool:
    return float(np.abs(rgb - np.array(expected)).max()) <= tolerance


async def test_each_member_sees_every_member_inside_the_announced_rectangles(
    channel_layer, worker, make_session, make_member
):
    async with room_of_three(channel_layer, worker, make_session, make_member) as (session, members, clients, ev):
        layout = await latest_layout(channel_layer, ev, 3)
        assert layout["room_session_id"] == str(session.id)
        rects = {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}
        assert set(rects) == {str(m.id) for m in members}
        assert await placed_channel(session) == worker.channel_name

        def all_colours_visible(client) -> bool:
            if client.latest_frame is None:
                return False
            canvas = client.canvas_rgb()
            return all(close_to(colour_at(canvas, rects[str(m.id)]), COLOURS[i]) for i, m in enumerate(members))

        for client in clients:
            await client.wait_for(lambda c=client: all_colours_visible(c), timeout_s=8, what="every colour")
        # One encode for the room: every member decoded the same canvas size.
        assert {(c.latest_frame.width, c.latest_frame.height) for c in clients} == {(640, 360)}


async def test_each_member_hears_the_others_tones_and_not_its_own(channel_layer, worker, make_session, make_member):
    async with room_of_three(channel_layer, worker, make_session, make_member) as (_, members, clients, _ev):
        for i, client in enumerate(clients):
            await client.wait_for(
                lambda c=client, i=i: (
                    c.recent_audio(0.5).size >= 20000
                    and min(tone_magnitude(c.recent_audio(0.5), TONES_HZ[j]) for j in range(3) if j != i) > 200
                ),
                timeout_s=8,
                what="the other members' tones",
            )
            samples = client.recent_audio(0.5)
            assert samples.size >= 20000, f"member {i} received too little audio"
            others = [tone_magnitude(samples, TONES_HZ[j]) for j in range(3) if j != i]
            own = tone_magnitude(samples, TONES_HZ[i])
            assert min(others) > 200, (i, others, own)
            assert own < 0.05 * min(others), (i, others, own)


async def test_muting_a_member_removes_its_tone_and_deaf_silences_a_member(
    channel_layer, worker, make_session, make_member
):
    async with room_of_three(channel_layer, worker, make_session, make_member) as (session, members, clients, _ev):
        await asyncio.sleep(1.5)
        channel = await placed_channel(session)
        assert tone_magnitude(clients[1].recent_audio(0.5), TONES_HZ[0]) > 200

        await channel_layer.send(
            channel,
            {
                "type": protocol.MEMBER_UPDATE,
                "room_session_id": str(session.id),
                "member_id": str(members[0].id),
                "fields": {"audio_muted": True},
            },
        )
        # Within a few seconds (the audio path has ~100 ms of queues; a loaded CI box adds more).
        await clients[1].wait_for(
            lambda: tone_magnitude(clients[1].recent_audio(0.3), TONES_HZ[0]) < 20, timeout_s=5, what="tone gone"
        )
        assert tone_magnitude(clients[1].recent_audio(0.3), TONES_HZ[2]) > 200

        await channel_layer.send(
            channel,
            {
                "type": protocol.MEMBER_UPDATE,
                "room_session_id": str(session.id),
                "member_id": str(members[2].id),
                "fields": {"deaf": True},
            },
        )
        await clients[2].wait_for(
            lambda: np.sqrt(np.mean(clients[2].recent_audio(0.3) ** 2)) < 30, timeout_s=5, what="silence when deaf"
        )
        # Deaf also mutes: the others no longer hear member 2.
        await clients[1].wait_for(
            lambda: tone_magnitude(clients[1].recent_audio(0.3), TONES_HZ[2]) < 20, timeout_s=5, what="deaf muted"
        )


async def test_a_member_below_its_noise_gate_is_not_mixed_until_its_sensitivity_lets_it_through(
    channel_layer, worker, make_session, make_member
):
    # Member 0's tone: peak 250, mean |sample| ≈ 159, below the default gate (input_sensitivity 30 → 200).
    amplitudes = (250, 8000, 8000)
    async with room_of_three(channel_layer, worker, make_session, make_member, amplitudes) as (
        session,
        members,
        clients,
        _ev,
    ):
        await clients[1].wait_for(
            lambda: tone_magnitude(clients[1].recent_audio(0.5), TONES_HZ[2]) > 200, timeout_s=8, what="member 2"
        )
        await asyncio.sleep(0.5)
        assert tone_magnitude(clients[1].recent_audio(0.5), TONES_HZ[0]) < 5  # gated out of the mix
        room = worker.rooms[str(session.id)]
        quiet = room.members[str(members[0].id)]
        assert 100 < quiet.talk_detector.score < 200 and not quiet.talking

        await channel_layer.send(
            await placed_channel(session),
            {
                "type": protocol.MEMBER_UPDATE,
                "room_session_id": str(session.id),
                "member_id": str(members[0].id),
                "fields": {"input_sensitivity": 60},  # gate ≈ 1.2
            },
        )
        await clients[1].wait_for(
            lambda: tone_magnitude(clients[1].recent_audio(0.3), TONES_HZ[0]) > 25, timeout_s=5, what="quiet tone"
        )
        # Member 0 is a source again: its own tone is not in what it hears.
        await asyncio.sleep(0.5)
        assert tone_magnitude(clients[0].recent_audio(0.3), TONES_HZ[0]) < 5


async def test_beyond_the_mix_source_limit_the_quietest_talker_is_left_out(
    channel_layer, worker, make_session, make_member, settings
):
    settings.PARLEY_MIX_MAX_SOURCES = 2
    # Three talkers, member 0 four times quieter (+12 dB below) than the others, all above their noise gates.
    amplitudes = (2000, 8000, 8000)
    async with room_of_three(channel_layer, worker, make_session, make_member, amplitudes) as (
        session,
        members,
        clients,
        _ev,
    ):
        for listener, talker in ((1, 2), (2, 1)):
            await clients[listener].wait_for(
                lambda lis=listener, t=talker: (
                    tone_magnitude(clients[lis].recent_audio(0.5), TONES_HZ[t]) > 200
                    and tone_magnitude(clients[lis].recent_audio(0.5), TONES_HZ[0]) < 5
                ),
                timeout_s=8,
                what=f"member {listener} hearing member {talker} and not member 0",
            )
        # Member 0, left out of the mix, hears both mixed members; it still counts as talking.
        await clients[0].wait_for(
            lambda: min(tone_magnitude(clients[0].recent_audio(0.5), TONES_HZ[j]) for j in (1, 2)) > 200,
            timeout_s=8,
            what="member 0 hearing members 1 and 2",
        )
        room = worker.rooms[str(session.id)]
        assert room.mix_sources.mixed == {str(members[1].id), str(members[2].id)}
        assert room.members[str(members[0].id)].talking


async def test_a_pli_from_one_receiver_yields_a_keyframe_for_every_receiver(
    channel_layer, worker, make_session, make_member
):
    async with room_of_three(channel_layer, worker, make_session, make_member) as (session, _m, clients, _ev):
        room = worker.rooms[str(session.id)]
        for client in clients:
            await client.wait_for(lambda c=client: c.frames > 10, timeout_s=8, what="video frames")
        await asyncio.sleep(0.6)  # past the rate-limit window of the join keyframes
        encoder_before = room.encoder.keyframes
        received_before = [c.keyframes for c in clients]
        requests_before = room.keyframes.requests

        await clients[0].send_pli()
        await clients[2].wait_for(
            lambda: clients[2].keyframes > received_before[2], timeout_s=3, what="a keyframe at another member"
        )
        assert room.keyframes.requests > requests_before
        assert room.encoder.keyframes >= encoder_before + 1
        await clients[0].wait_for(lambda: clients[0].keyframes > received_before[0], timeout_s=3, what="keyframe")
