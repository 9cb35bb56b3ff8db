"""Renegotiation end to end: participants' sockets on the real ASGI application (JSON-RPC), a media worker on the
channel layer and real aiortc peers on 127.0.0.1.

- member-initiated: ``webrtc.offer`` adding a second video track (a screen share) mid-call is answered, and the
  track appears in the canvas as its own layer; turning the track off removes the layer;
- worker-initiated: ``member.promote`` of an audience member makes the worker send ``webrtc.offer``; once the
  member answers with ``webrtc.answer`` its camera appears in the canvas; ``member.demote`` removes it again.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from channels.db import database_sync_to_async

from media.tests.worker.synthetic import SolidColourTrack, SyntheticMember, assert_loopback_only
from media.tests.worker.test_codecs import VP8_ONLY, video_codec_names
from media.tests.worker.test_room_loopback import close_to, colour_at
from rooms.permissions import ALL_PERMISSIONS
from rooms.tests.factories import ProjectFactory, RoomFactory
from rooms.tests.signalling.conftest import Client, builtin_layouts_seed, connect, mint

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (40, 60, 230)
MEDIA_TIMEOUT_S = 30.0


@pytest.fixture
def media_settings(settings, channel_layer):
    """Sockets talk to the test's own worker (``worker`` fixture) over the fresh in-memory channel layer."""
    settings.PARLEY_MEDIA_WORKER = "external"
    settings.PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS = MEDIA_TIMEOUT_S
    return settings


@pytest.fixture
def project(transactional_db):
    builtin_layouts_seed()
    project = ProjectFactory()
    RoomFactory(project=project, name="stage")
    return project


async def participant(
    project, rgb, *, join_as: str = "member", peer: SyntheticMember | None = None
) -> tuple[Client, SyntheticMember]:
    """Join room ``stage`` with media: the socket's ``room.join`` carries the peer's offer (``peer``, by default
    one sending ``rgb``); the answer is applied."""
    token = await database_sync_to_async(mint)(
        project, "stage", join_as=join_as, permissions=[] if join_as == "audience" else list(ALL_PERMISSIONS)
    )
    client = await connect(token)
    peer = peer or SyntheticMember(rgb, None)
    response = await client.call("room.join", {"sdp": await peer.offer()}, timeout=MEDIA_TIMEOUT_S)
    assert "result" in response, response
    result = response["result"]
    client.member_id = result["member_id"]
    client.room_session_id = result["room_session"]["room_session_id"]
    await peer.accept(result["sdp"])
    await peer.wait_connected(timeout_s=MEDIA_TIMEOUT_S)
    return client, peer


async def notification(client: Client, method: str, timeout_s: float = MEDIA_TIMEOUT_S) -> dict:
    """The params of the next notification ``method`` on the socket (events meanwhile are kept)."""
    async with asyncio.timeout(timeout_s):
        while True:
            for i, message in enumerate(client.events):
                if message.get("method") == method:
                    del client.events[i]
                    return message["params"]
            message = await client._next(timeout_s)
            assert "id" not in message, message
            client.events.append(message)


async def hang_up(*participants: tuple[Client, SyntheticMember]) -> None:
    for client, peer in participants:
        await peer.close()
        await client.close()


def member_layers(layout: dict) -> dict[str, dict]:
    return {layer["member_id"]: layer for layer in layout["layers"] if layer["member_id"]}


async def layout_with(client: Client, member_ids: set[str]) -> dict:
    """The next ``layout.changed`` whose layers show exactly ``member_ids``."""
    params = await client.event(
        "layout.changed", timeout=MEDIA_TIMEOUT_S, where=lambda p: set(member_layers(p["layout"])) == member_ids
    )
    return member_layers(params["layout"])


