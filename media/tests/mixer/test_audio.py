"""Mix-minus on sine inputs, checked by spectrum: own voice out, volumes in dB, mute, deaf and clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.mixer.audio import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME, db_to_gain, mix_minus

# 960 samples at 48 kHz: FFT bins are 50 Hz apart, so these tones fall exactly on bins.
TONES_HZ = {"alice": 400.0, "bob": 1000.0, "carol": 2500.0, "dave": 5000.0}
AMPLITUDE = 4000


def sine(freq_hz: float, amplitude: float = AMPLITUDE) -> np.ndarray:
    t = np.arange(SAMPLES_PER_FRAME) / SAMPLE_RATE_HZ
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def tone_amplitude(pcm: np.ndarray, freq_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64))) * 2 / len(pcm)
    return float(spectrum[int(round(freq_hz * len(pcm) / SAMPLE_RATE_HZ))])


def mix(inputs, **kwargs):
    options = {"input_gain_db": {}, "output_gain_db": {}, "muted": set(), "deaf": set(), "listeners": list(inputs)}
    options.update(kwargs)
    return mix_minus(inputs, **options)


def tones(*names):
    return {name: sine(TONES_HZ[name]) for name in names}


def test_each_listener_hears_everyone_but_themselves():
    inputs = tones("alice", "bob", "carol")

    mixes, full = mix(inputs)

    for listener in inputs:
        for speaker, freq in TONES_HZ.items():
            if speaker not in inputs:
                continue
            heard = tone_amplitude(mixes[listener], freq)
            if speaker == listener:
                assert heard < 1, (listener, speaker, heard)
            else:
                assert heard == pytest.approx(AMPLITUDE, rel=0.01), (listener, speaker, heard)
    for freq in (400.0, 1000.0, 2500.0):
        assert tone_amplitude(full, freq) == pytest.approx(AMPLITUDE, rel=0.01)


def test_outputs_are_int16_frames_of_960_samples():
    mixes, full = mix(tones("alice", "bob"))

    for pcm in (*mixes.values(), full):
        assert pcm.dtype == np.int16 and pcm.shape == (960,)


@pytest.mark.parametrize("db", [-20.0, -6.0, 0.0, 6.0, 12.0])
def test_input_volume_in_db_scales_that_source_for_everyone(db):
    inputs = tones("alice", "bob", "carol")

    mixes, full = mix(inputs, input_gain_db={"alice": db})

    expected = AMPLITUDE * 10 ** (db / 20)
    assert tone_amplitude(mixes["bob"], 400) == pytest.approx(expected, rel=0.01)
    assert tone_amplitude(full, 400) == pytest.approx(expected, rel=0.01)
    assert tone_amplitude(mixes["bob"], 2500) == pytest.approx(AMPLITUDE, rel=0.01)
    assert tone_amplitude(mixes["alice"], 400) < 1


@pytest.mark.parametrize("db", [-12.0, -3.0, 6.0])
def test_output_volume_in_db_scales_what_that_listener_hears(db):
    inputs = tones("alice", "bob", "carol")

    mixes, full = mix(inputs, output_gain_db={"carol": db}, listeners=["alice", "bob", "carol", "eve"])
    mixes_eve, _ = mix(inputs, output_gain_db={"eve": db}, listeners=["eve"])

    expected = AMPLITUDE * 10 ** (db / 20)
    assert tone_amplitude(mixes["carol"], 400) == pytest.approx(expected, rel=0.01)
    assert tone_amplitude(mixes["carol"], 1000) == pytest.approx(expected, rel=0.01)
    assert tone_amplitude(mixes["alice"], 1000) == pytest.approx(AMPLITUDE, rel=0.01)
    assert tone_amplitude(mixes_eve["eve"], 2500) == pytest.approx(expected, rel=0.01)


def test_a_muted_source_is_left_out_of_every_mix_but_still_hears_the_others():
    inputs = tones("alice", "bob", "carol")

    mixes, full = mix(inputs, muted={"bob"})

    assert tone_amplitude(full, 1000) < 1
    assert tone_amplitude(mixes["alice"], 1000) < 1
    assert tone_amplitude(mixes["bob"], 400) == pytest.approx(AMPLITUDE, rel=0.01)
    assert tone_amplitude(mixes["bob"], 2500) == pytest.approx(AMPLITUDE, rel=0.01)


def test_a_deaf_listener_hears_silence_while_others_still_hear_them():
    inputs = tones("alice", "bob")

    mixes, full = mix(inputs, deaf={"alice"})

    assert not mixes["alice"].any()
    assert tone_amplitude(mixes["bob"], 400) == pytest.approx(AMPLITUDE, rel=0.01)
    assert tone_amplitude(full, 400) == pytest.approx(AMPLITUDE, rel=0.01)


def test_listeners_who_send_nothing_share_the_full_mix():
    inputs = tones("alice", "bob")

    mixes, full = mix(inputs, listeners=["alice", "bob", "viewer1", "viewer2"])

    assert mixes["viewer1"] is full and mixes["viewer2"] is full
    assert tone_amplitude(full, 400) == pytest.approx(AMPLITUDE, rel=0.01)
    assert tone_amplitude(full, 1000) == pytest.approx(AMPLITUDE, rel=0.01)


def test_the_sum_is_clipped_not_wrapped():
    loud = np.full(SAMPLES_PER_FRAME, 30000, np.int16)
    inputs = {"a": loud, "b": loud, "c": -loud}

    mixes, full = mix(inputs)

    assert (mixes["c"] == 32767).all()
    assert (full == 30000).all()
    assert (mixes["a"] == 0).all()


def test_a_large_input_gain_clips_that_source_at_full_scale():
    inputs = {"a": np.full(SAMPLES_PER_FRAME, 20000, np.int16), "b": np.full(SAMPLES_PER_FRAME, -30000, np.int16)}

    mixes, full = mix(inputs, input_gain_db={"a": 20.0, "b": 20.0})

    assert (mixes["b"] == 32767).all()
    assert (mixes["a"] == -32768).all()
    assert (full == -1).all()


def test_nobody_sending_gives_silence_everywhere():
    mixes, full = mix({}, listeners=["a", "b"])

    assert not full.any() and not mixes["a"].any() and not mixes["b"].any()
    assert full.shape == (SAMPLES_PER_FRAME,)


def test_a_frame_of_the_wrong_length_is_rejected():
    with pytest.raises(ValueError):
        mix({"a": np.zeros(480, np.int16)})


@pytest.mark.parametrize(("db", "gain"), [(0, 1.0), (20, 10.0), (-20, 0.1), (6.0206, 2.0), (-40, 0.01)])
def test_db_to_gain_is_an_amplitude_ratio(db, gain):
    assert db_to_gain(db) == pytest.approx(gain, rel=1e-4)


def reference_mix(inputs, input_gain_db, output_gain_db, muted, deaf, listeners):
    """The definition, one listener at a time in float."""

    def scaled(member_id):
        return np.clip(
            np.rint(inputs[member_id].astype(np.float64) * db_to_gain(input_gain_db.get(member_id, 0))), -32768, 32767
        )

    out = {}
    for listener in listeners:
        if listener in deaf:
            out[listener] = np.zeros(SAMPLES_PER_FRAME)
            continue
        total = sum((scaled(m) for m in inputs if m not in muted and m != listener), np.zeros(SAMPLES_PER_FRAME))
        gain = db_to_gain(output_gain_db.get(listener, 0))
        out[listener] = np.clip(np.rint(total * gain) if gain != 1 else total, -32768, 32767)
    return out


ids = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=60, deadline=None)
@given(
    senders=st.lists(ids, unique=True, max_size=5),
    listeners=st.lists(ids, unique=True, max_size=5),
    muted=st.sets(ids),
    deaf=st.sets(ids),
    in_db=st.dictionaries(ids, st.sampled_from([-50.0, -6.0, 0.0, 3.0, 20.0])),
    out_db=st.dictionaries(ids, st.sampled_from([-50.0, -6.0, 0.0, 3.0, 20.0])),
    seed=st.integers(0, 1000),
)
def test_the_vectorised_mix_equals_the_per_listener_definition(senders, listeners, muted, deaf, in_db, out_db, seed):
    rng = np.random.default_rng(seed)
    inputs = {m: rng.integers(-20000, 20000, SAMPLES_PER_FRAME).astype(np.int16) for m in senders}

    mixes, _ = mix_minus(
        inputs, input_gain_db=in_db, output_gain_db=out_db, muted=muted, deaf=deaf, listeners=listeners
    )
    expected = reference_mix(inputs, in_db, out_db, muted, deaf, listeners)

    assert set(mixes) == set(listeners)
    for listener in listeners:
        assert np.abs(mixes[listener].astype(int) - expected[listener]).max(initial=0) <= 1, listener
