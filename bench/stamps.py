"""Frame stamps for glass-to-glass latency: a frame counter drawn into the picture as a row of black/white blocks.

A stamp is ``STAMP_BITS`` bits (the frame index modulo ``STAMP_PERIOD``) plus an even-parity bit, preceded by a
white and a black reference block, drawn at a fixed place of a ``SOURCE_W``×``SOURCE_H`` picture (blocks of
``BLOCK_PX`` px). It survives H.264 at low bitrate and a down-scale to a 320×180 tile (blocks of 16 px there).
:func:`read_stamp` finds it again inside the rect where the compositor drew that picture, from the luma plane.
"""

from __future__ import annotations

import numpy as np

SOURCE_W, SOURCE_H = 640, 360
BLOCK_PX = 32
STAMP_BITS = 8
STAMP_PERIOD = 1 << STAMP_BITS
STAMP_X, STAMP_Y = 32, 24  # top-left corner of the first (white) reference block, source px
# Luma levels are read against the two reference blocks; below this contrast the stamp is not trusted.
MIN_CONTRAST = 80


def _blocks() -> int:
    return 2 + STAMP_BITS + 1


def draw_stamp(rgb: np.ndarray, value: int) -> None:
    """Draw ``value`` (``0 <= value < STAMP_PERIOD``) into an RGB ``(SOURCE_H, SOURCE_W, 3)`` uint8 picture."""
    if not 0 <= value < STAMP_PERIOD:
        raise ValueError(f"stamp value must be in [0, {STAMP_PERIOD}), got {value}")
    bits = [(value >> b) & 1 for b in range(STAMP_BITS)]
    levels = [255, 0, *(255 * bit for bit in bits), 255 * (sum(bits) & 1)]
    for k, level in enumerate(levels):
        x0 = STAMP_X + k * BLOCK_PX
        rgb[STAMP_Y : STAMP_Y + BLOCK_PX, x0 : x0 + BLOCK_PX] = level


def read_stamp(luma: np.ndarray, rect: tuple[int, int, int, int]) -> int | None:
    """The stamp in the picture drawn at ``rect`` ``(x, y, w, h)`` (px of ``luma``, the canvas Y plane).

    Reads the centre half of every block; ``None`` when the reference blocks lack contrast (a card, a frame
    from before the stamps arrived) or the parity does not match.
    """
    x, y, w, h = rect
    sx, sy = w / SOURCE_W, h / SOURCE_H
    quarter = BLOCK_PX / 4
    means = []
    for k in range(_blocks()):
        bx0 = x + (STAMP_X + k * BLOCK_PX + quarter) * sx
        by0 = y + (STAMP_Y + quarter) * sy
        bx1 = x + (STAMP_X + (k + 1) * BLOCK_PX - quarter) * sx
        by1 = y + (STAMP_Y + BLOCK_PX - quarter) * sy
        patch = luma[int(round(by0)) : int(round(by1)), int(round(bx0)) : int(round(bx1))]
        if patch.size == 0:
            return None
        means.append(float(patch.mean()))
    white, black = means[0], means[1]
    if white - black < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    bits = [int(m > threshold) for m in means[2:]]
    if sum(bits[:STAMP_BITS]) & 1 != bits[STAMP_BITS]:
        return None
    return sum(bit << b for b, bit in enumerate(bits[:STAMP_BITS]))


class TileStampReader:
    """Reads the stamp of every tile of successive canvases and keeps each stamp's first appearance.

    ``rects``: ``[(source index, (x, y, w, h))]`` in canvas px. :meth:`read` takes a canvas luma plane and the
    time it became available (``time.monotonic()`` s); ``seen`` collects ``(time, source, stamp)`` the first time a
    tile shows a new stamp (a canvas repeating a tile's picture adds nothing), ``misread`` counts unreadable tiles.
    """

    def __init__(self, rects: list[tuple[int, tuple[int, int, int, int]]]) -> None:
        self.rects = rects
        self.frames = 0
        self.misread = 0
        self.seen: list[tuple[float, int, int]] = []
        self._last: dict[int, int] = {}

    def read(self, luma: np.ndarray, at_s: float) -> None:
        self.frames += 1
        for source, rect in self.rects:
            value = read_stamp(luma, rect)
            if value is None:
                self.misread += 1
            elif self._last.get(source) != value:
                self._last[source] = value
                self.seen.append((at_s, source, value))


def latencies_ms(seen, sent, max_ms: float = 4000.0) -> tuple[list[float], int]:
    """Match ``(time, source, stamp)`` sightings with ``sent[source] = [(stamp, send time), …]`` (time order; a
    list or a dict by source): the
    latency of a sighting is its time minus the latest send of that stamp before it. Returns the latencies in ms
    and how many sightings had no send within ``max_ms`` before them (misreads or pictures from before the log)."""
    import bisect

    times: dict[tuple[int, int], list[float]] = {}
    for source, log in sent.items() if isinstance(sent, dict) else enumerate(sent):
        for value, at_s in log:
            times.setdefault((source, value), []).append(at_s)
    result, unmatched = [], 0
    for at_s, source, value in seen:
        candidates = times.get((source, value), [])
        k = bisect.bisect_right(candidates, at_s)
        latency_ms = (at_s - candidates[k - 1]) * 1000.0 if k else None
        if latency_ms is None or latency_ms > max_ms:
            unmatched += 1
        else:
            result.append(latency_ms)
    return result, unmatched