async def wait_until(predicate, *, what: str, timeout_s: float = MEDIA_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def shows(peer: SyntheticMember, rect: dict, rgb) -> bool:
    return peer.latest_frame is not None and close_to(colour_at(peer.canvas_rgb(), rect), rgb)


async def test_a_screen_share_added_by_webrtc_offer_becomes_a_layer(media_settings, worker, project):
    host, host_peer = await participant(project, RED)
    guest, guest_peer = await participant(project, GREEN)
    try:
        await layout_with(host, {host.member_id, guest.member_id})

        screen = host_peer.pc.addTransceiver(SolidColourTrack(BLUE), direction="sendonly")
        response = await host.call("webrtc.offer", {"sdp": await host_peer.offer()}, timeout=MEDIA_TIMEOUT_S)
        assert "result" in response, response
        answer = response["result"]["sdp"]
        await host_peer.accept(answer)
        assert screen.mid is not None
        source_id = f"{host.member_id}:{screen.mid}"

        rects = await layout_with(host, {host.member_id, guest.member_id, source_id})
        expected = {host.member_id: RED, guest.member_id: GREEN, source_id: BLUE}
        for peer in (host_peer, guest_peer):
            await wait_until(
                lambda p=peer: all(shows(p, rects[i], rgb) for i, rgb in expected.items()),
                what="the screen share in the canvas",
            )
        room = worker.rooms[host.room_session_id]
        assert room.members[source_id].kind == "screen"
        assert room.members[source_id].frames_in > 0
        assert room.members[host.member_id].frames_in > 0  # the camera still feeds its own layer

        # The member stops sharing: its next offer marks the m-line inactive and the layer goes away.
        screen.direction = "inactive"
        response = await host.call("webrtc.offer", {"sdp": await host_peer.offer()}, timeout=MEDIA_TIMEOUT_S)
        assert "result" in response, response
        await host_peer.accept(response["result"]["sdp"])
        rects = await layout_with(host, {host.member_id, guest.member_id})
        assert source_id not in room.members
        await wait_until(lambda: shows(guest_peer, rects[host.member_id], RED), what="the host after the share")
    finally:
        await hang_up((host, host_peer), (guest, guest_peer))


async def test_promoting_an_audience_member_renegotiates_from_the_worker_and_shows_its_camera(
    media_settings, worker, project
):
    host, host_peer = await participant(project, RED)
    viewer, viewer_peer = await participant(project, GREEN, join_as="audience")
    try:
        await layout_with(host, {host.member_id})
        await wait_until(lambda: viewer_peer.frames > 3, what="the canvas at the audience member")
        room = worker.rooms[host.room_session_id]
        assert room.members[viewer.member_id].frames_in == 0  # nothing is taken from the audience

        async def answer_worker_offer() -> None:
            offer = await notification(viewer, "webrtc.offer")
            assert offer["member_id"] == viewer.member_id
            assert_loopback_only(offer["sdp"])
            await viewer_peer.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await viewer_peer.pc.setLocalDescription(await viewer_peer.pc.createAnswer())
            response = await viewer.call("webrtc.answer", {"sdp": viewer_peer.pc.localDescription.sdp})
            assert response.get("result") == {}, response

        promoted = await host.call("member.promote", {"member_id": viewer.member_id})
        assert "result" in promoted, promoted
        offer = await notification(viewer, "webrtc.offer")
        # Glare: while the worker's offer is unanswered the member's own offer is refused, and nothing breaks.
        glare = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        glare.addTransceiver("video", direction="recvonly")
        await glare.setLocalDescription(await glare.createOffer())
        refused = await viewer.call("webrtc.offer", {"sdp": glare.localDescription.sdp}, timeout=MEDIA_TIMEOUT_S)
        await glare.close()
        assert refused["error"]["code"] == -32010 and "answer" in refused["error"]["message"], refused
        viewer.events.insert(0, {"jsonrpc": "2.0", "method": "webrtc.offer", "params": offer})
        await answer_worker_offer()
        rects = await layout_with(host, {host.member_id, viewer.member_id})
        await wait_until(lambda: shows(host_peer, rects[viewer.member_id], GREEN), what="the promoted camera")
        await wait_until(lambda: shows(viewer_peer, rects[host.member_id], RED), what="the host at the promoted")
        assert room.members[viewer.member_id].frames_in > 0

        demoted = await host.call("member.demote", {"member_id": viewer.member_id})
        assert "result" in demoted, demoted
        await answer_worker_offer()
        rects = await layout_with(host, {host.member_id})
        await wait_until(
            lambda: shows(host_peer, rects[host.member_id], RED),
            what="the canvas without the demoted member",
        )
        frames = viewer_peer.frames
        await wait_until(lambda: viewer_peer.frames > frames + 5, what="the canvas at the demoted member")
    finally:
        await hang_up((host, host_peer), (viewer, viewer_peer))


async def test_offers_without_h264_or_vp8_get_a_clear_error_and_the_call_goes_on(media_settings, worker, project):
    host, host_peer = await participant(project, RED)
    token = await database_sync_to_async(mint)(project, "stage")
    late = await connect(token)
    late_peer = SyntheticMember(GREEN, None, video_codecs=VP8_ONLY)
    try:
        # A join whose only video codec is VP9: -32010 with the worker's reason; the member stays, signalling-only.
        vp9_offer = (await late_peer.offer()).replace("VP8/90000", "VP9/90000")
        response = await late.call("room.join", {"sdp": vp9_offer}, timeout=MEDIA_TIMEOUT_S)
        error = response["error"]
        assert error["code"] == -32010
        assert "H.264" in error["message"] and "VP8" in error["message"], error
        assert "result" in await late.call("room.get_members")

        # A renegotiation adding a VP9-only track is refused the same way; the host's media is untouched.
        host_peer.pc.addTransceiver(SolidColourTrack(BLUE), direction="sendonly")
        offer = (await host_peer.offer()).split("m=video", 2)
        offer[2] = offer[2].replace("VP8/90000", "VP9/90000").replace("H264/90000", "VP9/90000")
        response = await host.call("webrtc.offer", {"sdp": "m=video".join(offer)}, timeout=MEDIA_TIMEOUT_S)
        assert response["error"]["code"] == -32010
        assert "neither" in response["error"]["message"], response
        room = worker.rooms[host.room_session_id]
        assert set(room.members) == {host.member_id}
        frames = host_peer.frames
        await wait_until(lambda: host_peer.frames > frames + 5, what="the host's canvas after the refusals")
    finally:
        await hang_up((host, host_peer), (late, late_peer))


async def test_a_member_who_joined_without_video_adds_a_camera_and_receives_the_room(media_settings, worker, project):
    host, host_peer = await participant(project, RED)
    late, late_peer = await participant(project, None, peer=SyntheticMember(None, 500.0, video=False))
    try:
        room = worker.rooms[host.room_session_id]
        assert late_peer.frames == 0

        # The camera offers VP8 only: the member's video joins the VP8 group with the renegotiation.
        late_peer.pc.addTransceiver(SolidColourTrack(BLUE), direction="sendrecv").setCodecPreferences(VP8_ONLY)
        response = await late.call("webrtc.offer", {"sdp": await late_peer.offer()}, timeout=MEDIA_TIMEOUT_S)
        assert "result" in response, response
        await late_peer.accept(response["result"]["sdp"])
        assert video_codec_names(response["result"]["sdp"]) == {"VP8", "rtx"}
        assert room.members[late.member_id].video_out.codec == "vp8"

        rects = await layout_with(host, {host.member_id, late.member_id})
        await wait_until(lambda: shows(host_peer, rects[late.member_id], BLUE), what="the added camera")
        await wait_until(
            lambda: shows(late_peer, rects[host.member_id], RED) and shows(late_peer, rects[late.member_id], BLUE),
            what="the room over VP8 at the member who added a camera",
        )
        assert room.video_groups["vp8"].encoder.frames > 0
    finally:
        await hang_up((host, host_peer), (late, late_peer))
