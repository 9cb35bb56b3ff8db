"""Talk detection (gate, hangunder, hangover, sensitivity) and the floor's hysteresis, on synthetic 20 ms frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media.mixer.audio import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from media.mixer.talk import FloorTracker, MixSources, TalkConfig, TalkDetector, sensitivity_to_energy_level

SILENCE = np.zeros(SAMPLES_PER_FRAME, np.int16)


def tone(mean_abs: float, freq_hz: float = 500.0) -> np.ndarray:
    """A sine frame whose mean |sample| is ``mean_abs`` (mean |sin| = 2/π)."""
    t = np.arange(SAMPLES_PER_FRAME) / SAMPLE_RATE_HZ
    return np.rint(mean_abs * np.pi / 2 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def feed(detector: TalkDetector, frame: np.ndarray, count: int) -> list[bool | None]:
    return [detector.update(frame) for _ in range(count)]


def test_the_default_sensitivity_gives_freeswitchs_video_energy_level():
    assert TalkConfig().input_sensitivity == 30
    assert TalkConfig().energy_level == pytest.approx(200.0)


def test_sensitivity_maps_to_a_gate_that_falls_as_sensitivity_rises():
    levels = [sensitivity_to_energy_level(s) for s in range(0, 101, 5)]

    assert levels == sorted(levels, reverse=True)
    assert sensitivity_to_energy_level(0) >= 32768
    assert sensitivity_to_energy_level(100) < 0.01
    assert sensitivity_to_energy_level(-5) == sensitivity_to_energy_level(0)
    assert sensitivity_to_energy_level(150) == sensitivity_to_energy_level(100)


def test_a_loud_tone_starts_talking_on_its_first_frame():
    detector = TalkDetector()

    events = feed(detector, tone(2000), 3)

    assert events == [True, None, None]
    assert detector.talking


def test_a_tone_just_above_the_gate_starts_talking_after_the_hangunder():
    detector = TalkDetector()

    events = feed(detector, tone(300), 6)

    assert events == [None, None, None, None, True, None]


def test_a_closed_gate_frame_restarts_the_hangunder_count():
    detector = TalkDetector()

    events = feed(detector, tone(300), 4) + feed(detector, SILENCE, 1) + feed(detector, tone(300), 5)

    assert events.index(True) == 9


def test_a_tone_below_the_gate_never_starts_talking():
    detector = TalkDetector()

    assert set(feed(detector, tone(150), 100)) == {None}
    assert not detector.talking


def test_silence_stops_talking_after_the_800_ms_hangover():
    detector = TalkDetector()
    feed(detector, tone(2000), 10)

    events = feed(detector, SILENCE, 45)

    assert events.index(False) == 39
    assert events.count(False) == 1
    assert not detector.talking


def test_a_pause_shorter_than_the_hangover_keeps_talking():
    detector = TalkDetector()
    feed(detector, tone(2000), 10)

    events = feed(detector, SILENCE, 39) + feed(detector, tone(2000), 1) + feed(detector, SILENCE, 39)

    assert False not in events and True not in events
    assert detector.talking


def test_sensitivity_zero_never_talks_even_at_full_scale():
    detector = TalkDetector(TalkConfig(input_sensitivity=0))
    full_scale = np.where(np.arange(SAMPLES_PER_FRAME) % 2, 32767, -32768).astype(np.int16)

    assert set(feed(detector, full_scale, 50)) == {None}


def test_higher_sensitivity_hears_a_quiet_talker():
    quiet = tone(60)
    default = TalkDetector()
    sensitive = TalkDetector(TalkConfig(input_sensitivity=60))

    assert True not in feed(default, quiet, 20)
    assert True in feed(sensitive, quiet, 20)


def test_input_gain_is_applied_before_the_gate():
    quiet = tone(100)
    boosted = TalkDetector(TalkConfig(input_gain_db=20.0))

    assert True not in feed(TalkDetector(), quiet, 20)
    assert feed(boosted, quiet, 1) == [True]
    assert boosted.score == pytest.approx(1000, rel=0.01)


def test_the_iir_score_follows_freeswitchs_smoothing():
    detector = TalkDetector()

    detector.update(tone(1000))
    first = detector.score_iir
    detector.update(tone(1000))

    assert first == pytest.approx(200, rel=0.01)
    assert detector.score_iir == pytest.approx(0.2 * 1000 + 0.8 * first, rel=0.01)


def run_room(script: list[tuple[int, dict[str, float]]]) -> list[str | None]:
    """Feed tones (name → mean |sample|) for frame counts through detectors and a floor tracker."""
    detectors: dict[str, TalkDetector] = {}
    tracker = FloorTracker()
    holders = []
    for frames, levels in script:
        for _ in range(frames):
            for member_id, level in levels.items():
                detectors.setdefault(member_id, TalkDetector()).update(tone(level) if level else SILENCE)
            holders.append(tracker.update({m: d.score_iir for m, d in detectors.items() if m in levels}))
    return holders


def test_the_first_talker_takes_an_empty_floor():
    holders = run_room([(5, {"alice": 0, "bob": 1500})])

    assert holders[-1] == "bob"


def test_a_louder_talker_takes_the_floor_only_after_the_holder_goes_quiet():
    holders = run_room(
        [
            (30, {"alice": 1000, "bob": 0}),
            (100, {"alice": 1000, "bob": 3000}),
            (200, {"alice": 0, "bob": 3000}),
        ]
    )

    assert set(holders[:130]) == {"alice"}
    assert holders[-1] == "bob"
    switch = holders.index("bob")
    # The holder's IIR must fall below 100 (≈11 frames from 1000) and the new holder keep the floor 1 s (50 frames).
    assert 130 + 50 < switch < 130 + 80


def test_the_video_floor_waits_for_the_minimum_hold_time():
    tracker = FloorTracker(TalkConfig(video_floor_hold_frames=10))
    tracker.update({"alice": 500.0, "bob": 0.0})

    holders = [tracker.update({"alice": 50.0, "bob": 800.0}) for _ in range(12)]

    assert tracker.audio_floor == "bob"
    assert holders[:10] == ["alice"] * 10
    assert holders[10:] == ["bob", "bob"]


def test_a_holder_who_leaves_gives_the_floor_to_the_loudest_remaining():
    tracker = FloorTracker()
    tracker.update({"alice": 500.0, "bob": 200.0, "carol": 300.0})

    assert tracker.update({"bob": 200.0, "carol": 300.0}) == "carol"


def test_a_locked_video_floor_stays_until_released():
    tracker = FloorTracker(TalkConfig(video_floor_hold_frames=1))
    tracker.set_video_floor("bob", lock=True)

    holders = [tracker.update({"alice": 900.0, "bob": 0.0}) for _ in range(20)]
    tracker.set_video_floor(None)
    after = [tracker.update({"alice": 900.0, "bob": 0.0}) for _ in range(3)]

    assert set(holders) == {"bob"}
    assert after[-1] == "alice"


def test_an_empty_room_has_no_floor():
    tracker = FloorTracker()

    assert tracker.update({}) is None


# -- the mix's sources (MixSources) ----------------------------------------------------------------------------


def test_every_candidate_is_mixed_up_to_the_limit_and_without_one():
    assert MixSources(3).update({"a": 10.0, "b": 500.0, "c": 20.0}) == {"a", "b", "c"}
    assert MixSources(0).update({f"m{i}": float(i) for i in range(30)}) == {f"m{i}" for i in range(30)}
    assert MixSources(2).update({}) == set()


def test_beyond_the_limit_the_loudest_are_mixed():
    sources = MixSources(2)
    assert sources.update({"a": 100.0, "b": 900.0, "c": 400.0, "d": 50.0}) == {"b", "c"}


def test_a_mixed_member_keeps_its_place_against_a_slightly_louder_newcomer():
    sources = MixSources(2)
    sources.update({"a": 300.0, "b": 400.0})
    assert sources.update({"a": 300.0, "b": 400.0, "c": 590.0}) == {"a", "b"}  # 590 < 2 × 300
    assert sources.update({"a": 300.0, "b": 400.0, "c": 610.0}) == {"c", "b"}  # twice as loud as the quietest: in


def test_one_place_changes_per_frame():
    sources = MixSources(2)
    sources.update({"a": 100.0, "b": 100.0})
    assert sources.update({"a": 100.0, "b": 100.0, "c": 1000.0, "d": 1000.0}) == {"b", "c"}  # "a" sorts first
    assert sources.update({"a": 100.0, "b": 100.0, "c": 1000.0, "d": 1000.0}) == {"c", "d"}


def test_a_member_who_stops_talking_frees_its_place_for_the_loudest_waiting():
    sources = MixSources(2)
    sources.update({"a": 300.0, "b": 400.0})
    sources.update({"a": 300.0, "b": 400.0, "c": 350.0, "d": 200.0})
    assert sources.update({"b": 400.0, "c": 350.0, "d": 200.0}) == {"b", "c"}  # "a" went below its gate


def test_a_lowered_limit_drops_the_quietest():
    sources = MixSources(3)
    sources.update({"a": 300.0, "b": 400.0, "c": 100.0})
    sources.max_sources = 2
    assert sources.update({"a": 300.0, "b": 400.0, "c": 100.0}) == {"a", "b"}


def test_a_negative_limit_is_refused():
    with pytest.raises(ValueError):
        MixSources(-1)


@pytest.mark.parametrize(("value", "accepted"), [("2", True), ("0", True), ("-1", False)])
def test_the_mix_source_limit_setting_is_read_from_the_environment_and_checked(value, accepted):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "parley.settings", "PARLEY_MIX_MAX_SOURCES": value}
    code = "import django; django.setup(); from django.conf import settings; print(settings.PARLEY_MIX_MAX_SOURCES)"
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if accepted:
        assert out.returncode == 0 and out.stdout.split()[-1] == value, out.stderr[-2000:]
    else:
        assert out.returncode != 0
        assert "PARLEY_MIX_MAX_SOURCES must be 0 (no limit) or a positive number" in out.stderr
