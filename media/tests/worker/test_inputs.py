"""Received inputs are decoded without the event loop (``media.worker.inputs``): video by the input's own decoder
thread straight into the member, audio by the room's audio thread, while aiortc's decoder thread only ever sees
the receiver's stop."""

from __future__ import annotations

import fractions
import queue
import threading

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import protocol
from media.tests.worker.conftest import join
from media.tests.worker.synthetic import SyntheticMember, tone_magnitude
from media.worker.inputs import AudioSink, MonoPcm, VideoSink, decode_directly, input_sink
from media.worker.room import MemberMedia

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
H264_CODEC = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
RED, GREEN = (220, 30, 30), (30, 200, 40)


def opus_packets(frequency_hz: float, frames: int) -> list[bytes]:
    """``frames`` 20 ms stereo Opus packets of a sine tone, as a browser sends them."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    packets = []
    for index in range(frames):
        t = (np.arange(960) + index * 960) / 48000
        tone = (8000 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, index * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def test_the_audio_sink_decodes_opus_to_mono_chunks_on_demand_and_skips_a_damaged_frame():
    original = queue.Queue()
    decode_error = threading.Event()
    sink = AudioSink(original, decode_error)
    packets = opus_packets(440.0, 25)

    sink.put((OPUS, JitterFrame(packets[0], 0)))
    assert not sink.has_pending  # unbound: dropped, never decoded
    sink.bind(MemberMedia(member_id="m"))
    for index, data in enumerate(packets[1:]):
        sink.put((OPUS, JitterFrame(data, index * 960)))
    sink.put((OPUS, JitterFrame(b"\xff" * 3, 0)))  # not an Opus packet

    chunks = sink.decode_pending()
    assert not sink.has_pending
    assert len(chunks) >= 20 and all(c.dtype == np.int16 and c.shape == (960,) for c in chunks)
    assert sink.decode_errors == 1 and sink.frames_decoded == len(packets) - 1
    pcm = np.concatenate(chunks[5:]).astype(np.float64)
    assert tone_magnitude(pcm, 440.0) > 20 * tone_magnitude(pcm, 700.0)
    assert sink.decode_pending() == []

    sink.put(None)  # the receiver stops: the sink closes and aiortc's thread gets the stop marker
    assert sink.closed and original.get_nowait() is None
    sink.put((OPUS, JitterFrame(packets[0], 0)))
    assert not sink.has_pending


def test_a_video_decode_error_makes_the_receiver_ask_for_a_keyframe_and_stores_nothing():
    original, decode_error = queue.Queue(), threading.Event()
    sink = VideoSink(original, decode_error)
    member = MemberMedia(member_id="m")
    sink.bind(member)
    sink.put((H264_CODEC, JitterFrame(b"\x00\x00\x00\x01\x65" + b"\x00" * 64, 0)))  # an IDR slice without SPS/PPS
    assert decode_error.wait(10), "a decode error sets the receiver's PLI flag"
    assert member.latest_video is None and member.frames_in == 0
    sink.put(None)
    sink._thread.join(10)
    assert not sink._thread.is_alive() and original.get_nowait() is None


def test_mono_pcm_is_what_the_audio_sink_uses_for_mono_input():
    frame = av.AudioFrame.from_ndarray(np.arange(960, dtype=np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48000
    (chunk,) = MonoPcm().chunks(frame)
    assert np.array_equal(chunk, np.arange(960, dtype=np.int16))


async def test_decode_directly_replaces_the_decoder_queue_of_both_receivers_before_they_start():
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="recvonly").receiver
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        video_sink, audio_sink = decode_directly(video), decode_directly(audio)
        assert isinstance(video_sink, VideoSink) and isinstance(audio_sink, AudioSink)
        assert decode_directly(video) is video_sink  # installing twice keeps the first
        assert video.track is None and input_sink(None) is None  # tracks come with the remote description
    finally:
        await pc.close()


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_a_members_media_is_decoded_by_parley_and_aiortcs_decoder_threads_end_with_the_member(
    channel_layer, worker, make_session, make_member
):
    session = await make_session()
    members = [await make_member(session, name=f"m{i}") for i in range(2)]
    clients = [SyntheticMember(RED, 400.0), SyntheticMember(GREEN, 700.0)]
    try:
        for member, client in zip(members, clients, strict=True):
            reply, _ = await join(channel_layer, session, member, client)
            assert reply["type"] == protocol.ANSWER, reply
        for client in clients:
            await client.wait_connected()
        room = worker.rooms[str(session.id)]
        mixed = room.members[str(members[1].id)]
        await clients[0].wait_for(
            lambda: mixed.frames_in > 10 and mixed.audio_frames_in > 25, timeout_s=30, what="media decoded"
        )
        assert mixed.video_sink is not None and mixed.audio_sink is not None
        assert mixed.video_sink.frames_decoded >= mixed.frames_in > 10
        assert mixed.audio_sink.frames_decoded > 25
        assert mixed.video_sink.member is mixed and mixed.audio_sink.member is mixed
        assert not mixed.input_tasks  # nothing drained on the event loop
        await clients[0].wait_for(
            lambda: (
                tone_magnitude(clients[0].recent_audio(0.5), 700.0)
                > 5 * tone_magnitude(clients[0].recent_audio(0.5), 400.0)
            ),
            timeout_s=30,
            what="the other member's tone in the mix",
        )
        sinks = (mixed.video_sink, mixed.audio_sink)
        await clients[1].close()
        await clients[0].wait_for(
            lambda: all(sink.closed for sink in sinks), timeout_s=30, what="the member's receivers stopped"
        )
        assert all(sink.member is None for sink in sinks)
    finally:
        for client in clients:
            await client.close()
