"""Talk detection and the floor (loudest talker), after FreeSWITCH ``mod_conference``.

Per 20 ms frame (``reference/signalwire-freeswitch.md`` §3.1–3.3):
- ``score`` = mean ``|sample|`` of the int16 frame after the member's input gain; ``score_iir`` =
  ``0.2 × score + 0.8 × score_iir`` (capped at 25 000).
- The gate is open when ``score > energy_level``. Talking starts when the gate is open and either the score
  jumps ``≥ 400`` above the gate (``diff_level``) or the gate stayed open 5 frames in a row (``hangunder``);
  it stops after 40 closed frames in a row (``hangover``, 800 ms).
- The floor moves to a member whose ``score_iir > 300`` only while the holder's ``score_iir < 100``; the video
  floor (the ``floor`` slot of highlight layouts) follows after the new holder kept the floor for
  ``video-auto-floor-msec`` (1 s = 50 frames).

When more members talk at once than a mix takes (``PARLEY_MIX_MAX_SOURCES``, 4 by default), :class:`MixSources`
picks the loudest by IIR score, keeping those already mixed while they talk (no voice is cut mid-word) unless a
newcomer is twice as loud (+6 dB) as the quietest of them — the "N loudest speakers" of conferencing servers
(Jitsi Videobridge's ``loudest`` routing, 3 by default). Beyond intelligibility, it bounds a room's Opus work:
every source needs its own mix-minus encode, everyone else shares one.

``input_sensitivity`` (SignalWire, 0–100, default 30) sets the gate on a log scale:
``energy_level = 32768 × 10^(−sensitivity × 1.4763 / 20)``, i.e. each step lowers the gate ≈1.48 dB.
0 → 32768 (above any mean level: never talks), 30 → 200 (FreeSWITCH's video profiles' ``energy-level``),
50 → ≈64, 100 → ≈0.001 (any non-silent frame opens the gate).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

FULL_SCALE = 32768.0
DEFAULT_SENSITIVITY = 30.0
DEFAULT_SENSITIVITY_GATE = 200.0
TAKEOVER_RATIO = 2.0  # a newcomer replaces the quietest mixed source when its IIR score is twice as high (+6 dB)
# dB per sensitivity step, chosen so that the default sensitivity gives FreeSWITCH's energy level of 200.
DB_PER_SENSITIVITY_STEP = 20.0 * math.log10(FULL_SCALE / DEFAULT_SENSITIVITY_GATE) / DEFAULT_SENSITIVITY


def sensitivity_to_energy_level(sensitivity: float) -> float:
    """The energy gate (mean ``|sample|``, int16 scale) for an ``input_sensitivity`` of 0–100 (clamped)."""
    s = min(100.0, max(0.0, float(sensitivity)))
    return FULL_SCALE * 10.0 ** (-s * DB_PER_SENSITIVITY_STEP / 20.0)


@dataclass
class TalkConfig:
    """Talk detection and floor parameters; defaults from FreeSWITCH (``conference_loop.c``, vanilla profiles)."""

    input_sensitivity: float = DEFAULT_SENSITIVITY
    input_gain_db: float = 0.0
    diff_level: float = 400.0
    hangunder_frames: int = 5
    hangover_frames: int = 40
    score_decay: float = 0.8
    score_max_iir: float = 25_000.0
    floor_speaking_max: float = 300.0
    floor_speaking_min: float = 100.0
    video_floor_hold_frames: int = 50

    @property
    def energy_level(self) -> float:
        return sensitivity_to_energy_level(self.input_sensitivity)


class TalkDetector:
    """Start/stop talking for one member's audio, one :meth:`update` per 20 ms frame.

    Change ``config.input_sensitivity`` or ``config.input_gain_db`` at any time; they apply from the next frame.
    """

    def __init__(self, config: TalkConfig | None = None) -> None:
        self.config = config or TalkConfig()
        self.talking = False
        self.score = 0.0
        self.score_iir = 0.0
        # Whether the last frame's score was above the gate (the mix's noise gate reads it).
        self.gate_open = False
        self._gated_run = 0
        self._ungated_run = 0

    def update(self, pcm: np.ndarray) -> bool | None:
        """Feed one int16 frame: ``True`` when talking starts, ``False`` when it stops, ``None`` otherwise."""
        cfg = self.config
        score = float(np.abs(pcm.astype(np.int32)).mean()) if pcm.size else 0.0
        if cfg.input_gain_db:
            score = min(FULL_SCALE, score * 10.0 ** (cfg.input_gain_db / 20.0))
        self.score = score
        decay = cfg.score_decay
        self.score_iir = min(cfg.score_max_iir, (1.0 - decay) * score + decay * self.score_iir)

        energy_level = cfg.energy_level
        self.gate_open = score > energy_level
        if self.gate_open:
            self._ungated_run = 0
            self._gated_run += 1
            if not self.talking and (score - energy_level >= cfg.diff_level or self._gated_run >= cfg.hangunder_frames):
                self.talking = True
                return True
            return None
        self._gated_run = 0
        if self.talking:
            self._ungated_run += 1
            if self._ungated_run >= cfg.hangover_frames:
                self.talking = False
                self._ungated_run = 0
                return False
        return None


class FloorTracker:
    """The floor holder across members, from their IIR scores (:attr:`TalkDetector.score_iir`), per frame.

    The audio floor moves with FreeSWITCH's hysteresis; the video floor (what :meth:`update` returns, the member
    for a layout's ``floor`` slot) follows the audio floor once the new holder has held it for
    ``video_floor_hold_frames`` frames, or at once when nobody holds the video floor.
    """

    def __init__(self, config: TalkConfig | None = None) -> None:
        self.config = config or TalkConfig()
        self.audio_floor: str | None = None
        self.video_floor: str | None = None
        self.locked = False
        self._held_frames = 0

    def set_video_floor(self, member_id: str | None, *, lock: bool = False) -> None:
        """Put ``member_id`` in the video floor now (a moderator's choice); ``lock`` keeps it there until unlocked."""
        self.video_floor = member_id
        self.locked = lock and member_id is not None

    def update(self, scores: Mapping[str, float]) -> str | None:
        """Feed every present member's IIR score for this frame; returns the video floor holder (or ``None``)."""
        cfg = self.config
        if self.audio_floor not in scores:
            self.audio_floor = max(scores, key=lambda m: scores[m]) if scores else None
            self._held_frames = 0
        else:
            holder_score = scores[self.audio_floor]
            if holder_score < cfg.floor_speaking_min:
                loudest = max(scores, key=lambda m: scores[m])
                if loudest != self.audio_floor and scores[loudest] > cfg.floor_speaking_max:
                    logger.debug("audio floor %s -> %s", self.audio_floor, loudest)
                    self.audio_floor = loudest
                    self._held_frames = 0
        self._held_frames += 1

        if self.video_floor is not None and self.video_floor not in scores:
            self.video_floor = None
            self.locked = False
        if self.locked:
            return self.video_floor
        if self.video_floor is None:
            self.video_floor = self.audio_floor
        elif self.audio_floor != self.video_floor and self._held_frames > cfg.video_floor_hold_frames:
            self.video_floor = self.audio_floor
        return self.video_floor


class MixSources:
    """Which of the members whose frames pass the noise gate a mix takes, one :meth:`update` per 20 ms frame.

    ``max_sources``: how many members are mixed at most (0: no limit). While no more members than that are
    candidates, all are mixed. Beyond it, members already mixed stay while they remain candidates, free places
    go to the loudest others (IIR score), and a candidate more than ``takeover_ratio`` times as loud as the
    quietest mixed member takes that member's place (one change per frame). Ties go to the member id that sorts
    first, so the choice is deterministic.
    """

    def __init__(self, max_sources: int, takeover_ratio: float = TAKEOVER_RATIO) -> None:
        if max_sources < 0:
            raise ValueError("max_sources must be 0 (no limit) or more")
        self.max_sources = max_sources
        self.takeover_ratio = takeover_ratio
        self.mixed: set[str] = set()

    def update(self, candidates: Mapping[str, float]) -> set[str]:
        """``candidates``: ``{member_id: IIR score}`` of the members whose frame would be mixed this tick.
        Returns the members to mix (a subset of ``candidates``)."""
        if not self.max_sources or len(candidates) <= self.max_sources:
            self.mixed = set(candidates)
            return set(self.mixed)
        mixed = {m for m in self.mixed if m in candidates}
        others = sorted((m for m in candidates if m not in mixed), key=lambda m: (-candidates[m], m))
        while len(mixed) > self.max_sources:  # the limit was lowered: the quietest go
            mixed.remove(min(mixed, key=lambda m: (candidates[m], m)))
        free = self.max_sources - len(mixed)
        mixed.update(others[:free])
        others = others[free:]
        if others and mixed:
            quietest = min(mixed, key=lambda m: (candidates[m], m))
            if candidates[others[0]] > self.takeover_ratio * candidates[quietest]:
                mixed.remove(quietest)
                mixed.add(others[0])
        self.mixed = mixed
        return set(mixed)
