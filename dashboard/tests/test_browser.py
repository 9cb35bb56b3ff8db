"""The dashboard in Debian's Chromium against a real Parley server (Daphne subprocess, own SQLite database).

An operator signs in, creates a room (after a refused attempt that keeps what was typed), mints and copies a
join link; a participant joins with that link and the operator mutes them live from the session page.
Screenshots of the main pages at 1280×800 and 390×844 land in ``test-artifacts/``.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest are used as parameters)
from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import (  # noqa: F401  (fixtures shared with the participant-page tests)
    ROOT,
    _server_env,
    artifacts_dir,
    chromium,
    parley_server,
)

pytestmark = [pytest.mark.browser]

VIEWPORTS = [(1280, 800), (390, 844)]


@pytest.fixture(scope="module")
def operator_account(parley_server):
    """An operator of the server's project, created with ``manage.py createoperator``: ``(username, password)``."""
    username, password = f"op-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    subprocess.run(
        # "--password=…" in one word: a generated password may start with "-", which argparse would take for an option.
        [sys.executable, "manage.py", "createoperator", "--username", username, f"--password={password}",
         "--project", "browser-tests"],
        cwd=ROOT, env=_server_env(parley_server.data_dir), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return username, password


@pytest.fixture
def operator_page(chromium, parley_server, operator_account):
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800},
        base_url=parley_server.url,
        permissions=["clipboard-read", "clipboard-write", "camera", "microphone"],
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.parley_console = []
    page.on("pageerror", lambda e: page.parley_console.append(f"pageerror: {e}"))
    username, password = operator_account
    page.goto("/dashboard/")
    expect(page).to_have_url(f"{parley_server.url}/dashboard/login/?next=/dashboard/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Rooms")).to_be_visible()
    yield page
    context.close()


def _shoot(page: Page, artifacts, name: str) -> None:
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(artifacts / f"dashboard-{name}-{width}x{height}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})


def _create_room(page: Page, room: str) -> None:
    page.goto("/dashboard/rooms/new/")
    page.locator("#id_name").fill("not a valid name!")
    page.locator("#id_display_name").fill("Browser town hall")
    page.locator("#id_quality").select_option("1080p")
    page.get_by_role("button", name="Create room").click()
    expect(page.locator(".field.has-error .error")).to_contain_text("letters, digits")
    expect(page.locator("#id_display_name")).to_have_value("Browser town hall")
    expect(page.locator("#id_quality")).to_have_value("1080p")
    page.locator("#id_name").fill(room)
    page.get_by_role("button", name="Create room").click()
    expect(page.get_by_role("heading", name="Rooms")).to_be_visible()
    expect(page.locator("#room-rows tr", has_text=room)).to_contain_text("1080p")


def _join_link(page: Page, room: str, user_name: str) -> str:
    page.locator("#room-rows tr", has_text=room).get_by_role("link", name="Copy a join link").click()
    page.locator("#id_user_name").fill(user_name)
    page.get_by_role("button", name="Create join link").click()
    link_input = page.locator("#join-link-url")
    expect(link_input).to_be_visible()
    link = link_input.input_value()
    assert f"/r/{room}/#token=" in link
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    return link


def test_an_operator_signs_in_creates_a_room_and_copies_a_join_link(
    operator_page,
    parley_server,
    artifacts_dir,
):
    page = operator_page
    room = f"dash-{uuid.uuid4().hex[:8]}"
    _create_room(page, room)
    _shoot(page, artifacts_dir, "rooms")
    link = _join_link(page, room, "Guest")
    _shoot(page, artifacts_dir, "join-link")

    # The token in the link opens this room for "Guest" on the server that minted it.
    from rooms.models import Project
    from rooms.tokens import room_token_verify

    project = Project(
        id=uuid.UUID(parley_server.project_id), name="browser-tests", token_secret=parley_server.token_secret
    )
    grant = room_token_verify(link.split("#token=", 1)[1], project=project)
    assert (grant.room_name, grant.user_name, grant.join_as) == (room, "Guest", "member")

    for name, path in [
        ("room-new", "/dashboard/rooms/new/"),
        ("sessions", "/dashboard/sessions/"),
        ("layouts", "/dashboard/layouts/"),
        ("api-keys", "/dashboard/api-keys/"),
        ("webhooks", "/dashboard/webhooks/"),
        ("recordings", "/dashboard/recordings/"),
        ("audit", "/dashboard/audit/"),
        ("usage", "/dashboard/usage/"),
    ]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        _shoot(page, artifacts_dir, name)
    expect(page.locator("canvas#usage-peak")).to_be_visible()
    assert page.evaluate("typeof Chart") == "function"

    # A custom layout: the preview follows the typed slots, the server keeps it and draws it from its slots.
    page.goto("/dashboard/layouts/")
    page.locator("#id_name").fill("talk-show")
    page.locator("#id_slots").fill("0 0 240 360\n240 0 120 180")
    expect(page.locator("#layout-preview rect.slot")).to_have_count(2)
    expect(page.locator("#layout-preview-status")).to_have_text("2 slots")
    page.locator("#id_slots").press_sequentially("\n240 180 120 180 screen")
    expect(page.locator("#layout-preview rect.slot.reserved")).to_have_count(1)
    page.get_by_role("button", name="Create layout").click()
    expect(page.locator("#messages")).to_contain_text("Layout “talk-show” created.")
    expect(page.locator('svg[aria-label="Layout talk-show: 3 slots"] rect.slot')).to_have_count(3)
    assert page.parley_console == []


def test_a_participant_joins_with_the_link_and_the_operator_mutes_them_live(
    operator_page,
    chromium,
    parley_server,
    artifacts_dir,
):
    page = operator_page
    room = f"live-{uuid.uuid4().hex[:8]}"
    _create_room(page, room)
    link = _join_link(page, room, "Pat")
    parts = urlsplit(link)
    participant_url = f"{parley_server.url}{parts.path}#{parts.fragment}"

    context = chromium.new_context(viewport={"width": 1280, "height": 800}, permissions=["camera", "microphone"])
    context.set_default_timeout(30_000)
    try:
        participant = context.new_page()
        participant.goto(participant_url)
        participant.get_by_role("button", name="Join", exact=True).click()
        expect(participant.locator("#meeting-screen")).to_be_visible()

        page.goto("/dashboard/sessions/")
        page.get_by_role("link", name="Browser town hall").first.click()
        expect(page.locator(".live-status")).to_have_text("live updates on")
        pat = page.locator("li.member", has_text="Pat")
        expect(pat).to_be_visible()
        _shoot(page, artifacts_dir, "session")

        pat.get_by_role("button", name="Mute", exact=True).click()
        expect(pat.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
        expect(page.locator("#messages")).to_contain_text("Pat: muted.")
        expect(participant.locator("#mute-button")).to_have_attribute("aria-pressed", "true")

        # The participant unmutes themselves: the dashboard follows through its live socket, without a reload.
        participant.locator("#mute-button").click()
        expect(pat.get_by_role("button", name="Mute", exact=True)).to_be_visible()
        expect(page.locator("#timeline")).to_contain_text("member.updated")
    finally:
        context.close()
