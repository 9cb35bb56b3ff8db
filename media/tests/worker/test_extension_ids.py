"""RTP header-extension ids across renegotiations (RFC 8285 §6, JSEP §5.2.2): the worker's own offers
(``media.server_offer`` on promotion/demotion or a ``media_allowed`` change) keep every id negotiated for each
m-line, whatever ids the member chose in its first offer.

The client is a real aiortc peer on 127.0.0.1 whose offer numbers the extensions the way Chromium does (``mid``
4, ``ssrc-audio-level`` 1, ``abs-send-time`` 2), not the way aiortc's own offers do."""

from __future__ import annotations

import re
import uuid

import pytest
from aiortc import RTCSessionDescription

from media import protocol
from media.tests.worker.conftest import join, placed_channel, receive
from media.tests.worker.synthetic import SyntheticMember, assert_loopback_only
from media.worker.peer import keep_extension_ids

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
CHROMIUM_IDS = {MID: 4, AUDIO_LEVEL: 1, ABS_SEND_TIME: 2}
SERVER_OFFER_TIMEOUT_S = 20.0


def extension_ids(sdp: str) -> dict[str, dict[str, int]]:
    """``{mid: {uri: id}}`` of every audio/video m-line of ``sdp``."""
    out: dict[str, dict[str, int]] = {}
    for section in re.split(r"\r?\nm=", sdp)[1:]:
        if not section.startswith(("audio", "video")):
            continue
        mid = re.search(r"^a=mid:(\S+)", section, re.M).group(1)
        out[mid] = {uri: int(i) for i, uri in re.findall(r"^a=extmap:(\d+)(?:/\w+)? (\S+)", section, re.M)}
    return out


def renumber(sdp: str, ids: dict[str, int]) -> str:
    """``sdp`` with each listed extension URI moved to its id in ``ids``."""
    return re.sub(
        r"^a=extmap:(\d+)((?:/\w+)?) (\S+)",
        lambda m: f"a=extmap:{ids.get(m.group(3), m.group(1))}{m.group(2)} {m.group(3)}",
        sdp,
        flags=re.M,
    )


class ChromiumNumberedMember(SyntheticMember):
    """A synthetic member whose offers number the RTP header extensions as Chromium does."""

    async def offer(self) -> str:
        offer = await self.pc.createOffer()
        sdp = renumber(offer.sdp, CHROMIUM_IDS)
        await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        assert_loopback_only(self.pc.localDescription.sdp)
        return self.pc.localDescription.sdp


PREVIOUS = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    f"a=extmap:1 {AUDIO_LEVEL}\r\na=extmap:9 {MID}\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n"
    f"a=extmap:9 {MID}\r\na=extmap:3 urn:3gpp:video-orientation\r\na=rtpmap:96 VP8/90000\r\n"
)


def offer_sdp(extensions: dict[str, list[tuple[int, str]]]) -> str:
    """An offer with one m-line per ``{mid: [(id, uri)]}`` (``0`` audio, others video)."""
    lines = ["v=0", "o=- 2 2 IN IP4 0.0.0.0", "s=-", "t=0 0"]
    for mid, exts in extensions.items():
        kind, pt = ("audio", "111 opus/48000/2") if mid == "0" else ("video", "96 VP8/90000")
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt.split()[0]}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}", "a=sendrecv"]
        lines += [f"a=extmap:{i} {uri}" for i, uri in exts]
        lines.append(f"a=rtpmap:{pt}")
    return "\r\n".join(lines) + "\r\n"


def test_negotiated_ids_are_kept_and_new_extensions_take_a_free_id():
    offer = offer_sdp(
        {
            "0": [(1, MID), (2, AUDIO_LEVEL)],
            "1": [(1, MID), (3, ABS_SEND_TIME)],
            "2": [(1, MID), (3, ABS_SEND_TIME)],
        }
    )
    kept = extension_ids(keep_extension_ids(offer, None, PREVIOUS))
    assert kept["0"] == {MID: 9, AUDIO_LEVEL: 1}
    # abs-send-time is new on mid 1 and its offered id 3 is bound to video-orientation there: the lowest free id.
    assert kept["1"] == {MID: 9, ABS_SEND_TIME: 1}
    # An m-line new to the connection is left as offered.
    assert kept["2"] == {MID: 1, ABS_SEND_TIME: 3}


