"""The participant page in a real Chromium against a real Parley server (Daphne subprocess).

Two browser contexts are two participants with fake camera and microphone. Screenshots of the pre-join and
meeting pages land in ``test-artifacts/``.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser]

MODERATOR_PERMISSIONS = [
    "room.self.audio_mute",
    "room.self.audio_unmute",
    "room.self.video_mute",
    "room.self.video_unmute",
    "room.self.raisehand",
    "room.self.lowerhand",
    "room.member.audio_mute",
    "room.member.lowerhand",
    "room.member.remove",
    "room.list_available_layouts",
    "room.set_layout",
    "room.lock",
    "room.unlock",
    "room.recording",
    "room.stream",
]


def _room() -> str:
    return f"browser-{uuid.uuid4().hex[:10]}"


def _member_item(page: Page, name: str):
    return page.locator("#member-list li.member").filter(has_text=name)


def _join(page: Page, server, room: str, name: str, permissions: list[str] | None = None) -> None:
    """Open the room's link with a fresh token, press Join and wait for the meeting screen."""
    page.goto(server.room_url(room, server.token(room_name=room, user_name=name, permissions=permissions)))
    page.get_by_role("button", name="Join", exact=True).click()
    try:
        expect(page.locator("#meeting-screen")).to_be_visible(timeout=30_000)
    except AssertionError as e:
        error = page.locator("#prejoin-error").text_content()
        raise AssertionError(
            f"{name} did not reach the meeting (page error: {error!r}); console: {page.parley_console[-10:]}; "
            f"server log:\n{server.log_tail(2000)}"
        ) from e
    expect(_member_item(page, f"{name} (you)")).to_be_visible()


def test_prejoin_shows_the_camera_preview_the_mic_level_and_a_join_button(new_page, parley_server, artifacts_dir):
    page = new_page()
    room = _room()
    page.goto(parley_server.room_url(room, parley_server.token(room_name=room, user_name="Ada")))

    expect(page.get_by_role("button", name="Join", exact=True)).to_be_enabled()
    expect(page.locator("#prejoin-room-name")).to_have_text(room)
    expect(page.locator("#prejoin-user-name")).to_have_text("Ada")
    # The fake camera plays into the preview; the fake microphone's beep moves the level meter.
    page.wait_for_function("document.getElementById('preview').videoWidth > 0")
    page.wait_for_function("Number(document.getElementById('mic-level').getAttribute('aria-valuenow')) > 0")
    expect(page.get_by_label("Camera", exact=True)).not_to_have_count(0)
    assert page.locator("#camera-select option").count() >= 1
    assert page.locator("#microphone-select option").count() >= 1
    page.screenshot(path=str(artifacts_dir / "participant-prejoin.png"))


def test_without_a_token_the_page_offers_a_join_form_that_accepts_a_link(new_page, parley_server):
    page = new_page()
    room = _room()
    page.goto(parley_server.room_url(room))

    expect(page.get_by_role("heading", name="Join a room")).to_be_visible()
    expect(page.get_by_role("button", name="Join", exact=True)).to_be_hidden()
    page.get_by_label("Room link or token").fill("not a token")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#join-form-error")).to_contain_text("not a Parley room link")

    link = parley_server.room_url(room, parley_server.token(room_name=room, user_name="Grace"))
    page.get_by_label("Room link or token").fill(link)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Join", exact=True)).to_be_visible()
    expect(page.locator("#prejoin-user-name")).to_have_text("Grace")


def test_the_page_carries_its_config_and_no_token(new_page, parley_server):
    page = new_page()
    response = page.goto(parley_server.room_url("some-room"))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    config = page.evaluate("JSON.parse(document.getElementById('parley-config').textContent)")
    assert config == {
        "ice_servers": [],
        "ws_url": "/ws/video/",
        "reconnect_grace_seconds": 30,
        "room_name": "some-room",
    }
    assert page.goto(f"{parley_server.url}/r/bad%20name!/").status == 404


def test_two_members_join_and_both_member_lists_update(new_page, parley_server, artifacts_dir):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")

    for page in (ada, bob):
        expect(page.locator("#member-list li.member")).to_have_count(2)
    expect(_member_item(ada, "Bob")).to_be_visible()
    expect(_member_item(bob, "Ada")).to_be_visible()
    expect(ada.locator("#member-count")).to_have_text("(2)")
    ada.screenshot(path=str(artifacts_dir / "participant-meeting.png"))


