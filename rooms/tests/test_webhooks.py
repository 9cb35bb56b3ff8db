"""The webhook outbox against a real HTTP receiver on 127.0.0.1: signing, body, filters, retries, failures."""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from rooms import tasks, webhooks
from rooms.events import event_emit
from rooms.exceptions import InvalidParameter
from rooms.models import RoomSessionEvent, WebhookDelivery
from rooms.tests.factories import ProjectFactory, RoomSessionFactory, WebhookEndpointFactory

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


# --- a real receiver --------------------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers with the next scripted ``(status, body)`` (then ``default``). A status of
    ``"hang"`` holds the request open until the receiver stops (to provoke the sender's timeout)."""

    url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    script: list[tuple[int | str, str]] = field(default_factory=list)
    default: tuple[int | str, str] = (200, "ok")
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *responses: tuple[int | str, str]) -> None:
        with self.lock:
            self.script.extend(responses)

    def next_answer(self) -> tuple[int | str, str]:
        with self.lock:
            return self.script.pop(0) if self.script else self.default


@pytest.fixture
def receiver():
    """A ``ThreadingHTTPServer`` on a free loopback port in a thread; yields its ``Receiver``."""
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            rec: Receiver = state["receiver"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with rec.lock:
                rec.requests.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
            status, text = rec.next_answer()
            if status == "hang":
                rec.stop.wait(10)
                return
            data = text.encode()
            self.send_response(int(status))
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/parley")
    state["receiver"] = rec
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def celery_in_process(settings):
    """Run Celery tasks in-process (the embedded default), also when REDIS_URL configures a broker, and keep
    webhook timings short."""
    from parley.celery import app

    was = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.PARLEY_WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS = 0.05
    settings.PARLEY_WEBHOOK_MAX_AGE_SECONDS = 3600
    yield
    app.conf.task_always_eager = was


def docs_snippet(language: str) -> str:
    """The code block of ``docs/webhooks.md`` under "Verifying the signature — <language>"."""
    text = DOCS.read_text()
    section = text.split(f"## Verifying the signature — {language}", 1)[1]
    match = re.search(r"```\w+\n(.*?)```", section, re.S)
    assert match, f"no {language} snippet in {DOCS}"
    return match.group(1)


def documented_python_verifier():
    namespace: dict = {}
    exec(compile(docs_snippet("Python"), str(DOCS), "exec"), namespace)  # the documented code, as integrators use it
    return namespace["verify_parley_signature"]


def emit_committed(django_capture_on_commit_callbacks, event_type="member.joined", *, room_session=None, **kw):
    """Emit an event inside a transaction and run its after-commit work (broadcast, outbox) as a commit would."""
    room_session = room_session or RoomSessionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            body = event_emit(
                event_type,
                project_id=room_session.project_id,
                room_id=room_session.room_id,
                room_session_id=room_session.id,
                params=kw.pop("params", {"member": {"id": str(uuid.uuid4()), "name": "Ada", "audio_muted": False}}),
                **kw,
            )
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_due(delivery: WebhookDelivery, limit_s: float = 5.0) -> None:
    delay = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert delay < limit_s, f"next attempt {delay:.2f} s away"
    time.sleep(max(0.0, delay) + 0.01)


# --- signing and body -------------------------------------------------------------------------------------------


def test_a_delivery_is_signed_as_documented_and_carries_the_persisted_event(
    db, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)

    body = emit_committed(django_capture_on_commit_callbacks, room_session=session)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/parley"
    verify = documented_python_verifier()
    assert verify(endpoint.secret, request.body, request.headers["Parley-Signature"])
    assert not verify("another-secret", request.body, request.headers["Parley-Signature"])
    assert not verify(endpoint.secret, request.body + b" ", request.headers["Parley-Signature"])

    event = RoomSessionEvent.objects.get(id=body["id"])
    assert request.json() == body == webhooks.event_body(event)
    assert request.json()["room_session_id"] == str(session.id)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Parley-Webhooks/1"
    assert request.headers["Parley-Event-Id"] == request.headers["Idempotency-Key"] == body["id"]
    assert request.headers["Parley-Event-Type"] == "member.joined"

    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event=event)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 1 and delivery.delivered_at is not None
    assert delivery.last_status_code == 200 and delivery.last_response_excerpt == "ok"
    [entry] = delivery.attempt_log
    assert entry["status_code"] == 200 and entry["error"] == "" and entry["response_excerpt"] == "ok"
    assert entry["duration_ms"] >= 0 and entry["at"]


