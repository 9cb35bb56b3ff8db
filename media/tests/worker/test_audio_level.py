"""The room's audio carries the ``ssrc-audio-level`` RTP header extension (RFC 6464): the level of each member's
mix-minus, measured by the room before it encodes the mix (``MixedAudioTrack.level_dbov``).

Two real aiortc members on 127.0.0.1: one sends a loud tone, the other sends no audio. The quiet member's packets
carry a loud level (the tone), the tone's own packets carry silence (its mix-minus leaves its own voice out).
The extension values are read where the member's aiortc receiver parses the packets."""

from __future__ import annotations

import numpy as np
import pytest

from media import protocol
from media.tests.worker.conftest import join
from media.tests.worker.synthetic import SyntheticMember
from media.worker.tracks import audio_level_dbov

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]

LEVELS_WANTED = 50
MEDIA_TIMEOUT_S = 30.0


def test_audio_level_is_the_rms_in_dbov():
    assert audio_level_dbov(np.zeros(960, np.int16)) == -127
    assert audio_level_dbov(np.full(960, 32767, np.int16)) == 0
    assert audio_level_dbov(np.full(960, 3277, np.int16)) == -20  # a tenth of full scale
    assert audio_level_dbov(np.full(960, 1, np.int16)) == -90


def record_audio_levels(client: SyntheticMember) -> list[int]:
    """The RFC 6464 level (0 loudest .. 127 silence) of every audio RTP packet ``client`` receives from now on."""
    levels: list[int] = []
    for transceiver in client.pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        receiver = transceiver.receiver
        handle = receiver._handle_rtp_packet

        async def recording(packet, arrival_time_ms, handle=handle):
            if packet.extensions.audio_level is not None:
                levels.append(packet.extensions.audio_level[1])
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = recording
    return levels


async def test_members_receive_the_level_of_their_own_mix_in_each_audio_packet(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    speaker, listener = await make_member(session, name="speaker"), await make_member(session, name="listener")
    speaker_client = SyntheticMember((200, 30, 30), 700.0)
    listener_client = SyntheticMember((30, 30, 200), None)
    try:
        for member, client in ((speaker, speaker_client), (listener, listener_client)):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
            assert "ssrc-audio-level" in reply["sdp"]
        heard, own = record_audio_levels(listener_client), record_audio_levels(speaker_client)
        for client in (speaker_client, listener_client):
            await client.wait_connected(timeout_s=MEDIA_TIMEOUT_S)
        await listener_client.wait_for(
            lambda: sum(level < 40 for level in heard) >= LEVELS_WANTED,
            timeout_s=MEDIA_TIMEOUT_S,
            what="loud levels at the listener (the speaker's tone)",
        )
        await speaker_client.wait_for(
            lambda: len(own) >= LEVELS_WANTED, timeout_s=MEDIA_TIMEOUT_S, what="levels at the speaker"
        )
        # The speaker's mix-minus holds no one else's audio: silence, in every packet.
        assert set(own) == {127}, sorted(set(own))
    finally:
        await speaker_client.close()
        await listener_client.close()