def test_a_raised_hand_shows_to_the_other_member(new_page, parley_server):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")

    hand = bob.get_by_role("button", name="Raise hand")
    expect(hand).to_have_attribute("aria-pressed", "false")
    hand.click()
    expect(_member_item(ada, "Bob").get_by_role("img", name="Hand raised")).to_be_visible()
    expect(bob.locator("#hand-button")).to_have_attribute("aria-pressed", "true")
    expect(bob.locator("#hand-button")).to_have_text("Lower hand")

    bob.locator("#hand-button").click()
    expect(_member_item(ada, "Bob").get_by_role("img", name="Hand raised")).to_have_count(0)


def test_muting_shows_the_muted_indicator_and_disables_the_microphone_track(new_page, parley_server):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")

    mute = ada.get_by_role("button", name="Mute", exact=True)
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    expect(_member_item(bob, "Ada").get_by_role("img", name="Muted")).to_be_visible()
    expect(_member_item(ada, "Ada (you)").get_by_role("img", name="Muted")).to_be_visible()
    # The local track follows the RPC result, which may land just after the others see the event.
    ada.wait_for_function("window.parleyApp.session.localAudioTrack.enabled === false", timeout=5000)

    mute.click()
    expect(_member_item(bob, "Ada").get_by_role("img", name="Muted")).to_have_count(0)
    ada.wait_for_function("window.parleyApp.session.localAudioTrack.enabled === true", timeout=5000)


def test_leaving_shows_the_left_screen_and_updates_the_other_list(new_page, parley_server):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")
    expect(ada.locator("#member-list li.member")).to_have_count(2)

    bob.get_by_role("button", name="Leave").click()
    expect(bob.get_by_role("heading", name="You left the room")).to_be_visible()
    expect(ada.locator("#member-list li.member")).to_have_count(1)
    expect(_member_item(ada, "Bob")).to_have_count(0)
    assert bob.evaluate("window.parleyApp.session.active") is False


def test_a_dropped_socket_reconnects_and_resumes_the_same_member(new_page, parley_server):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")
    member_id = bob.evaluate("window.parleyApp.session.memberId")

    bob.evaluate(
        """() => new Promise((resolve) => {
            const s = window.parleyApp.session;
            s.once("room.reconnected", resolve);
            s._ws.close(4000, "network drop");
        })"""
    )
    assert bob.evaluate("window.parleyApp.session.memberId") == member_id
    assert bob.evaluate("window.parleyApp.session.active") is True
    bob.get_by_role("button", name="Raise hand").click()
    expect(_member_item(ada, "Bob").get_by_role("img", name="Hand raised")).to_be_visible()
    expect(ada.locator("#member-list li.member")).to_have_count(2)


def test_moderator_controls_show_only_with_the_permissions(new_page, parley_server):
    room = _room()
    mod, member = new_page(), new_page()
    _join(mod, parley_server, room, "Mia", permissions=MODERATOR_PERMISSIONS)
    _join(member, parley_server, room, "Max")

    expect(mod.get_by_role("heading", name="Moderation")).to_be_visible()
    expect(mod.get_by_role("button", name="Lock room")).to_be_visible()
    expect(mod.get_by_role("button", name="Start recording")).to_be_visible()
    expect(mod.get_by_role("button", name="Remove Max")).to_be_visible()
    expect(member.get_by_role("heading", name="Moderation")).to_be_hidden()
    expect(member.get_by_role("button", name="Remove Mia")).to_have_count(0)

    remove = mod.get_by_role("button", name="Remove Max").element_handle()
    mod.get_by_role("button", name="Mute Max").click()
    expect(_member_item(member, "Max (you)").get_by_role("img", name="Muted")).to_be_visible()
    expect(member.locator("#mute-button")).to_have_attribute("aria-pressed", "true")
    expect(_member_item(mod, "Max").get_by_role("img", name="Muted")).to_be_visible()
    expect(mod.get_by_role("button", name="Mute Max")).to_have_count(0)
    # Only the control that changed was replaced: Remove is the same node, so a click on it that began while the
    # mute arrived still lands.
    assert remove.evaluate("el => el.isConnected")

    mod.get_by_role("button", name="Remove Max").click()
    expect(member.get_by_role("heading", name="You left the room")).to_be_visible()
    expect(mod.locator("#member-list li.member")).to_have_count(1)


