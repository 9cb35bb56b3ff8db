"""The camera is sent at the size it is drawn at: Debian's Chromium (fake camera) joins through the participant
page, the media worker sends ``webrtc.sender_constraints`` and the SDK scales the camera sender down
(``scaleResolutionDownBy``) and caps its frame rate (``maxFramerate``) to the room's canvas fps; the outbound RTP
stats show the smaller frames. A second member shrinks the first one's tile, and its camera follows."""

from __future__ import annotations

import pytest

from media.mixer.compositor import drawn_size
from tests.browser.test_participant_page import _join, _room

pytestmark = [pytest.mark.browser, pytest.mark.media]

# The camera sender's encoding parameters, what the camera captures and what leaves the browser.
SENDER_JS = """
async () => {
  const s = window.parleyApp.session;
  const track = s.localVideoTrack;
  const sender = s.peerConnection.getSenders().find((x) => x.track === track);
  const encoding = sender.getParameters().encodings[0] || {};
  let frameWidth = null, frameHeight = null;
  (await s.peerConnection.getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "video" && r.frameWidth) {
      frameWidth = r.frameWidth; frameHeight = r.frameHeight;
    }
  });
  const captured = track.getSettings();
  return {constraints: s.senderConstraints, scale: encoding.scaleResolutionDownBy ?? null,
          maxFramerate: encoding.maxFramerate ?? null, capturedWidth: captured.width,
          capturedHeight: captured.height, frameWidth, frameHeight};
}
"""


def _expected_scale(sender: dict) -> float:
    c = sender["constraints"]
    return round(max(1.0, min(sender["capturedWidth"] / c["width"], sender["capturedHeight"] / c["height"])), 2)


# The canvas size (the mixed <video>) and this member's layer in the last ``layout.changed``, in canvas pixels.
TILE_JS = """
() => {
  const s = window.parleyApp.session;
  const v = document.querySelector("#stage video");
  const layer = (s.layout?.layers || []).find((l) => l.member_id === s.memberId);
  if (!v || !v.videoWidth || !layer) return null;
  return {canvasWidth: v.videoWidth, canvasHeight: v.videoHeight,
          width: Math.round(layer.width * v.videoWidth / 100), height: Math.round(layer.height * v.videoHeight / 100)};
}
"""


def _assert_drawn_size(page, sender: dict) -> dict:
    """The constraints are the camera's letterboxed size in this member's tile (±2 px: the layer is read back
    from percentages)."""
    tile = page.wait_for_function(TILE_JS, timeout=30_000).json_value()
    width, height = drawn_size(
        sender["capturedWidth"], sender["capturedHeight"], tile["width"], tile["height"], zoom=False
    )
    c = sender["constraints"]
    assert abs(c["width"] - width) <= 2 and abs(c["height"] - height) <= 2, (sender, tile)
    return tile


def test_the_camera_is_sent_at_its_tile_size_and_the_canvas_fps(new_page, parley_server):
    # A room made by its first token: the Room defaults, a 720p canvas at 20 fps.
    room = _room()
    ada = new_page()
    _join(ada, parley_server, room, "Ada")
    ada.evaluate(
        "window.__constraintEvents = [];"
        " window.parleyApp.session.on('media.sender_constraints', (e) => window.__constraintEvents.push(e));"
    )
    ada.wait_for_function("window.parleyApp.session.senderConstraints !== null", timeout=30_000)
    ada.wait_for_function(f"({SENDER_JS})().then((s) => s.scale !== null)", timeout=15_000)
    alone = ada.evaluate(SENDER_JS)
    # Alone in the room: one tile, the whole canvas; the camera is smaller than that, so it is not scaled, but
    # its frame rate is capped to the canvas's.
    tile = _assert_drawn_size(ada, alone)
    assert (tile["width"], tile["height"]) == (tile["canvasWidth"], tile["canvasHeight"]) == (1280, 720), tile
    assert alone["constraints"]["max_framerate"] == 20, alone
    assert alone["scale"] == _expected_scale(alone) == 1, alone
    assert alone["maxFramerate"] == 20, alone

    bob = new_page()
    _join(bob, parley_server, room, "Bob")
    # Two members: Ada's tile shrinks below her camera's size, the worker asks for it, the SDK scales down.
    first = alone["constraints"]
    ada.wait_for_function(f"window.parleyApp.session.senderConstraints.width < {first['width']}", timeout=30_000)
    ada.wait_for_function(f"({SENDER_JS})().then((s) => s.scale > 1)", timeout=15_000)
    shared = ada.evaluate(SENDER_JS)
    _assert_drawn_size(ada, shared)
    assert shared["scale"] == _expected_scale(shared), shared
    assert shared["maxFramerate"] == 20, shared
    events = ada.evaluate("window.__constraintEvents")
    assert events and events[-1]["scaleResolutionDownBy"] == shared["scale"], events
    smaller = shared["constraints"]
    # What leaves the browser is no bigger than the drawn size (the encoder may go lower on its own).
    ada.wait_for_function(
        f"({SENDER_JS})().then((s) => s.frameWidth !== null && s.frameWidth <= {smaller['width'] + 2}"
        f" && s.frameHeight <= {smaller['height'] + 2})",
        timeout=20_000,
    )
    print(f"alone: {alone}\ntwo members: {ada.evaluate(SENDER_JS)}")
