"""Permissions that change mid-meeting and large rooms' member lists, in Debian's Chromium against a real Parley
server (Daphne subprocess with the embedded media worker; fixtures in ``tests/conftest.py``).

- A moderator promotes an audience member: without a reload the promoted page shows its microphone and camera
  controls and sends media; moved back to the audience, the controls go away and the tracks stop.
- Above 50 present members ``memberList.updated`` carries ``members: null, truncated: true``: the SDK refreshes
  the list with ``room.get_members`` at most once at a time and at most once per second, and its final list holds
  every member. The crowd is signalling-only audience members joined with Python ``websockets`` clients.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading

import pytest
import websockets
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.test_participant_page import MODERATOR_PERMISSIONS, _join, _member_item, _room

pytestmark = [pytest.mark.browser]

MEDIA_TIMEOUT_MS = 60_000


def _join_as_audience(page: Page, server, room: str, name: str) -> None:
    page.goto(server.room_url(room, server.token(room_name=room, user_name=name, permissions=[], join_as="audience")))
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.locator("#meeting-screen")).to_be_visible(timeout=30_000)
    expect(_member_item(page, f"{name} (you)")).to_be_visible()


def _bytes_sent(page: Page) -> int:
    return page.evaluate(
        """async () => {
            const pc = window.parleyApp.session.peerConnection;
            if (!pc) return 0;
            let sent = 0;
            (await pc.getStats()).forEach((r) => { if (r.type === "outbound-rtp") sent += r.bytesSent || 0; });
            return sent;
        }"""
    )


def test_a_promoted_audience_member_gets_mic_and_camera_without_a_reload_and_loses_them_when_demoted(
    new_page, parley_server, artifacts_dir
):
    room = _room()
    mia, ann = new_page(), new_page()
    _join(
        mia,
        parley_server,
        room,
        "Mia",
        permissions=[*MODERATOR_PERMISSIONS, "room.member.promote", "room.member.demote"],
    )
    _join_as_audience(ann, parley_server, room, "Ann")
    for control in ("#mute-button", "#camera-button", "#hand-button"):
        expect(ann.locator(control)).to_be_hidden()
    assert ann.evaluate("window.parleyApp.session.localStream.getTracks().length") == 0
    expect(ann.get_by_role("button", name="Promote Mia")).to_have_count(0)

    mia.get_by_role("button", name="Promote Ann").click()

    expect(ann.locator("#mute-button")).to_be_visible(timeout=30_000)
    expect(ann.locator("#camera-button")).to_be_visible()
    # The server's default member permissions: screen share and added sources, no hand raising.
    expect(ann.locator("#screenshare-button")).to_be_visible()
    expect(ann.locator("#sources")).to_be_attached()
    assert ann.evaluate("document.getElementById('sources').hidden") is False
    expect(ann.locator("#hand-button")).to_be_hidden()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "false")
    expect(mia.get_by_role("button", name="Move to audience Ann")).to_be_visible()
    # The worker's renegotiation made the promoted member's tracks flow: RTP leaves the browser.
    try:
        ann.wait_for_function(
            """() => {
                const sending = window.parleyApp.session.peerConnection.getTransceivers().filter((t) => t.sender.track);
                return sending.length === 2 && sending.every((t) => t.currentDirection === "sendrecv");
            }""",
            timeout=MEDIA_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError as e:
        transceivers = ann.evaluate(
            """window.parleyApp.session.peerConnection.getTransceivers().map((t) =>
                [t.mid, t.direction, t.currentDirection, t.sender.track?.kind ?? null])"""
        )
        raise AssertionError(
            f"transceivers {transceivers}; console: {ann.parley_console[-10:]}; "
            f"server log:\n{parley_server.log_tail(3000)}"
        ) from e
    first = _bytes_sent(ann)
    ann.wait_for_function(
        """async (before) => {
            let sent = 0;
            (await window.parleyApp.session.peerConnection.getStats())
                .forEach((r) => { if (r.type === "outbound-rtp") sent += r.bytesSent || 0; });
            return sent > before;
        }""",
        arg=first,
        timeout=MEDIA_TIMEOUT_MS,
    )
    # The new controls work: the mute button mutes through the server.
    ann.locator("#mute-button").click()
    expect(ann.locator("#mute-button")).to_have_attribute("aria-pressed", "true", timeout=15_000)
    ann.screenshot(path=str(artifacts_dir / "participant-promoted.png"))
    ann.evaluate("window.__tracks = window.parleyApp.session.localStream.getTracks()")

    mia.get_by_role("button", name="Move to audience Ann").click()

    expect(ann.locator("#mute-button")).to_be_hidden(timeout=30_000)
    expect(ann.locator("#camera-button")).to_be_hidden()
    expect(ann.locator("#screenshare-button")).to_be_hidden()
    assert ann.evaluate("document.getElementById('sources').hidden") is True
    ann.wait_for_function("window.__tracks.length > 0 && window.__tracks.every((t) => t.readyState === 'ended')")
    expect(mia.get_by_role("button", name="Promote Ann")).to_be_visible()
    assert ann.evaluate("window.parleyApp.session.active") is True


class _Crowd:
    """``count`` signalling-only audience members joined in a background event loop; ``close()`` leaves."""

    def __init__(self, server, room: str):
        self.server, self.room = server, room
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sockets: list = []
        self.handshakes = asyncio.Semaphore(10)

    async def _connect(self, url: str):
        # Ten handshakes at a time; one the busy server drops unanswered is tried again (the crowd is scenery).
        async with self.handshakes:
            for attempt in range(5):
                try:
                    return await websockets.connect(url, open_timeout=60)
                except (websockets.InvalidMessage, OSError, TimeoutError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5)

    async def _join_one(self, i: int):
        token = self.server.token(room_name=self.room, user_name=f"Bot {i}", permissions=[], join_as="audience")
        ws = await self._connect(f"{self.server.url.replace('http', 'ws', 1)}/ws/video/?token={token}")
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "room.join", "params": {}}))
        while True:  # events may come before the answer; the answer is the frame with id 1
            msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if msg.get("id") == 1:
                assert "result" in msg, msg
                break
        # Keep reading so the server's sends never back up; nothing else is needed from these sockets.
        self.loop.create_task(self._drain(ws))
        return ws

    @staticmethod
    async def _drain(ws):
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass

    def join(self, start: int, count: int) -> None:
        async def many():
            return await asyncio.gather(*(self._join_one(i) for i in range(start, start + count)))

        self.sockets += asyncio.run_coroutine_threadsafe(many(), self.loop).result(timeout=180)

    def close(self) -> None:
        async def leave():
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(leave(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# Counts, in the page, the truncated member lists received and the room.get_members requests sent and answered.
_COUNT_FRAMES = """
(() => {
  const log = (window.__frames = { truncated: 0, sent: [], answered: 0, maxInFlight: 0, ids: new Set() });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      const msg = JSON.parse(data);
      if (msg.method === "room.get_members") {
        log.sent.push(performance.now());
        log.ids.add(msg.id);
        log.maxInFlight = Math.max(log.maxInFlight, log.ids.size);
      }
    } catch {}
    if (!this.__counted) {
      this.__counted = true;
      this.addEventListener("message", (e) => {
        const msg = JSON.parse(e.data);
        if (log.ids.delete(msg.id)) log.answered += 1;
        const p = msg.params;
        if (msg.method === "event" && p?.event_type === "memberList.updated" && p.params?.truncated) {
          log.truncated += 1;
        }
      });
    }
    return send.call(this, data);
  };
})();
"""


def test_truncated_member_lists_are_refreshed_once_at_a_time_and_at_most_once_a_second(new_page, parley_server):
    room = _room()
    page = new_page()
    page.add_init_script(_COUNT_FRAMES)
    _join(page, parley_server, room, "Ada")
    crowd = _Crowd(parley_server, room)
    try:
        crowd.join(0, 52)  # 53 present members: every later list is truncated
        # More joins, three at a time, each round until the page has one more truncated update (the server
        # coalesces a burst into one): several updates, some while a refresh is in flight or pending.
        for round_ in range(6):
            seen = page.evaluate("window.__frames.truncated")
            crowd.join(52 + 3 * round_, 3)
            page.wait_for_function("(n) => window.__frames.truncated > n", arg=seen, timeout=60_000)
        total = 1 + 52 + 18
        page.wait_for_function("(n) => window.parleyApp.session.members.size === n", arg=total, timeout=60_000)
        expect(page.locator("#member-count")).to_have_text(f"({total})", timeout=30_000)
        # Quiet: nothing in flight and no request for 1.5 s, so no trailing refresh is pending (the SDK sends one
        # at most 1 s after the previous); the counts are read in the same check.
        frames = page.wait_for_function(
            """() => {
                const f = window.__frames;
                const last = f.sent.length ? f.sent[f.sent.length - 1] : 0;
                if (f.ids.size !== 0 || performance.now() - last < 1500) return null;
                return {truncated: f.truncated, sent: f.sent, answered: f.answered, maxInFlight: f.maxInFlight};
            }""",
            timeout=30_000,
        ).json_value()
    finally:
        crowd.close()
    print(f"truncated memberList.updated: {frames['truncated']}, room.get_members sent: {len(frames['sent'])}")
    assert frames["truncated"] >= 6, frames
    assert 1 <= len(frames["sent"]) <= frames["truncated"], frames
    assert frames["answered"] == len(frames["sent"])
    assert frames["maxInFlight"] == 1, frames
    gaps = [b - a for a, b in itertools.pairwise(frames["sent"])]
    assert all(g >= 950 for g in gaps), gaps  # the SDK's own 1 s spacing (a timer's lower bound)
    # The page's list holds every member with a name (the refreshed list, not the count alone).
    names = page.evaluate("[...window.parleyApp.session.members.values()].map((m) => m.name)")
    assert {f"Bot {i}" for i in range(70)} <= set(names) and "Ada" in names
