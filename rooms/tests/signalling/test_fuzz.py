"""Fuzzing the signalling socket with thousands of malformed messages (hypothesis): no server error, the socket
stays open, and the room is unchanged."""

from __future__ import annotations

import json
import logging
import time

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rooms.models import Member, RoomSession
from rooms.signalling import consumers
from rooms.tests.signalling.conftest import joined

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES = 2500
METHODS = sorted(
    {*consumers.MEMBER_METHODS, *consumers.ROOM_METHODS, *consumers.EGRESS_START_METHODS}
    | {*consumers.EGRESS_LIST_METHODS, *__import__("rooms.signalling.egress", fromlist=["x"]).OBJECT_ACTIONS}
    | {"room.join", "room.leave", "room.get_members", "room.get_meta", "member.get_meta"}
    | {"room.list_available_layouts", "room.screenshare.start", "room.device.add", "webrtc.offer", "webrtc.answer"}
)
KNOWN_KEYS = sorted(
    {"member_id", "volume", "value", "position", "meta", "keys", "reaction", "permissions", "name", "positions"}
    | {"sdp", "audio", "video", "url", "recording_id", "stream_id", "playback_id", "position_ms", "layout"}
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# A value that is wrong for every known parameter: a list of non-strings (an empty list included).
junk_values = st.lists(st.one_of(st.integers(), st.floats(allow_nan=False), st.none()), max_size=3)
request_ids = st.one_of(st.integers(-(2**31), 2**31), st.text(max_size=10))


@st.composite
def bad_requests(draw) -> dict:
    """A well-formed envelope whose params are always invalid: a junk key, or known keys with junk values."""
    method = draw(st.sampled_from(METHODS))
    keys = draw(st.lists(st.sampled_from(KNOWN_KEYS) | st.text(min_size=1, max_size=12), min_size=1, max_size=4))
    params = {k: draw(junk_values) for k in keys}
    return {"jsonrpc": "2.0", "id": draw(request_ids), "method": method, "params": params}


@st.composite
def bad_envelopes(draw) -> dict:
    message = {
        "jsonrpc": draw(st.sampled_from(["2.0", "1.0", 2, None])),
        "method": draw(st.one_of(st.sampled_from(METHODS), st.integers(), st.text(max_size=80), st.none())),
        "params": draw(st.one_of(json_values, st.lists(st.integers(), max_size=3))),
        "id": draw(
            st.one_of(
                request_ids,
                st.lists(st.integers(), max_size=2),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            )
        ),
    }
    if message["jsonrpc"] == "2.0" and isinstance(message["method"], str) and message["method"] in METHODS:
        message["params"] = [1]  # never a valid call
    return message


frames = st.one_of(
    bad_requests().map(json.dumps),
    bad_envelopes().map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.integers(60_000, 80_000).map(
        lambda n: json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "member.set_meta", "params": {"meta": {"x": "y" * n}}}
        )
    ),
    st.integers(1, 3).map(lambda depth: "[" * (depth * 400) + "]" * (depth * 400)),
)


def _generate(n: int, batch: int = 100) -> list[str]:
    """``n`` frames, drawn as lists of ``batch`` (hypothesis' per-example overhead dominates otherwise)."""
    out: list[str] = []

    @settings(
        max_examples=n // batch,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames, min_size=batch, max_size=batch))
    def collect(batch_frames: list[str]) -> None:
        out.extend(batch_frames)

    collect()
    return out


def _state(room_session_id) -> tuple:
    session = RoomSession.objects.get(id=room_session_id)
    members = list(
        Member.objects.filter(room_session=session)
        .order_by("id")
        .values(
            "id",
            "audio_muted",
            "video_muted",
            "deaf",
            "input_volume",
            "output_volume",
            "input_sensitivity",
            "position",
            "meta",
            "hand_raised",
            "join_as",
            "permissions",
            "leave_time",
        )
    )
    return (session.status, session.layout_name, session.locked, session.hide_video_muted, session.meta, members)


@pytest.mark.slow
async def test_thousands_of_malformed_messages_change_nothing_and_break_nothing(project, room, monkeypatch, caplog):
    monkeypatch.setattr(consumers, "RATE_BURST", 10**9)
    monkeypatch.setattr(consumers, "REACTION_BURST", 10**9)
    started = time.monotonic()
    messages = _generate(FRAMES)
    assert len(messages) >= FRAMES * 0.9
    host = await joined(project, "standup")
    guest = await joined(project, "standup")
    before = await database_sync_to_async(_state)(host.room_session_id)
    caplog.set_level(logging.ERROR)
    codes: dict[int, int] = {}
    for frame in messages:
        try:
            parsed = json.loads(frame)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict) and "id" not in parsed:
            parsed["id"] = 0
            frame = json.dumps(parsed)
        if not frame:
            continue
        response = await host.send_raw(frame, timeout=20)
        code = response["error"]["code"]
        codes[code] = codes.get(code, 0) + 1
    assert set(codes) <= {-32700, -32600, -32601, -32602, -32003, -32004, -32009}, codes
    assert codes.get(-32602, 0) > 100  # the fuzz reaches the methods, not only the framing
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:3]
    assert "result" in await host.call("room.get_members")
    assert await database_sync_to_async(_state)(host.room_session_id) == before
    await guest.no_event("member.updated", wait=0.1)
    await host.close()
    await guest.close()
    assert time.monotonic() - started < 60
