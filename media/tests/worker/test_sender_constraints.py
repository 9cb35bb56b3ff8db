"""The media worker asks each member to send its camera at the size it is drawn at on the canvas and at most at
the canvas fps (``media.sender_constraints`` on the member's reply channel, forwarded to the browser as the
``webrtc.sender_constraints`` notification), with a real aiortc member over loopback; ``compositor.drawn_size``
gives the size (letterbox content, or the cover size of a zoomed layer)."""

from __future__ import annotations

import asyncio

import pytest

from media import protocol
from media.mixer.compositor import drawn_size
from media.tests.worker.conftest import join
from media.tests.worker.synthetic import VIDEO_H, VIDEO_W, SyntheticMember

RED = (220, 30, 30)


@pytest.mark.parametrize(
    ("source", "cell", "zoom", "expected"),
    [
        ((640, 360), (426, 240), False, (426, 240)),  # same aspect: the cell
        ((640, 480), (426, 240), False, (320, 240)),  # 4:3 letterboxed into 16:9: pillarbox bars
        ((640, 480), (426, 240), True, (426, 320)),  # zoom: covers the cell, the crop is drawn from it
        ((320, 180), (1280, 720), False, (1280, 720)),  # bigger than sent: the sender clamps to what it captures
        ((1280, 720), (2, 2), False, (2, 2)),
    ],
)
def test_drawn_size_is_the_letterbox_content_or_the_zoomed_cover(source, cell, zoom, expected):
    assert drawn_size(*source, *cell, zoom=zoom) == expected


async def next_constraints(layer, channel: str, timeout_s: float = 20.0) -> dict:
    """The next ``media.sender_constraints`` on a member's reply channel (other messages skipped)."""
    async with asyncio.timeout(timeout_s):
        while True:
            message = await layer.receive(channel)
            if message.get("type") == protocol.SENDER_CONSTRAINTS:
                return message


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_a_member_is_asked_for_its_drawn_size_on_every_layout_and_not_while_video_muted(
    channel_layer, worker, make_session, make_member
):
    session = await make_session(quality="720p", fps=15)
    member = await make_member(session, name="Ada")
    client = SyntheticMember(RED, 440.0)
    member_id = str(member.id)
    try:
        reply, reply_channel = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        await client.wait_connected()
        first = await next_constraints(channel_layer, reply_channel)
        assert first == {
            "type": protocol.SENDER_CONSTRAINTS,
            "room_session_id": str(session.id),
            "member_id": member_id,
            "width": 1280,  # alone: the whole 720p canvas (the SDK never scales a camera up)
            "height": 720,
            "max_framerate": 15,
        }
        room = worker.rooms[str(session.id)]
        assert (room.members[member_id].latest_video.width, room.members[member_id].latest_video.height) == (
            VIDEO_W,
            VIDEO_H,
        )
        stats = await worker.peers[str(session.id)][member_id].stats()  # what Member.stats shows operators
        assert stats["video_in"] == [VIDEO_W, VIDEO_H] and stats["video_asked"] == [1280, 720, 15], stats
        for layout, size in (("3x3", (426, 240)), ("4x4", (320, 180)), ("2x2", (640, 360))):
            room.set_layout(layout, None, None)  # what the worker does with ``media.layout``
            message = await next_constraints(channel_layer, reply_channel)
            assert (message["width"], message["height"], message["max_framerate"]) == (*size, 15), layout

        # The same size again (the tile did not move): not asked again.
        room.set_layout("2x2", None, None)
        with pytest.raises(TimeoutError):
            await next_constraints(channel_layer, reply_channel, timeout_s=1.0)

        # A video-muted member is not asked; unmuted in another layout, it is asked once its picture is back.
        room.update_member(member_id, {"video_muted": True})
        room.set_layout("4x4", None, None)
        with pytest.raises(TimeoutError):
            await next_constraints(channel_layer, reply_channel, timeout_s=1.5)
        room.update_member(member_id, {"video_muted": False})
        message = await next_constraints(channel_layer, reply_channel)
        assert (message["width"], message["height"]) == (320, 180)
    finally:
        await client.close()
