"""The participant page's added sources, positions, keyboard use and phone layout, in Debian's Chromium against
a real Parley server (Daphne subprocess with the embedded media worker; fixtures in ``tests/conftest.py``).

Chromium's fake devices stand in for cameras and microphones; an added camera or microphone is a child member
``type: "device"`` with its own peer connection (``room.device.add``). Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_participant_page import MODERATOR_PERMISSIONS, _join, _member_item, _room
from tests.conftest import MEMBER_PERMISSIONS

pytestmark = [pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
# Adding a source waits for the media worker's SDP answer; the machine may be busy: a generous deadline.
SOURCE_TIMEOUT_MS = 60_000


def _open_devices(page: Page) -> None:
    summary = page.locator("#devices-panel summary")
    if page.locator("#devices-panel").get_attribute("open") is None:
        summary.click()
    expect(page.get_by_role("heading", name="More sources")).to_be_visible()


def _sources_of(page: Page, parent_id: str) -> list[dict]:
    """The child members of ``parent_id`` the server has announced to ``page``'s session."""
    return page.evaluate(
        """(parent) => [...window.parleyApp.session.members.values()]
            .filter((m) => m.parent_id === parent)
            .map((m) => ({id: m.id, type: m.type, audio_muted: m.audio_muted, video_muted: m.video_muted}))""",
        parent_id,
    )


def _ada_and_bob(new_page, server) -> tuple[Page, Page]:
    """Ada, then Bob, join a new room (default member permissions)."""
    room = _room()
    ada, bob = new_page(), new_page()
    _join(ada, server, room, "Ada")
    _join(bob, server, room, "Bob")
    return ada, bob


def _ada_adds_a_source(new_page, server, button: str, kind: str) -> tuple[Page, Page, list[dict]]:
    """Ada and Bob join; Ada opens Devices and presses ``button``. Returns ``(ada, bob, sources)`` once Ada's page
    lists the source and Bob's member list shows it as "Ada — <kind>": ``sources`` are the child members of Ada
    that the server announced to Bob."""
    ada, bob = _ada_and_bob(new_page, server)
    ada_id = ada.evaluate("window.parleyApp.session.memberId")
    _open_devices(ada)
    assert ada.locator(f"#add-{kind}-select option").count() >= 1
    ada.get_by_role("button", name=button).click()
    expect(ada.locator("#source-list li")).to_have_count(1, timeout=SOURCE_TIMEOUT_MS)
    expect(ada.locator("#source-list li")).to_contain_text(f"{kind.capitalize()}:")
    try:
        expect(_member_item(bob, f"Ada — {kind}")).to_be_visible(timeout=SOURCE_TIMEOUT_MS)
    except AssertionError as e:
        members = bob.evaluate(
            "[...window.parleyApp.session.members.values()].map((m) => [m.name, m.type, m.parent_id])"
        )
        raise AssertionError(f"Bob's session knows {members}; console: {bob.parley_console[-10:]}") from e
    expect(_member_item(bob, f"Ada — {kind}").get_by_role("img", name=f"Added {kind}")).to_be_visible()
    # People are counted, their sources are not.
    expect(bob.locator("#member-count")).to_have_text("(2)")
    return ada, bob, _sources_of(bob, ada_id)


def test_add_camera_sends_a_second_camera_that_the_others_see_and_stop_ends_it(new_page, parley_server, artifacts_dir):
    ada, bob, sources = _ada_adds_a_source(new_page, parley_server, "Add camera", "camera")
    assert len(sources) == 1 and sources[0]["type"] == "device" and sources[0]["video_muted"] is False, sources
    # The source sends a live camera track on its own peer connection, which the media worker answered.
    assert ada.evaluate("window.parleyApp.sources[0].device.localStream.getVideoTracks()[0].readyState") == "live"
    ada.wait_for_function(
        "window.parleyApp.sources[0].device.peerConnection.connectionState === 'connected'", timeout=45_000
    )
    ada.screenshot(path=str(artifacts_dir / "participant-added-camera.png"))

    ada.locator("#source-list").get_by_role("button", name="Stop").click()
    expect(ada.locator("#source-list li")).to_have_count(0)
    bob.wait_for_function("(id) => !window.parleyApp.session.members.has(id)", arg=sources[0]["id"])
    expect(_member_item(bob, "Ada — camera")).to_have_count(0)
    assert ada.evaluate("window.parleyApp.session.deviceList.length") == 0
    assert ada.evaluate("window.parleyApp.session.active") is True


def test_add_microphone_sends_a_second_microphone(new_page, parley_server):
    ada, _, sources = _ada_adds_a_source(new_page, parley_server, "Add microphone", "microphone")
    assert len(sources) == 1 and sources[0]["type"] == "device", sources
    assert sources[0]["audio_muted"] is False and sources[0]["video_muted"] is True, sources
    assert ada.evaluate("window.parleyApp.sources[0].device.localStream.getAudioTracks().length") == 1
    assert ada.evaluate("window.parleyApp.sources[0].device.localStream.getVideoTracks().length") == 0


def test_a_moderator_removing_an_added_camera_stops_it_on_the_owners_page(new_page, parley_server):
    room = _room()
    mia, ada = new_page(), new_page()
    _join(mia, parley_server, room, "Mia", permissions=MODERATOR_PERMISSIONS)
    _join(ada, parley_server, room, "Ada")

    _open_devices(ada)
    ada.get_by_role("button", name="Add camera").click()
    expect(ada.locator("#source-list li")).to_have_count(1, timeout=SOURCE_TIMEOUT_MS)
    ada.evaluate("window.__track = window.parleyApp.sources[0].device.localStream.getVideoTracks()[0]")

    mia.get_by_role("button", name="Remove Ada's camera").click()

    expect(ada.locator("#source-list li")).to_have_count(0)
    ada.wait_for_function("window.__track.readyState === 'ended'")
    assert ada.evaluate("window.parleyApp.session.deviceList.length") == 0
    expect(_member_item(mia, "Ada — camera")).to_have_count(0)
    expect(_member_item(mia, "Ada")).to_be_visible()
    assert ada.evaluate("window.parleyApp.session.active") is True