def test_the_local_descriptions_ids_win_and_a_new_extension_keeps_a_free_offered_id():
    local = PREVIOUS.replace(f"a=extmap:9 {MID}", f"a=extmap:5 {MID}")
    offer = offer_sdp({"0": [(1, MID), (7, ABS_SEND_TIME)]})
    assert extension_ids(keep_extension_ids(offer, local, PREVIOUS))["0"] == {MID: 5, ABS_SEND_TIME: 7}


def test_extensions_beyond_the_free_ids_are_left_out():
    busy = "".join(f"a=extmap:{i} urn:example:ext{i}\r\n" for i in range(1, 15))
    previous = offer_sdp({"0": []}).replace("a=rtpmap:111", busy + "a=rtpmap:111")
    offer = offer_sdp({"0": [(1, MID), (2, "urn:example:ext3")]})
    assert extension_ids(keep_extension_ids(offer, previous))["0"] == {"urn:example:ext3": 3}


async def member_update(layer, channel: str, session, member, **fields) -> None:
    await layer.send(
        channel,
        {
            "type": protocol.MEMBER_UPDATE,
            "room_session_id": str(session.id),
            "member_id": str(member.id),
            "fields": fields,
        },
    )


async def answer_server_offer(layer, channel: str, session, member, client: SyntheticMember, offer: dict) -> None:
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    await client.pc.setLocalDescription(await client.pc.createAnswer())
    reply_channel = await layer.new_channel()
    await layer.send(
        channel,
        {
            "type": protocol.SERVER_ANSWER,
            "room_session_id": str(session.id),
            "member_id": str(member.id),
            "sdp": client.pc.localDescription.sdp,
            "reply_channel": reply_channel,
            "request_id": uuid.uuid4().hex,
        },
    )


async def test_server_offers_on_demotion_and_promotion_keep_the_first_negotiations_ids(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    member = await make_member(session, name="speaker", join_as="member")
    client = ChromiumNumberedMember((220, 30, 30), 440.0)
    try:
        reply, reply_channel = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        first = extension_ids(reply["sdp"])
        assert first and all(ids[MID] == CHROMIUM_IDS[MID] for ids in first.values()), first
        await client.wait_connected(timeout_s=30)
        channel = await placed_channel(session)

        for join_as in ("audience", "member", "audience"):
            await member_update(channel_layer, channel, session, member, join_as=join_as)
            offer = await receive(channel_layer, reply_channel, SERVER_OFFER_TIMEOUT_S)
            assert offer["type"] == protocol.SERVER_OFFER, offer
            ids = extension_ids(offer["sdp"])
            assert set(ids) == set(first)
            for mid, negotiated in first.items():
                # Every negotiated extension keeps its id; anything the worker adds does not reuse one.
                assert {uri: ids[mid][uri] for uri in negotiated} == negotiated, (join_as, mid, ids[mid])
                extra = {i for uri, i in ids[mid].items() if uri not in negotiated}
                assert not extra & set(negotiated.values()), (join_as, mid, ids[mid])
            await answer_server_offer(channel_layer, channel, session, member, client, offer)
            expected_direction = "recvonly" if join_as == "audience" else "sendrecv"
            await client.wait_for(
                lambda d=expected_direction: all(
                    t.currentDirection == d for t in client.pc.getTransceivers() if t.kind == "audio"
                ),
                timeout_s=SERVER_OFFER_TIMEOUT_S,
                what=f"audio {expected_direction} after the answer",
            )

        # Media goes on after three renegotiations.
        frames, audio_frames = client.frames, client.audio_frames
        await client.wait_for(
            lambda: client.frames > frames + 5 and client.audio_frames > audio_frames + 20,
            timeout_s=30,
            what="the room's video and audio after the renegotiations",
        )
    finally:
        await client.close()
