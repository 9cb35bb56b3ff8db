"""Caption strips and initials cards: sizes, colours, caching."""

from __future__ import annotations

import numpy as np
import pytest

from media.mixer.captions import (
    CAPTION_BG,
    caption_font_px,
    card_background,
    initials,
    render_caption,
    render_initials_card,
    rgb_to_yuv,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Ada Lovelace", "AL"), ("grace", "GR"), ("Jean-Luc Picard", "JP"), ("  ", "?"), ("", "?"), ("x", "X")],
)
def test_initials_take_the_first_and_last_word(name, expected):
    assert initials(name) == expected


def test_the_caption_font_follows_freeswitchs_banner_size_within_5_to_24_px():
    assert caption_font_px("Ada", 1280) == 24
    assert caption_font_px("A rather long display name for a tiny tile", 160) == 5
    assert 5 < caption_font_px("Member 12", 160) < 24


def test_a_caption_is_a_strip_twice_the_font_high_in_banner_colours():
    strip = render_caption("Ada Lovelace", 640, 360)

    assert strip.height == 2 * caption_font_px("Ada Lovelace", 640)
    assert strip.width % 2 == 0 and strip.width < 640
    y, u, v = rgb_to_yuv(CAPTION_BG)
    assert abs(int(strip.y[1, 1]) - y) <= 1 and abs(int(strip.u[0, 0]) - u) <= 1 and abs(int(strip.v[0, 0]) - v) <= 1
    assert int(strip.y.max()) > y + 80  # the light text


def test_captions_and_cards_are_rendered_once_per_name_and_size():
    assert render_caption("Bob", 640, 360) is render_caption("Bob", 640, 360)
    assert render_initials_card("Bob", 320, 180) is render_initials_card("Bob", 320, 180)
    assert render_initials_card("Bob", 320, 180) is not render_initials_card("Bob", 640, 360)


def test_cached_planes_cannot_be_modified():
    card = render_initials_card("Eve", 64, 36)

    with pytest.raises(ValueError):
        card.y[0, 0] = 1


def test_no_caption_for_an_empty_name_or_a_tiny_tile():
    assert render_caption("", 640, 360) is None
    assert render_caption("Bob", 64, 20) is None


def test_a_card_has_the_requested_size_and_the_names_colour_in_its_centre_ring():
    card = render_initials_card("Carol", 320, 180)

    assert (card.width, card.height) == (320, 180)
    assert card.u.shape == (90, 160)
    y, _, _ = rgb_to_yuv(card_background("Carol"))
    assert abs(int(card.y[90, 160 - 45]) - y) <= 2


def test_a_card_of_odd_size_is_rejected():
    with pytest.raises(ValueError):
        render_initials_card("Carol", 321, 180)


def test_the_card_colour_is_stable_per_name():
    assert card_background("Dana") == card_background("Dana")
    assert len({card_background(f"name {i}") for i in range(40)}) > 1
    assert np.array(card_background("Dana")).shape == (3,)
