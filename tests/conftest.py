"""End-to-end fixtures: a real Parley server (Daphne subprocess) and Debian's Chromium driven by Playwright.

``parley_server`` starts ``daphne parley.asgi:application`` on a free 127.0.0.1 port with its own data directory,
a freshly migrated SQLite database and the embedded default (in-memory channel layer, media worker inside the web
process), so nothing is shared with the test database or another test run. Room tokens are minted with
``rooms.tokens.room_token_mint`` against a project created in that server's database.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rooms.permissions import DEFAULT_PERMISSIONS

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS_DIR = ROOT / "test-artifacts"
SERVER_START_TIMEOUT_S = 60.0

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
]

# A member token's permissions in these tests: the defaults plus hands (DESIGN §3).
MEMBER_PERMISSIONS = [*DEFAULT_PERMISSIONS, "room.self.raisehand", "room.self.lowerhand"]

_SETUP_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from rooms.models import Project
p = Project.objects.create(name="browser-tests")
print(json.dumps({"id": str(p.id), "token_secret": p.token_secret}))
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ParleyServer:
    """A running Daphne serving Parley: ``url`` (``http://127.0.0.1:PORT``), its ``data_dir`` and ``log_path``."""

    url: str
    data_dir: Path
    log_path: Path
    project_id: str
    token_secret: str
    process: subprocess.Popen = field(repr=False)

    def token(self, *, room_name: str, user_name: str, permissions: list[str] | None = None, **claims) -> str:
        """A room token of the server's project (``expires_in`` 1 h unless given)."""
        from rooms.models import Project
        from rooms.tokens import room_token_mint

        project = Project(id=uuid.UUID(self.project_id), name="browser-tests", token_secret=self.token_secret)
        expires_in = claims.pop("expires_in", 3600)
        body = {"room_name": room_name, "user_name": user_name, **claims}
        body["permissions"] = list(MEMBER_PERMISSIONS if permissions is None else permissions)
        token, _ = room_token_mint(project=project, claims=body, expires_in=expires_in)
        return token

    def room_url(self, room_name: str, token: str | None = None) -> str:
        return f"{self.url}/r/{room_name}/" + (f"#token={token}" if token else "")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _server_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{data_dir / 'parley.sqlite3'}",
            "PARLEY_DATA_DIR": str(data_dir),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PARLEY_ICE_SERVERS": "[]",
            "PARLEY_ICE_HOST_ADDRESSES": "127.0.0.1",
            "PARLEY_MEDIA_WORKER": "embedded",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "DJANGO_SETTINGS_MODULE": "parley.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def parley_server(tmp_path_factory) -> ParleyServer:
    """Start Daphne on a free port (migrated SQLite in a temp data dir); stop it at the end of the session."""
    data_dir = tmp_path_factory.mktemp("parley-live")
    env = _server_env(data_dir)
    setup = subprocess.run(
        [sys.executable, "-c", _SETUP_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    if setup.returncode != 0:
        pytest.fail(f"could not migrate the live server's database:\n{setup.stderr[-4000:]}")
    project = json.loads(setup.stdout.strip().splitlines()[-1])

    port = _free_port()
    log_path = data_dir / "daphne.log"
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "parley.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ParleyServer(
        url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        log_path=log_path,
        project_id=project["id"],
        token_secret=project["token_secret"],
        process=process,
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/r/", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"daphne did not answer within {SERVER_START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")
        time.sleep(0.2)
    yield server
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright (its own browser download does not work here)."""
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing: install Debian's chromium (scripts/system-deps.sh) to run browser tests"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, parley_server):
    """Factory of pages, each in its own browser context (a separate participant); all closed afterwards.

    Console errors of the pages are attached to a failing test's report through ``page.parley_console``.
    """
    contexts = []

    def _new_page():
        context = chromium.new_context(
            viewport={"width": 1280, "height": 800}, permissions=["camera", "microphone"], base_url=parley_server.url
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.parley_console = []
        page.on("console", lambda m: page.parley_console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.parley_console.append(f"pageerror: {e}"))
        return page

    yield _new_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