def test_the_documented_verifier_rejects_a_stale_timestamp(db):
    verify = documented_python_verifier()
    raw = b'{"id":"x"}'
    header = webhooks.signature_header("s3cret", raw, timestamp=1_700_000_000)
    assert verify("s3cret", raw, header, now=1_700_000_000 + 299)
    assert not verify("s3cret", raw, header, now=1_700_000_000 + 301)
    assert not verify("s3cret", raw, header, now=1_700_000_000 - 301)
    assert not verify("s3cret", raw, "garbage")
    assert not verify("s3cret", raw, "t=1700000000")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the documented Node snippet")
def test_the_documented_node_verifier_accepts_parleys_signature(db, tmp_path):
    raw = json.dumps({"id": "e1", "params": {"name": "Zoë"}}, ensure_ascii=False).encode()
    now = int(time.time())
    header = webhooks.signature_header("s3cret", raw, timestamp=now)
    (tmp_path / "verify.js").write_text(docs_snippet("Node"))
    (tmp_path / "body.bin").write_bytes(raw)
    script = (
        "const {verifyParleySignature} = require('./verify.js');"
        "const raw = require('fs').readFileSync('body.bin');"
        f"console.log(JSON.stringify([verifyParleySignature('s3cret', raw, '{header}', {now}),"
        f"verifyParleySignature('wrong', raw, '{header}', {now}),"
        f"verifyParleySignature('s3cret', raw, '{header}', {now + 301})]));"
    )
    out = subprocess.run(["node", "-e", script], cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, False, False]