# Chromium's fake camera paints a green picture; a tile "shows a camera" when enough of its pixels are that green
# (the canvas background, letterbox bars, captions and the video-muted avatar are not).
CAMERA_FRACTION = 0.1

_SAMPLE_HALVES_JS = """
() => {
  const v = document.querySelector('#stage video');
  const w = v.videoWidth, h = v.videoHeight;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, w, h);
  const px = g.getImageData(0, 0, w, h).data;
  const hits = [0, 0], counts = [0, 0];
  for (let y = 0; y < h; y += 4) {
    for (let x = 0; x < w; x += 4) {
      const i = (y * w + x) * 4;
      const r = px[i], gr = px[i + 1], b = px[i + 2];
      const half = x < w / 2 ? 0 : 1;
      counts[half] += 1;
      if (gr > 60 && gr > r + 40 && gr > b + 40) hits[half] += 1;
    }
  }
  return { width: w, height: h, left: hits[0] / counts[0], right: hits[1] / counts[1] };
}
"""


@pytest.mark.media
def test_each_member_sees_a_composite_of_two_non_black_tiles(new_page, parley_server, artifacts_dir):
    """Needs the media worker: the server answers the SDP and sends the mixed picture of both cameras."""
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")

    for name, page in (("Ada", ada), ("Bob", bob)):
        assert page.locator("#media-unavailable").is_hidden(), (
            f"{name}: the server joined the member without media (-32010 media_unavailable): no media worker answered"
        )
        try:
            page.wait_for_function(
                "(() => { const v = document.querySelector('#stage video');"
                " return v && v.readyState >= 2 && v.videoWidth > 0; })()",
                timeout=30_000,
            )
        except Exception as e:
            raise AssertionError(
                f"{name}: no mixed video arrived within 30 s (peer connection "
                f"{page.evaluate('window.parleyApp.session?.peerConnection?.connectionState')}); "
                f"server log:\n{parley_server.log_tail(2000)}"
            ) from e
    for name, page in (("Ada", ada), ("Bob", bob)):
        # The layout follows the second join; allow the compositor a few frames to place both cameras.
        try:
            page.wait_for_function(
                f"(() => {{ const r = ({_SAMPLE_HALVES_JS})(); return r.left > {CAMERA_FRACTION} && r.right > {CAMERA_FRACTION}; }})()",
                timeout=20_000,
            )
        except Exception as e:
            sample = page.evaluate(_SAMPLE_HALVES_JS)
            page.screenshot(path=str(artifacts_dir / f"participant-media-{name.lower()}-failed.png"))
            raise AssertionError(f"{name}: the mixed picture does not show both cameras: {sample}") from e
        sample = page.evaluate(_SAMPLE_HALVES_JS)
        assert sample["left"] > CAMERA_FRACTION and sample["right"] > CAMERA_FRACTION, f"{name}: {sample}"
        assert sample["width"] / sample["height"] == pytest.approx(16 / 9, rel=0.02)
        page.screenshot(path=str(artifacts_dir / f"participant-media-{name.lower()}.png"))


def test_an_added_camera_joins_as_a_device_member_and_leaves_with_leave(new_page, parley_server):
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, parley_server, room, "Ada")
    _join(bob, parley_server, room, "Bob")

    device_id = ada.evaluate(
        "async () => { const d = await window.parleyApp.session.addCamera(); window.__device = d; return d.memberId; }"
    )
    assert ada.evaluate("window.parleyApp.session.deviceList.length") == 1
    bob.wait_for_function(
        "(id) => window.parleyApp.session.members.get(id)?.type === 'device'", arg=device_id, timeout=15000
    )
    ada.evaluate("() => window.__device.leave()")
    bob.wait_for_function("(id) => !window.parleyApp.session.members.has(id)", arg=device_id, timeout=15000)
    assert ada.evaluate("window.parleyApp.session.deviceList.length") == 0
    assert ada.evaluate("window.parleyApp.session.active") is True
