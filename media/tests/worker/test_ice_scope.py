"""ICE host addresses are scoped: the media worker's peers gather on ``PARLEY_ICE_HOST_ADDRESSES`` (127.0.0.1 in
tests) while a peer created in the same process outside the worker's scope — what the web process's own code
would create in the embedded mode — keeps aioice's own host addresses. No media is sent: gathering only binds
UDP sockets, and every peer has ``iceServers=[]``."""

from __future__ import annotations

import asyncio
import contextvars

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from media import protocol
from media.tests.worker.conftest import join
from media.tests.worker.synthetic import SyntheticMember
from media.worker import ice

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]


def host_candidate_addresses(sdp: str) -> set[str]:
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:") and " typ host" in line}


async def gathered_host_addresses() -> tuple[set[str], bool]:
    """Host candidate addresses of a fresh offering peer, and whether it was created inside the scope."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        return host_candidate_addresses(pc.localDescription.sdp), ice.in_host_addresses_scope()
    finally:
        await pc.close()


def outside_any_scope(coro):
    """Run ``coro`` as a task of an empty context: nothing of a Parley ICE scope is inherited."""
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


async def test_the_worker_gathers_loopback_and_a_peer_outside_its_scope_keeps_aioices_addresses(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    member = await make_member(session, name="viewer")
    client = SyntheticMember((40, 60, 230), None)
    try:
        reply, _ = await join(channel_layer, session, member, client)
        assert reply["type"] == protocol.ANSWER, reply
        assert host_candidate_addresses(reply["sdp"]) == {"127.0.0.1"}
        await client.wait_connected()

        outside, scoped = await outside_any_scope(gathered_host_addresses())
        assert scoped is False
        assert aioice.ice.get_host_addresses is ice._scoped_host_addresses  # installed, yet not applied here
        assert "127.0.0.1" not in outside
        assert outside == set(ice.aioice_host_addresses())
        if not outside:
            print("this machine has no non-loopback interface: the outside peer gathered no host candidate")

        inside, scoped = await gathered_host_addresses()  # this test's context entered the scope (conftest)
        assert scoped is True and inside == {"127.0.0.1"}
    finally:
        await client.close()


async def test_the_scope_is_per_context_and_installing_is_idempotent(settings):
    settings.PARLEY_ICE_HOST_ADDRESSES = ["127.0.0.1"]
    ice.install()
    installed = aioice.ice.get_host_addresses
    ice.install()
    ice.restrict_host_addresses()
    assert aioice.ice.get_host_addresses is installed is ice._scoped_host_addresses
    assert ice._aioice_lookup is not installed and "127.0.0.1" not in ice.aioice_host_addresses()

    async def in_block() -> tuple[bool, bool, list[str]]:
        before = ice.in_host_addresses_scope()
        with ice.host_addresses_scope():
            during = aioice.ice.get_host_addresses(True, True)
            inside = ice.in_host_addresses_scope()
        return before, inside and not ice.in_host_addresses_scope(), during

    before, only_inside, during = await outside_any_scope(in_block())
    assert (before, only_inside, during) == (False, True, ["127.0.0.1"])

    async def scoped(enter: bool) -> bool:
        if enter:
            ice.restrict_host_addresses()
        return ice.in_host_addresses_scope()

    assert await outside_any_scope(scoped(enter=True)) is True
    # Entering the scope in one task leaves a sibling task (another empty context) outside it.
    assert await outside_any_scope(scoped(enter=False)) is False
