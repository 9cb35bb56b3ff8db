"""Caption strips and initials cards, rendered once with Pillow and kept as yuv420p planes.

Both are cached (LRU-bounded) by their inputs, so the compositor pays for Pillow only when a member's name or
tile size changes. Colours follow FreeSWITCH's banner defaults (``conference_video_layer_set_banner``: fg
``#cccccc``, bg ``#142e55``, font 5–24 px, strip ``2 × font_size`` high); the initials card stands in for the
video of a video-muted or camera-less member.

Planes use BT.601 limited range (what ``cv2.COLOR_RGB2YUV_I420``, libswscale and the encoders assume).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

CAPTION_FG = (0xCC, 0xCC, 0xCC)
CAPTION_BG = (0x14, 0x2E, 0x55)
CAPTION_MIN_FONT_PX = 5
CAPTION_MAX_FONT_PX = 24
CARD_FG = (0xFF, 0xFF, 0xFF)
# Muted, distinguishable card backgrounds; a name always maps to the same one.
CARD_PALETTE = (
    (0x3B, 0x5B, 0x8C),
    (0x6B, 0x3E, 0x8C),
    (0x8C, 0x3E, 0x5A),
    (0x2E, 0x7D, 0x6B),
    (0x8C, 0x6A, 0x2E),
    (0x4A, 0x4A, 0x5E),
)
CACHE_SIZE = 256


@dataclass(frozen=True)
class YuvImage:
    """A yuv420p picture as three read-only planes: ``y`` (h, w), ``u`` and ``v`` (h/2, w/2); w and h even."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def height(self) -> int:
        return self.y.shape[0]


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """One RGB colour (0–255 each) as BT.601 limited-range ``(Y, U, V)``, the same maths as OpenCV's I420."""
    pixel = np.array([[rgb] * 2] * 2, dtype=np.uint8)
    i420 = cv2.cvtColor(pixel, cv2.COLOR_RGB2YUV_I420)
    return int(i420[0, 0]), int(i420[2, 0]), int(i420[2, 1])


def rgb_to_yuv_image(rgb: np.ndarray) -> YuvImage:
    """An RGB ``(h, w, 3)`` uint8 array with even h and w as a :class:`YuvImage` (copies; planes read-only)."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
    y = i420[:h]
    chroma = i420[h:].reshape(2, h // 2, w // 2)
    planes = (y.copy(), chroma[0].copy(), chroma[1].copy())
    for p in planes:
        p.flags.writeable = False
    return YuvImage(*planes)


@lru_cache(maxsize=32)
def _font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(path, size_px)
        except OSError:
            continue
    return ImageFont.load_default(size=size_px)


def caption_font_px(name: str, tile_width_px: int, *, font_scale: float = 1.0) -> int:
    """FreeSWITCH's banner font size: ``tile_width / (len(name) / 1.2) × font_scale``, clamped to 5–24 px."""
    size = tile_width_px / max(len(name) / 1.2, 1.0) * font_scale
    return int(max(CAPTION_MIN_FONT_PX, min(CAPTION_MAX_FONT_PX, size)))


@lru_cache(maxsize=CACHE_SIZE)
def render_caption(name: str, tile_width_px: int, tile_height_px: int) -> YuvImage | None:
    """The name strip for a tile: ``2 × font_size`` px high, as wide as the text plus padding (at most the tile).

    Sizes are even so the strip lands on chroma boundaries. ``None`` for an empty name or a tile too small to
    hold a strip (less than 4× the strip height).
    """
    name = name.strip()
    if not name:
        return None
    font_px = caption_font_px(name, tile_width_px)
    strip_h = (2 * font_px) & ~1
    if strip_h * 4 > tile_height_px or tile_width_px < 16:
        return None
    font = _font(font_px)
    pad = font_px // 2
    text_w = int(np.ceil(font.getlength(name)))
    strip_w = min(tile_width_px & ~1, (text_w + 2 * pad + 1) & ~1)
    image = Image.new("RGB", (strip_w, strip_h), CAPTION_BG)
    ImageDraw.Draw(image).text((pad, strip_h // 2), name, font=font, fill=CAPTION_FG, anchor="lm")
    return rgb_to_yuv_image(np.asarray(image))


def initials(name: str) -> str:
    """Up to two initials of a display name (``"Ada Lovelace"`` → ``"AL"``, ``""`` → ``"?"``)."""
    words = [w for w in name.replace("_", " ").replace("-", " ").split() if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper() if len(words[0]) > 1 and not words[0][1].isspace() else words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


def card_background(name: str) -> tuple[int, int, int]:
    """The card colour for a name (stable across processes: a hash of the name picks from the palette)."""
    digest = hashlib.blake2s(name.encode("utf-8"), digest_size=2).digest()
    return CARD_PALETTE[int.from_bytes(digest, "big") % len(CARD_PALETTE)]


@lru_cache(maxsize=CACHE_SIZE)
def render_initials_card(name: str, width_px: int, height_px: int) -> YuvImage:
    """A ``width_px``×``height_px`` card (both even) showing the member's initials centred on a coloured disc.

    Used instead of the video of a video-muted member or one that sends no video yet.
    """
    if width_px % 2 or height_px % 2 or width_px <= 0 or height_px <= 0:
        raise ValueError(f"card size must be positive and even, got {width_px}x{height_px}")
    image = Image.new("RGB", (width_px, height_px), (0x22, 0x22, 0x22))
    draw = ImageDraw.Draw(image)
    radius = max(2, int(min(width_px, height_px) * 0.3))
    cx, cy = width_px // 2, height_px // 2
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=card_background(name))
    text = initials(name)
    font_px = max(6, int(radius * (0.9 if len(text) > 1 else 1.1)))
    draw.text((cx, cy), text, font=_font(font_px), fill=CARD_FG, anchor="mm")
    return rgb_to_yuv_image(np.asarray(image))


def clear_caches() -> None:
    """Drop every cached caption and card (e.g. when a worker shuts a room down)."""
    render_caption.cache_clear()
    render_initials_card.cache_clear()
