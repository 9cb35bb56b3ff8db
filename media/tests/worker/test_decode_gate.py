"""A member's video is decoded only while it is on the canvas: the decode gate (``media.worker.jitter``) drops its
frames while it is hidden and, when it comes back, asks the member for a keyframe (PLI) and decodes from there."""

from __future__ import annotations

import pytest

from media import protocol
from media.tests.worker.conftest import join, latest_layout, listen_room_events
from media.tests.worker.synthetic import SyntheticMember
from media.tests.worker.test_jitter import feed, packet
from media.tests.worker.test_room_loopback import close_to, colour_at
from media.worker.jitter import MarkerJitterBuffer, is_keyframe

IDR = b"\x00\x00\x00\x01\x67sps\x00\x00\x00\x01\x68pps\x00\x00\x00\x01\x65idr"
P_SLICE = b"\x00\x00\x00\x01\x41slice"
VP8_KEY = bytes([0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A]) + b"key"
VP8_INTER = bytes([0x31, 0x42, 0x00]) + b"inter"
RED, GREEN = (220, 30, 30), (30, 200, 40)


def frame(seq: int, data: bytes):
    return [packet(seq, seq * 3000, data, marker=True)]


def test_keyframes_of_both_codecs_are_recognised():
    assert is_keyframe(IDR) and is_keyframe(VP8_KEY)
    assert not is_keyframe(P_SLICE) and not is_keyframe(VP8_INTER)


def test_a_paused_gate_drops_frames_and_resumes_at_a_keyframe_after_one_pli():
    gate = MarkerJitterBuffer()
    assert feed(gate, frame(1, IDR))[0].data == IDR

    gate.pause()
    assert feed(gate, frame(2, P_SLICE) + frame(3, P_SLICE)) == [None, None]

    gate.resume()
    pli, out = gate.add(frame(4, P_SLICE)[0])
    assert pli and out is None  # the PLI goes with the first packet after resuming; mid-GOP frames are dropped
    assert gate.add(frame(5, P_SLICE)[0]) == (False, None)  # one PLI, not one per packet
    assert feed(gate, frame(6, IDR))[0].data == IDR
    assert feed(gate, frame(7, P_SLICE))[0].data == P_SLICE
    assert (gate.frames_dropped, gate.keyframe_requests) == (4, 1)


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_a_hidden_member_is_not_decoded_and_shows_again_when_visible(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    members = [await make_member(session, name=f"m{i}") for i in range(2)]
    clients = [SyntheticMember(RED, 400.0), SyntheticMember(GREEN, 700.0)]
    events = await listen_room_events(channel_layer, session)
    try:
        for member, client in zip(members, clients, strict=True):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
        for client in clients:
            await client.wait_connected()
        room = worker.rooms[str(session.id)]
        hidden = room.members[str(members[1].id)]
        await clients[0].wait_for(lambda: hidden.frames_in > 5, timeout_s=30, what="the member's video decoded")
        assert hidden.video_gate is not None and not hidden.video_gate.paused

        async def set_visible(visible: bool) -> None:
            # What the worker does with a ``media.member_update`` carrying ``visible``.
            room.update_member(str(members[1].id), {"visible": visible})

        await set_visible(False)
        gate = hidden.video_gate
        await clients[0].wait_for(lambda: gate.paused, timeout_s=30, what="the gate paused")
        decoded, dropped = hidden.frames_in, gate.frames_dropped
        await clients[0].wait_for(lambda: gate.frames_dropped >= dropped + 10, timeout_s=30, what="frames dropped")
        assert hidden.frames_in <= decoded + 1  # at most a frame already in the decoder when the gate closed
        assert hidden.latest_video is None

        await set_visible(True)
        await clients[0].wait_for(lambda: not gate.paused, timeout_s=30, what="the gate resumed")
        await clients[0].wait_for(lambda: gate.keyframe_requests >= 1, timeout_s=30, what="a PLI to the member")
        await clients[0].wait_for(lambda: hidden.frames_in > decoded + 5, timeout_s=30, what="decoding again")
        layout = await latest_layout(channel_layer, events, 2)
        rect = next(layer for layer in layout["layers"] if layer["member_id"] == str(members[1].id))
        await clients[0].wait_for(
            lambda: clients[0].latest_frame is not None and close_to(colour_at(clients[0].canvas_rgb(), rect), GREEN),
            timeout_s=30,
            what="the member back on the canvas",
        )
    finally:
        for client in clients:
            await client.close()