def test_the_secret_and_the_body_never_reach_the_logs(db, receiver, caplog, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer((500, "nope"))
    caplog.set_level(logging.DEBUG)

    emit_committed(django_capture_on_commit_callbacks, room_session=session, params={"member": {"name": "Marker-7f3a"}})

    assert len(receiver.requests) == 1
    assert "webhook delivery" in caplog.text  # the attempt is logged…
    assert endpoint.secret not in caplog.text  # …without the secret
    assert "Marker-7f3a" not in caplog.text  # …or the body


# --- which endpoints get what -----------------------------------------------------------------------------------


def test_only_enabled_endpoints_of_the_project_that_want_the_event_receive_it(
    db, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    project = session.project
    every = WebhookEndpointFactory(project=project, url=receiver.url + "?all")
    joined_only = WebhookEndpointFactory(project=project, url=receiver.url + "?joined", event_types=["member.joined"])
    ended_only = WebhookEndpointFactory(project=project, url=receiver.url + "?ended", event_types=["room.ended"])
    WebhookEndpointFactory(project=project, url=receiver.url + "?disabled", enabled=False)
    WebhookEndpointFactory(project=ProjectFactory(), url=receiver.url + "?other-project")

    emit_committed(django_capture_on_commit_callbacks, "room.ended", room_session=session, params={})

    assert sorted(r.path for r in receiver.requests) == ["/hooks/parley?all", "/hooks/parley?ended"]
    assert {d.endpoint_id for d in WebhookDelivery.objects.all()} == {every.id, ended_only.id}
    assert not WebhookDelivery.objects.filter(endpoint=joined_only).exists()


def test_ephemeral_and_unsubscribable_events_are_not_sent(db, receiver, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    WebhookEndpointFactory(project=session.project, url=receiver.url)

    emit_committed(django_capture_on_commit_callbacks, "member.talking", room_session=session)
    emit_committed(django_capture_on_commit_callbacks, "room.updated", room_session=session, params={})

    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


def test_enqueueing_an_event_twice_creates_and_sends_one_delivery(db, receiver, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    body = emit_committed(django_capture_on_commit_callbacks, room_session=session)

    assert webhooks.deliveries_enqueue(event_id=body["id"]) == []  # already delivered: nothing to send

    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    assert len(receiver.requests) == 1


# --- failures and retries ---------------------------------------------------------------------------------------


def test_a_500_then_200_is_retried_by_the_sweep_and_delivered_with_two_log_entries(
    db, receiver, django_capture_on_commit_callbacks
):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer((500, "upstream exploded"), (200, "thanks"))

    before = timezone.now()
    emit_committed(django_capture_on_commit_callbacks, room_session=session)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.attempts == 1 and delivery.last_status_code == 500
    assert delivery.last_response_excerpt == "upstream exploded"
    # First back-off: base × 2^0 = 0.05 s, jittered down by at most 25 %.
    assert before + timedelta(seconds=0.0375) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=0.05)

    wait_until_due(delivery)
    tasks.webhook_deliveries_retry_due()

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 2
    assert [e["status_code"] for e in delivery.attempt_log] == [500, 200]
    assert [e["response_excerpt"] for e in delivery.attempt_log] == ["upstream exploded", "thanks"]
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body  # same event, same body; fresh signature
    verify = documented_python_verifier()
    assert all(verify(endpoint.secret, r.body, r.headers["Parley-Signature"]) for r in receiver.requests)


def test_a_timeout_is_logged_as_a_failed_attempt(db, settings, receiver, django_capture_on_commit_callbacks):
    settings.PARLEY_WEBHOOK_TIMEOUT_SECONDS = 0.3
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer(("hang", ""))

    started = time.monotonic()
    emit_committed(django_capture_on_commit_callbacks, room_session=session)
    assert time.monotonic() - started < 5.0  # the receiver would have held it for 10 s

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1
    [entry] = delivery.attempt_log
    assert entry["status_code"] is None and "timeout" in entry["error"]
    assert 250 <= entry["duration_ms"] < 2000
    assert delivery.last_error == entry["error"]


def test_a_refused_connection_is_logged_as_a_failed_attempt(db, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=f"http://127.0.0.1:{free_port()}/hook")

    emit_committed(django_capture_on_commit_callbacks, room_session=session)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1
    assert delivery.attempt_log[0]["status_code"] is None
    assert delivery.attempt_log[0]["error"] == "connection refused"


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(db, receiver, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer((302, "elsewhere"))

    emit_committed(django_capture_on_commit_callbacks, room_session=session)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.last_status_code == 302
    assert len(receiver.requests) == 1


def test_a_delivery_still_failing_at_the_max_age_ends_failed(db, settings, receiver):
    settings.PARLEY_WEBHOOK_MAX_AGE_SECONDS = 1.0
    settings.PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS = 0.05
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.default = (503, "maintenance")
    event = RoomSessionEvent.objects.create(project=session.project, room_session=session, name="room.ended")
    deadline = event.created_at + timedelta(seconds=1.0)

    webhooks.deliveries_enqueue(event_id=event.id)  # first attempt at once, as after an event's commit

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    give_up = time.monotonic() + 10
    while delivery.status == WebhookDelivery.Status.PENDING and time.monotonic() < give_up:
        assert delivery.next_attempt_at <= deadline  # never scheduled past the max age
        wait_until_due(delivery)
        tasks.webhook_deliveries_retry_due()
        delivery.refresh_from_db()

    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts >= 2  # retried with back-off (0.05 s, 0.1 s, 0.2 s, …) until the max age
    assert delivery.attempts == len(delivery.attempt_log) == len(receiver.requests)
    assert all(e["status_code"] == 503 for e in delivery.attempt_log)
    assert datetime.fromisoformat(delivery.attempt_log[-1]["at"]) >= deadline
    assert tasks.webhook_deliveries_retry_due() == 0  # a failed delivery is not retried
    assert len(receiver.requests) == delivery.attempts


def test_the_response_excerpt_is_capped_at_1000_characters(db, receiver, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer((400, "é" * 5000))

    emit_committed(django_capture_on_commit_callbacks, room_session=session)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.last_response_excerpt == "é" * 1000
    assert delivery.attempt_log[0]["response_excerpt"] == "é" * 1000


def test_a_delivery_being_attempted_is_not_picked_by_the_sweep(db, receiver):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    event = RoomSessionEvent.objects.create(project=session.project, room_session=session, name="room.ended")
    [delivery_id] = webhooks.deliveries_create(event=event, endpoints=[endpoint])
    assert webhooks.deliveries_due() == [delivery_id]

    assert webhooks._claim(delivery_id, timeout=2.0)  # a worker takes it…
    assert webhooks.deliveries_due() == []  # …so the sweep leaves it alone
    assert not webhooks._claim(delivery_id, timeout=2.0)  # …and so does a second worker
    assert webhooks.delivery_attempt(delivery_id=delivery_id) is None
    assert receiver.requests == []


def test_a_disabled_endpoint_fails_its_pending_deliveries_without_sending(db, receiver):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    event = RoomSessionEvent.objects.create(project=session.project, room_session=session, name="room.ended")
    [delivery_id] = webhooks.deliveries_create(event=event, endpoints=[endpoint])
    endpoint.enabled = False
    endpoint.save()

    tasks.webhook_deliveries_retry_due()

    delivery = WebhookDelivery.objects.get(id=delivery_id)
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.last_error == "endpoint disabled"
    assert receiver.requests == []


def test_backoff_doubles_from_the_base_and_is_capped_at_an_hour():
    rng = random.Random(7)
    for attempts, full in [(1, 5), (2, 10), (3, 20), (4, 40), (10, 2560), (11, 3600), (30, 3600)]:
        delay = webhooks.backoff_seconds(attempts, base=5.0, rng=rng)
        assert 0.75 * full <= delay <= full


# --- SSRF guard ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
    ],
)
def test_the_ssrf_guard_refuses_non_public_addresses_unless_allowed(settings, url):
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(InvalidParameter) as excinfo:
        webhooks.webhook_url_check(url)
    assert excinfo.value.attribute == "url"
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.webhook_url_check(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://a/", "http:///x", "hook", ""])
def test_only_http_and_https_urls_with_a_host_are_accepted(url):
    with pytest.raises(InvalidParameter):
        webhooks.webhook_url_check(url)


def test_public_addresses_pass_the_guard(settings):
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.webhook_url_check("https://93.184.215.14/hook") == ["93.184.215.14"]
    assert webhooks.webhook_url_check("http://[2606:4700::1]:8443/hook") == ["2606:4700::1"]


def test_the_guard_is_applied_again_at_send_time(db, settings, receiver, django_capture_on_commit_callbacks):
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)  # registered while allowed
    settings.PARLEY_WEBHOOK_ALLOW_PRIVATE = False

    emit_committed(django_capture_on_commit_callbacks, room_session=session)

    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.attempts == 1 and delivery.last_status_code is None
    assert "private" in delivery.last_error


# --- with a broker and a worker -------------------------------------------------------------------------------


@pytest.fixture
def celery_worker_app():
    """A Celery app on an in-process ``memory://`` broker (never a shared Redis) with a real worker thread; the
    shared tasks of ``rooms.tasks`` resolve to it while it is current."""
    from celery import Celery, current_app
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connection

    previous = current_app._get_current_object()
    app = Celery("parley-webhooks-test", set_as_current=False)
    app.config_from_object(
        {
            "broker_url": "memory://",
            "task_always_eager": False,
            "task_acks_late": True,
            "task_default_queue": "parley",
            "worker_hijack_root_logger": False,
            "broker_transport_options": {"polling_interval": 0.05},
        }
    )

    def close_db(**kwargs):  # the worker thread's own connection
        connection.close()

    task_postrun.connect(close_db, weak=False)
    try:
        # Stopping takes a few seconds: the worker notices shutdown between 2 s broker polls.
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield app
    finally:
        task_postrun.disconnect(close_db)
        previous.set_current()
        previous.set_default()


def wait_for(predicate, timeout_s: float = 10.0):
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_the_worker_retries_with_a_countdown_until_delivered(celery_worker_app, receiver, settings):
    settings.PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS = 0.2
    session = RoomSessionFactory()
    endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
    receiver.answer((500, "not yet"), (200, "done"))

    with transaction.atomic():
        body = event_emit(
            "room.ended", project_id=session.project_id, room_id=session.room_id, room_session_id=session.id, params={}
        )
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    wait_for(lambda: WebhookDelivery.objects.filter(id=delivery.id, status="delivered").exists())
    delivery.refresh_from_db()
    assert [e["status_code"] for e in delivery.attempt_log] == [500, 200]
    first, second = (datetime.fromisoformat(e["at"]) for e in delivery.attempt_log)
    assert second - first >= timedelta(seconds=0.15)  # the retry waited for its countdown (0.15..0.2 s)
    assert [r.json()["id"] for r in receiver.requests] == [body["id"], body["id"]]


@pytest.mark.django_db(transaction=True)
async def test_the_embedded_sweep_loop_retries_due_deliveries_until_cancelled(receiver):
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    def setup() -> str:
        session = RoomSessionFactory()
        endpoint = WebhookEndpointFactory(project=session.project, url=receiver.url)
        event = RoomSessionEvent.objects.create(project=session.project, room_session=session, name="room.ended")
        [delivery_id] = webhooks.deliveries_create(event=event, endpoints=[endpoint])
        return delivery_id

    delivery_id = await sync_to_async(setup)()
    loop_task = asyncio.ensure_future(webhooks.retry_sweep_loop(interval_s=0.05))
    try:
        delivered = WebhookDelivery.objects.filter(id=delivery_id, status=WebhookDelivery.Status.DELIVERED)
        for _ in range(250):
            if await delivered.aexists():
                break
            await asyncio.sleep(0.02)
    finally:
        loop_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop_task

    delivery = await WebhookDelivery.objects.aget(id=delivery_id)
    await sync_to_async(connections.close_all)()  # the async ORM's thread keeps its own connection
    assert delivery.status == WebhookDelivery.Status.DELIVERED and len(receiver.requests) == 1
