"""A VP8-only browser in a room with an H.264 browser: Debian's Chromium, one page restricted to VP8 (its video
transceivers offer VP8 only, as a browser without H.264 does), both joined through the participant page. The room
answers each in its own codec and both see the composite of both cameras."""

from __future__ import annotations

import pytest

from tests.browser.test_participant_page import _SAMPLE_HALVES_JS, CAMERA_FRACTION, _join, _room

# Before any offer, restrict every video transceiver of the page to VP8 (+ RTX).
VP8_ONLY_INIT_JS = """
(() => {
  const createOffer = RTCPeerConnection.prototype.createOffer;
  RTCPeerConnection.prototype.createOffer = function (...args) {
    const vp8 = RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /^video\\/(vp8|rtx)$/i.test(c.mimeType));
    for (const t of this.getTransceivers()) {
      if (t.receiver.track.kind === 'video') t.setCodecPreferences(vp8);
    }
    return createOffer.apply(this, args);
  };
})();
"""

# The mime types of the video codecs the page's connection receives and sends with.
VIDEO_CODECS_JS = """
async () => {
  const stats = await window.parleyApp.session.peerConnection.getStats();
  const out = {inbound: [], outbound: []};
  stats.forEach((s) => {
    if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'video' && s.codecId) {
      out[s.type === 'inbound-rtp' ? 'inbound' : 'outbound'].push(stats.get(s.codecId).mimeType);
    }
  });
  return out;
}
"""

BOTH_CAMERAS_JS = f"""(() => {{ const v = document.querySelector('#stage video');
  if (!v || v.readyState < 2 || !v.videoWidth) return false;
  const r = ({_SAMPLE_HALVES_JS})(); return r.left > {CAMERA_FRACTION} && r.right > {CAMERA_FRACTION}; }})()"""


@pytest.mark.media
def test_a_vp8_only_browser_and_an_h264_browser_see_each_other(new_page, parley_server, artifacts_dir):
    room = _room()
    ada, vic = new_page(), new_page()
    vic.add_init_script(VP8_ONLY_INIT_JS)
    _join(ada, parley_server, room, "Ada")
    _join(vic, parley_server, room, "Vic")

    for name, page in (("Ada", ada), ("Vic", vic)):
        assert page.locator("#media-unavailable").is_hidden(), f"{name}: joined without media: {page.parley_console}"
        try:
            page.wait_for_function(BOTH_CAMERAS_JS, timeout=40_000)
        except Exception as e:
            page.screenshot(path=str(artifacts_dir / f"vp8-participant-{name.lower()}-failed.png"))
            raise AssertionError(
                f"{name}: the mixed picture does not show both cameras; server log:\n{parley_server.log_tail(2000)}"
            ) from e
        page.screenshot(path=str(artifacts_dir / f"vp8-participant-{name.lower()}.png"))

    page_codecs = {}
    for name, page in (("Ada", ada), ("Vic", vic)):
        page.wait_for_function(f"({VIDEO_CODECS_JS})().then((c) => c.inbound.length > 0)", timeout=15_000)
        page_codecs[name] = page.evaluate(VIDEO_CODECS_JS)
    assert page_codecs["Vic"]["inbound"] == ["video/VP8"], page_codecs
    assert set(page_codecs["Vic"]["outbound"]) <= {"video/VP8"}, page_codecs
    assert page_codecs["Ada"]["inbound"] == ["video/H264"], page_codecs
