"""Audio mixing: mix-minus with input/output volume, mute and deaf, on int16 PCM frames.

Format: 48 kHz, 20 ms frames = 960 samples, mono int16. 48 kHz is Opus's native rate (WebRTC's audio codec),
so decoded frames need no resampling; 20 ms is Opus's default frame and FreeSWITCH's conference interval, so
talk detection and the floor run per frame as there. Mono keeps the mix one vector per member; stereo works
too when every input is interleaved stereo of the same length (all operations are per sample).

Mixing (FreeSWITCH ``conference_thread_run``, done vectorised): each unmuted source is scaled by its input gain
and clipped to int16; the scaled sources are summed once in int32; each listener's mix is that sum minus its own
scaled input, scaled by its output gain and clipped to int16. Listeners who send nothing all hear the same full
mix, so they can share one encode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 48_000
FRAME_MS = 20
CHANNELS = 1
SAMPLES_PER_FRAME = SAMPLE_RATE_HZ * FRAME_MS // 1000  # 960
INT16_MIN = -32768
INT16_MAX = 32767


def db_to_gain(db: float) -> float:
    """Linear amplitude factor for a gain in dB (``0`` → 1.0, ``+6`` → ≈2.0, ``-20`` → 0.1)."""
    return float(10.0 ** (db / 20.0))


def _apply_gain_db(samples: np.ndarray, db: float) -> np.ndarray:
    """int32 samples times the gain of ``db``, rounded and clipped to the int16 range (returns int32)."""
    if db == 0:
        return samples
    scaled = np.rint(samples * db_to_gain(db))
    return np.clip(scaled, INT16_MIN, INT16_MAX).astype(np.int32)


def mix_minus(
    inputs: Mapping[str, np.ndarray],
    *,
    input_gain_db: Mapping[str, float],
    output_gain_db: Mapping[str, float],
    muted: set[str],
    deaf: set[str],
    listeners: Iterable[str],
    samples_per_frame: int = SAMPLES_PER_FRAME,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mix one frame for every listener: ``({listener_id: pcm}, full_mix)``.

    ``inputs``: ``{member_id: int16 array of samples_per_frame}`` — the frame each sending member delivered this
    tick (members with nothing to send are simply absent). ``input_gain_db``/``output_gain_db``: per member, in
    dB (absent = 0). ``muted``: sources left out of every mix. ``deaf``: listeners who get silence (to also keep
    a deaf member out of the mix, put them in ``muted`` too). ``listeners``: members to mix for.

    Returns int16 arrays of ``samples_per_frame``: each listener hears every other unmuted source; the full mix
    (every unmuted source, no output gain) is for recording and streams. A listener that is not a source and
    has 0 dB output gain gets the full-mix array object itself (so the caller may encode it once for all of
    them); a deaf listener gets the shared silence array. Raises ``ValueError`` when an input has the wrong shape.
    Returned arrays are fresh each call and must not be modified (some are shared between listeners).
    """
    source_ids = [m for m in inputs if m not in muted]
    for member_id, pcm in inputs.items():
        if pcm.shape != (samples_per_frame,):
            raise ValueError(f"member {member_id}: expected {samples_per_frame} samples, got shape {pcm.shape}")

    if source_ids:
        stack = np.empty((len(source_ids), samples_per_frame), np.int32)
        for row, member_id in enumerate(source_ids):
            stack[row] = inputs[member_id]
        gains = np.array([db_to_gain(input_gain_db.get(m, 0.0)) for m in source_ids])
        if np.any(gains != 1.0):
            stack = np.clip(np.rint(stack * gains[:, None]), INT16_MIN, INT16_MAX).astype(np.int32)
        total = stack.sum(axis=0, dtype=np.int32)
    else:
        stack = np.empty((0, samples_per_frame), np.int32)
        total = np.zeros(samples_per_frame, np.int32)

    full_mix = np.clip(total, INT16_MIN, INT16_MAX).astype(np.int16)
    silence = np.zeros(samples_per_frame, np.int16)
    row_of = {m: row for row, m in enumerate(source_ids)}

    mixes: dict[str, np.ndarray] = {}
    minus_rows: list[int] = []
    minus_ids: list[str] = []
    for listener in dict.fromkeys(listeners):
        if listener in deaf:
            mixes[listener] = silence
        elif listener in row_of:
            minus_ids.append(listener)
            minus_rows.append(row_of[listener])
        elif output_gain_db.get(listener, 0.0) == 0:
            mixes[listener] = full_mix
        else:
            mixes[listener] = _apply_gain_db(total, output_gain_db[listener]).astype(np.int16)

    if minus_rows:
        own = total[None, :] - stack[minus_rows]
        out_gains = np.array([db_to_gain(output_gain_db.get(m, 0.0)) for m in minus_ids])
        if np.any(out_gains != 1.0):
            own = np.rint(own * out_gains[:, None])
        clipped = np.clip(own, INT16_MIN, INT16_MAX).astype(np.int16)
        for k, listener in enumerate(minus_ids):
            mixes[listener] = clipped[k]
    return mixes, full_mix