def test_the_sources_panel_needs_the_additional_source_permission(new_page, parley_server):
    room = _room()
    page = new_page()
    permissions = [p for p in MEMBER_PERMISSIONS if p != "room.self.additional_source"]
    _join(page, parley_server, room, "Ada", permissions=permissions)
    page.locator("#devices-panel summary").click()
    expect(page.locator("#meeting-camera-select")).to_be_visible()
    expect(page.get_by_role("button", name="Add camera")).to_be_hidden()
    expect(page.get_by_role("button", name="Add microphone")).to_be_hidden()


def test_a_moderator_places_a_member_and_members_without_the_permission_cannot(new_page, parley_server):
    room = _room()
    mia, max_ = new_page(), new_page()
    _join(mia, parley_server, room, "Mia", permissions=[*MODERATOR_PERMISSIONS, "room.member.set_position"])
    _join(max_, parley_server, room, "Max")
    max_id = max_.evaluate("window.parleyApp.session.memberId")

    picker = mia.get_by_role("combobox", name="Position of Max")
    expect(picker).to_have_value("auto")
    picker.select_option("off-canvas")
    max_.wait_for_function(
        "(id) => window.parleyApp.session.members.get(id)?.position === 'off-canvas'", arg=max_id, timeout=15_000
    )
    expect(mia.get_by_role("combobox", name="Position of Max")).to_have_value("off-canvas")
    expect(max_.locator("select.position")).to_have_count(0)


def test_a_keyboard_only_moderator_keeps_the_focus_through_list_updates(new_page, parley_server):
    room = _room()
    mia, max_ = new_page(), new_page()
    mia.goto(
        parley_server.room_url(
            room,
            parley_server.token(
                room_name=room, user_name="Mia", permissions=[*MODERATOR_PERMISSIONS, "room.member.audio_unmute"]
            ),
        )
    )
    join = mia.get_by_role("button", name="Join", exact=True)
    expect(join).to_be_enabled()
    join.focus()
    mia.keyboard.press("Enter")
    expect(mia.locator("#meeting-screen")).to_be_visible(timeout=30_000)
    expect(mia.locator("#meeting-title")).to_be_focused()
    _join(max_, parley_server, room, "Max")

    mute_max = mia.get_by_role("button", name="Mute Max")
    for _ in range(80):  # Tab through the page until the moderator's "Mute Max" has the focus
        if mute_max.evaluate("(el) => el === document.activeElement"):
            break
        mia.keyboard.press("Tab")
    expect(mute_max).to_be_focused()
    mia.keyboard.press("Enter")
    expect(max_.locator("#mute-button")).to_have_attribute("aria-pressed", "true")
    # Max's item is rebuilt with "Unmute Max" in place of "Mute Max": the focus stays on Max's item.
    expect(mia.get_by_role("button", name="Unmute Max")).to_be_visible()
    assert mia.evaluate("document.activeElement.closest('li.member')?.textContent.includes('Max')") is True
    mia.keyboard.press("Enter")
    expect(max_.locator("#mute-button")).to_have_attribute("aria-pressed", "false")


def test_the_page_fits_a_390_by_844_phone(new_page, parley_server, artifacts_dir):
    room = _room()
    ada, bob = new_page(), new_page()
    ada.set_viewport_size(PHONE)
    ada.goto(parley_server.room_url(room, parley_server.token(room_name=room, user_name="Ada")))
    expect(ada.get_by_role("button", name="Join", exact=True)).to_be_enabled()
    assert ada.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ada.screenshot(path=str(artifacts_dir / "participant-prejoin-390x844.png"), full_page=True)

    _join(ada, parley_server, room, "Ada", permissions=[*MODERATOR_PERMISSIONS, "room.self.additional_source"])
    _join(bob, parley_server, room, "Bob")
    expect(_member_item(ada, "Bob")).to_be_visible()
    _open_devices(ada)
    assert ada.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Mute", "Camera off", "Raise hand", "Leave", "Add camera", "Remove Bob"):
        control = ada.get_by_role("button", name=name, exact=True)
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
        # Touch targets: at least 24 CSS px (WCAG 2.2 target size, minimum).
        assert box["height"] >= 24 and box["width"] >= 24, (name, box)
    ada.screenshot(path=str(artifacts_dir / "participant-meeting-390x844.png"), full_page=True)


def test_a_screen_share_shows_under_its_member_and_ends_with_the_button(new_page, parley_server):
    ada, bob = _ada_and_bob(new_page, parley_server)

    share = ada.get_by_role("button", name="Share screen")
    share.click()
    expect(share).to_have_attribute("aria-pressed", "true", timeout=SOURCE_TIMEOUT_MS)
    expect(_member_item(bob, "Ada — screen")).to_be_visible()
    expect(_member_item(ada, "Ada — screen").get_by_role("button", name="Stop Ada's screen")).to_be_visible()
    screen_id = ada.evaluate("window.parleyApp.screenShare.memberId")
    assert bob.evaluate("(id) => window.parleyApp.session.members.get(id)?.type", screen_id) == "screen"

    share.click()
    expect(share).to_have_attribute("aria-pressed", "false")
    bob.wait_for_function("(id) => !window.parleyApp.session.members.has(id)", arg=screen_id)
    expect(_member_item(bob, "Ada — screen")).to_have_count(0)
    assert ada.evaluate("window.parleyApp.session.screenShareList.length") == 0
