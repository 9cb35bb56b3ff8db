"""Mixes several members hear are Opus-encoded once per tick (``media.worker.tracks.encode_mixes``): the full mix of
listeners who are not sources and the silence of deaf members go through the room's ``SharedOpusEncoder``s, and
each listener's track takes the same payloads with its own continuous pts. Real ``audio.mix_minus`` output,
encoded with PyAV libopus and decoded back with libopus."""

from __future__ import annotations

import av
import numpy as np

from media.mixer.audio import mix_minus
from media.tests.worker.synthetic import tone_magnitude
from media.worker.tracks import AUDIO_SAMPLES, MixedAudioTrack, SharedOpusEncoder, encode_mixes

TICKS = 50  # one second
TONES = {"a": 440.0, "b": 660.0}


def tone(frequency_hz: float, tick: int) -> np.ndarray:
    t = (np.arange(AUDIO_SAMPLES) + tick * AUDIO_SAMPLES) / 48000
    return (6000 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)


def decode(packets: list[av.Packet]) -> np.ndarray:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout = 48000, "mono"
    pcm = [frame.to_ndarray().reshape(-1) for packet in packets for frame in decoder.decode(packet)]
    return np.concatenate(pcm).astype(np.float64) if pcm else np.zeros(0)


def run(listeners: dict[str, MixedAudioTrack], *, deaf: set[str], ticks: int = TICKS, shared=None, muted=()):
    shared = shared or {"full": SharedOpusEncoder(), "silence": SharedOpusEncoder()}
    packets: dict[str, list[av.Packet]] = {name: [] for name in listeners}
    for tick in range(ticks):
        inputs = {name: tone(hz, tick) for name, hz in TONES.items()}
        mixes, full = mix_minus(
            inputs,
            input_gain_db={},
            output_gain_db={},
            muted=set(muted) | deaf,
            deaf=deaf,
            listeners=list(listeners),
        )
        encoded = encode_mixes([(listeners[name], pcm) for name, pcm in mixes.items()], full, shared)
        for track, out in encoded:
            name = next(n for n, t in listeners.items() if t is track)
            packets[name].extend(out)
    return packets, shared


def test_listeners_who_hear_the_same_mix_share_one_encode_and_each_keep_their_own_clock():
    names = ["a", "b", "l1", "l2", "l3", "d1", "d2"]  # two sources, three listeners, two deaf members
    tracks = {name: MixedAudioTrack() for name in names}
    packets, shared = run(tracks, deaf={"d1", "d2"})

    assert shared["full"].frames == TICKS  # one encode per tick for l1, l2 and l3
    assert shared["silence"].frames == TICKS  # and one for d1 and d2
    for name in names:
        pts = [p.pts for p in packets[name]]
        assert pts == sorted(pts) and len(set(pts)) == len(pts), name
        assert all(b - a == AUDIO_SAMPLES for a, b in zip(pts, pts[1:], strict=False)), name
        assert len(packets[name]) >= TICKS - 1, name  # libopus may keep its first frame back
    assert [bytes(p) for p in packets["l1"]] == [bytes(p) for p in packets["l2"]] == [bytes(p) for p in packets["l3"]]

    heard = {name: decode(packets[name])[AUDIO_SAMPLES * 10 :] for name in names}  # past the decoder's start
    both = [tone_magnitude(heard["l1"], hz) for hz in TONES.values()]
    assert min(both) > 200, both
    # Sources still get their own mix-minus: the other's tone, not their own.
    assert tone_magnitude(heard["a"], TONES["b"]) > 200 > 10 * tone_magnitude(heard["a"], TONES["a"])
    assert tone_magnitude(heard["b"], TONES["a"]) > 200 > 10 * tone_magnitude(heard["b"], TONES["b"])
    assert np.abs(heard["d1"]).max() < 50 and np.abs(heard["d2"]).max() < 50


def test_a_lone_listener_and_differing_mixes_use_their_own_encoders():
    tracks = {name: MixedAudioTrack() for name in ("a", "b", "l1")}
    packets, shared = run(tracks, deaf=set(), ticks=10)
    assert shared["full"].frames == 0 and shared["silence"].frames == 0
    assert all(len(p) >= 9 for p in packets.values())


def test_a_listener_moving_between_its_own_mix_and_the_shared_one_keeps_a_continuous_decodable_stream():
    tracks = {name: MixedAudioTrack() for name in ("a", "b", "l1", "l2")}
    shared = {"full": SharedOpusEncoder(), "silence": SharedOpusEncoder()}
    first, _ = run(tracks, deaf=set(), ticks=20, shared=shared)
    # "a" is muted: it now hears the full mix, shared with l1 and l2.
    second, _ = run(tracks, deaf=set(), ticks=20, shared=shared, muted={"a"})
    stream = first["a"] + second["a"]
    pts = [p.pts for p in stream]
    assert all(b - a == AUDIO_SAMPLES for a, b in zip(pts, pts[1:], strict=False))
    assert bytes(second["a"][-1]) == bytes(second["l1"][-1])
    heard = decode(stream)
    assert tone_magnitude(heard[-AUDIO_SAMPLES * 10 :], TONES["b"]) > 200
