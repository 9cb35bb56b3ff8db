"""Webhook deliveries: the durable outbox (DESIGN §7).

- ``deliveries_enqueue(event_id=...)``: called by ``rooms.events.event_emit`` after commit. Creates one
  ``WebhookDelivery`` per enabled endpoint of the event's project that wants the event (idempotent: one row per
  endpoint and event), then schedules ``rooms.tasks.webhook_delivery_attempt(delivery_id)`` for each.
- ``delivery_attempt(delivery_id=...)``: the body of that task. Claims the row (a short lease so that a second
  worker or the beat sweep cannot send the same delivery at the same time), POSTs the signed body, records the
  outcome in ``attempt_log`` and either marks it ``delivered``, schedules the next attempt (exponential back-off
  with jitter, capped at 1 h) or, past ``PARLEY_WEBHOOK_MAX_AGE_SECONDS`` since the event, marks it ``failed``.
- ``deliveries_retry_due()``: the beat sweep (every 30 s) — dispatches pending deliveries whose
  ``next_attempt_at`` has come. In eager mode (no broker) it is the only thing that retries, so a failing
  receiver never blocks the request that emitted the event beyond its first attempt. ``retry_sweep_loop`` runs
  the sweep in a process without beat.

Request sent: ``POST <endpoint url>`` with the body of ``event_body`` (compact JSON) and the headers of
``delivery_headers``; ``Parley-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
Secrets and bodies never reach the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from parley.db import close_stale_connections
from rooms.exceptions import InvalidParameter
from rooms.models import RoomSessionEvent, WebhookDelivery, WebhookEndpoint
from rooms.urlguard import host_addresses, refused_addresses

logger = logging.getLogger(__name__)

USER_AGENT = "Parley-Webhooks/1"
RESPONSE_EXCERPT_MAX_CHARS = 1000
BACKOFF_CAP_SECONDS = 3600.0
# Each back-off delay is drawn uniformly from [JITTER_LOW × delay, delay] so that retries of many deliveries
# to one recovering receiver do not arrive in lock-step.
JITTER_LOW = 0.75
ATTEMPT_LOG_MAX_ENTRIES = 100
RETRY_SWEEP_BATCH = 200
# A claimed delivery is invisible to other workers for the request timeout plus this margin (seconds).
LEASE_MARGIN_SECONDS = 30.0
# A countdown task may fire slightly before ``next_attempt_at`` (clock skew between worker hosts).
CLAIM_EARLY_TOLERANCE = timedelta(seconds=1)
READ_MAX_BYTES = 8192


# --- URL checks (SSRF guard) ---------------------------------------------------------------------------------


def _split_url(url: str, *, attribute: str) -> tuple[str, str, int]:
    if not isinstance(url, str) or not url or len(url) > 1000:
        raise InvalidParameter("Must be an http:// or https:// URL of at most 1000 characters.", attribute=attribute)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidParameter("Not a valid URL.", attribute=attribute) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter("Must be an http:// or https:// URL with a host.", attribute=attribute)
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def webhook_url_check(url: str, *, attribute: str = "url") -> list[str]:
    """Validate a webhook target and return the addresses it resolves to.

    Only ``http``/``https`` URLs with a host. Unless ``PARLEY_WEBHOOK_ALLOW_PRIVATE``, every address the host
    resolves to must be globally routable (the SSRF guard: no loopback, private, link-local, CGNAT, reserved or
    multicast target). Raises ``InvalidParameter`` (HTTP 422) with ``attribute``.
    """
    _scheme, host, port = _split_url(url, attribute=attribute)
    try:
        addresses = host_addresses(host, port)
    except (OSError, UnicodeError) as exc:
        raise InvalidParameter(f"The host '{host}' does not resolve.", attribute=attribute) from exc
    if not settings.PARLEY_WEBHOOK_ALLOW_PRIVATE and refused_addresses(addresses):
        raise InvalidParameter(
            "The URL resolves to a private, loopback or link-local address, which is not allowed.",
            attribute=attribute,
        )
    return addresses


# --- body, signature, headers ---------------------------------------------------------------------------------


def event_body(event: RoomSessionEvent) -> dict:
    """The webhook body of a persisted event, identical to what ``event_emit`` returned for it:
    ``{"id", "event_type", "project_id", "room_id", "room_session_id", "timestamp" (unix s, float), "params"}``."""
    return {
        "id": str(event.id),
        "event_type": event.name,
        "project_id": str(event.project_id),
        "room_id": str(event.room_id) if event.room_id else None,
        "room_session_id": str(event.room_session_id) if event.room_session_id else None,
        "timestamp": event.created_at.timestamp(),
        "params": event.payload,
    }


def body_encode(body: dict) -> bytes:
    """The raw bytes sent and signed: compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature_header(secret: str, raw_body: bytes, *, timestamp: int | None = None) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint secret>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode() + raw_body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def delivery_headers(*, secret: str, raw_body: bytes, event_id: str, event_type: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Parley-Signature": signature_header(secret, raw_body),
        "Parley-Event-Id": event_id,
        "Parley-Event-Type": event_type,
        "Idempotency-Key": event_id,
    }


# --- one HTTP POST ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    """Outcome of one POST: ``status_code`` None when no response arrived (``error`` says why)."""

    status_code: int | None
    response_excerpt: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pinned_connection(scheme: str, host: str, port: int, addresses: list[str], timeout: float):
    """An ``http.client`` connection to ``host`` that connects only to the already-checked ``addresses`` (so a
    second DNS answer cannot redirect it to a private address) while TLS still verifies ``host``."""
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def create_connection(_address, conn_timeout=None, source_address=None):
        last: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((address, port), conn_timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    conn._create_connection = create_connection
    return conn


def http_post(url: str, raw_body: bytes, headers: dict[str, str], *, timeout: float) -> PostResult:
    """POST ``raw_body`` to ``url`` without following redirects; never raises for network or HTTP errors.

    The target is re-resolved and re-checked against the SSRF guard at send time. ``timeout`` (seconds) bounds
    the connect and each read.
    """
    started = time.monotonic()

    def done(status_code: int | None, excerpt: str = "", error: str = "") -> PostResult:
        return PostResult(status_code, excerpt, error[:500], int((time.monotonic() - started) * 1000))

    try:
        scheme, host, port = _split_url(url, attribute="url")
        addresses = webhook_url_check(url)
    except InvalidParameter as exc:
        return done(None, error=exc.message)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _pinned_connection(scheme, host, port, addresses, timeout)
    try:
        conn.request("POST", target, body=raw_body, headers=headers)
        response = conn.getresponse()
        data = response.read(READ_MAX_BYTES)
        excerpt = data.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT_MAX_CHARS]
        return done(response.status, excerpt)
    except TimeoutError:
        return done(None, error=f"timeout after {timeout:g} s")
    except ConnectionRefusedError:
        return done(None, error="connection refused")
    except (OSError, http.client.HTTPException) as exc:
        return done(None, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


# --- outbox -----------------------------------------------------------------------------------------------------


def _celery_eager() -> bool:
    """True when tasks run in-process (no broker): the embedded default."""
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def delivery_schedule(delivery_id, *, countdown: float | None = None) -> None:
    """Send ``webhook_delivery_attempt(delivery_id)`` to Celery (with ``countdown`` seconds if given).

    A failing broker is logged, not raised: the row stays pending and due, so the beat sweep sends it later.
    """
    from rooms.tasks import webhook_delivery_attempt

    try:
        if countdown is None:
            webhook_delivery_attempt.delay(str(delivery_id))
        else:
            webhook_delivery_attempt.apply_async((str(delivery_id),), countdown=max(0.0, countdown))
    except Exception:
        logger.exception("webhook delivery %s: scheduling failed; the retry sweep will send it", delivery_id)


def deliveries_create(*, event: RoomSessionEvent, endpoints) -> list[uuid.UUID]:
    """Create (idempotently) the pending outbox rows of ``event`` for ``endpoints``; returns the ids of the
    rows still pending (an existing delivered or failed row is left as it is)."""
    endpoint_ids = [e.id for e in endpoints]
    if not endpoint_ids:
        return []
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint_id=eid, event=event) for eid in endpoint_ids], ignore_conflicts=True
    )
    return list(
        WebhookDelivery.objects.filter(
            event=event, endpoint_id__in=endpoint_ids, status=WebhookDelivery.Status.PENDING
        ).values_list("id", flat=True)
    )


def deliveries_enqueue(*, event_id) -> list[uuid.UUID]:
    """Create the outbox rows for ``event_id`` and schedule their delivery (Celery).

    One row per enabled endpoint of the event's project whose ``event_types`` is empty or names the event.
    Safe to call twice for one event. Never raises (it runs after the emitter's commit): errors are logged and
    due rows are picked up by the retry sweep. Returns the ids of the scheduled deliveries.
    """
    try:
        event = RoomSessionEvent.objects.filter(id=event_id).first()
        if event is None:
            logger.warning("webhook enqueue: event %s not found", event_id)
            return []
        endpoints = [
            e for e in WebhookEndpoint.objects.filter(project_id=event.project_id, enabled=True) if e.wants(event.name)
        ]
        delivery_ids = deliveries_create(event=event, endpoints=endpoints)
    except Exception:
        logger.exception("webhook enqueue failed for event %s", event_id)
        return []
    for delivery_id in delivery_ids:
        delivery_schedule(delivery_id)
    return delivery_ids


def _claim(delivery_id, *, timeout: float) -> bool:
    """Take a lease on a due pending delivery: one atomic conditional UPDATE, so of two workers (or a task and
    the sweep) only one sends it. The lease expires after the request timeout plus a margin, so a worker that
    dies mid-attempt only delays the delivery."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=timeout + LEASE_MARGIN_SECONDS)
    claimed = WebhookDelivery.objects.filter(
        id=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now + CLAIM_EARLY_TOLERANCE
    ).update(next_attempt_at=lease_until)
    return claimed == 1


def backoff_seconds(attempts: int, *, base: float, rng: random.Random | None = None) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: ``base × 2^(attempts-1)`` capped at 1 h,
    then jittered down by up to 25 %."""
    delay = min(BACKOFF_CAP_SECONDS, base * (2 ** max(0, attempts - 1)))
    return delay * (rng or random).uniform(JITTER_LOW, 1.0)


def delivery_attempt(*, delivery_id) -> float | None:
    """Make one attempt of a due pending delivery (the ``webhook_delivery_attempt`` task).

    Returns the seconds until the next attempt when one is scheduled, else None (delivered, failed for good,
    not due, or claimed by someone else). With a broker the retry is sent with ``apply_async(countdown=…)``; in
    eager mode it is left to ``deliveries_retry_due`` so that no caller blocks on back-off.
    """
    timeout = float(settings.PARLEY_WEBHOOK_TIMEOUT_SECONDS)
    if not _claim(delivery_id, timeout=timeout):
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").filter(id=delivery_id).first()
    if delivery is None:
        return None
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.enabled:
        WebhookDelivery.objects.filter(id=delivery.id).update(
            status=WebhookDelivery.Status.FAILED, last_error="endpoint disabled", next_attempt_at=timezone.now()
        )
        logger.info("webhook delivery %s event=%s: endpoint %s disabled", delivery.id, event.id, endpoint.id)
        return None

    raw_body = body_encode(event_body(event))
    headers = delivery_headers(secret=endpoint.secret, raw_body=raw_body, event_id=str(event.id), event_type=event.name)
    attempted_at = timezone.now()
    result = http_post(endpoint.url, raw_body, headers, timeout=timeout)
    return _attempt_record(delivery_id=delivery.id, event=event, attempted_at=attempted_at, result=result)


def _attempt_record(*, delivery_id, event: RoomSessionEvent, attempted_at, result: PostResult) -> float | None:
    """Append the attempt to the log and set the delivery's next state; returns the retry delay (s) or None."""
    entry = {
        "at": attempted_at.isoformat(),
        "status_code": result.status_code,
        "error": result.error,
        "duration_ms": result.duration_ms,
        "response_excerpt": result.response_excerpt,
    }
    retry_in: float | None = None
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(id=delivery_id).first()
        if delivery is None:  # the endpoint was deleted meanwhile
            return None
        now = timezone.now()
        delivery.attempts += 1
        delivery.attempt_log = [*delivery.attempt_log, entry][-ATTEMPT_LOG_MAX_ENTRIES:]
        delivery.last_status_code = result.status_code
        delivery.last_response_excerpt = result.response_excerpt
        delivery.last_error = result.error
        if result.ok:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = now
        else:
            deadline = event.created_at + timedelta(seconds=float(settings.PARLEY_WEBHOOK_MAX_AGE_SECONDS))
            if now >= deadline:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = now
            else:
                delay = backoff_seconds(delivery.attempts, base=float(settings.PARLEY_WEBHOOK_BACKOFF_BASE_SECONDS))
                # The last attempt happens at the deadline at the latest; a failure then ends the delivery.
                delivery.next_attempt_at = min(now + timedelta(seconds=delay), deadline)
                delivery.status = WebhookDelivery.Status.PENDING
                retry_in = max(0.0, (delivery.next_attempt_at - now).total_seconds())
        delivery.save(
            update_fields=[
                "attempts",
                "attempt_log",
                "last_status_code",
                "last_response_excerpt",
                "last_error",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    logger.info(
        "webhook delivery %s event=%s type=%s endpoint=%s attempt=%d status=%s code=%s error=%s %d ms",
        delivery_id,
        event.id,
        event.name,
        delivery.endpoint_id,
        delivery.attempts,
        delivery.status,
        result.status_code,
        result.error or "-",
        result.duration_ms,
    )
    if retry_in is not None and not _celery_eager():
        delivery_schedule(delivery_id, countdown=retry_in)
    return retry_in


def deliveries_due(*, limit: int = RETRY_SWEEP_BATCH) -> list[uuid.UUID]:
    """Ids of pending deliveries whose ``next_attempt_at`` has come, oldest first. Rows locked by another sweep
    are skipped (``SELECT … FOR UPDATE SKIP LOCKED`` where the database supports it)."""
    with transaction.atomic():
        qs = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).order_by("next_attempt_at")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        return list(qs.values_list("id", flat=True)[:limit])


def deliveries_retry_due(*, limit: int = RETRY_SWEEP_BATCH) -> int:
    """The beat sweep: dispatch every due pending delivery. Eager mode attempts them here, one after the other;
    with a broker each becomes a task. Returns how many were dispatched."""
    due = deliveries_due(limit=limit)
    for delivery_id in due:
        delivery_schedule(delivery_id)
    if due:
        logger.info("webhook retry sweep: %d due deliveries dispatched", len(due))
    return len(due)


def delivery_reset(*, delivery_id) -> int:
    """Make a delivery pending and due now (re-send); returns the number of rows changed (0 or 1)."""
    return WebhookDelivery.objects.filter(id=delivery_id).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
    )


async def retry_sweep_loop(*, interval_s: float = 30.0) -> None:
    """Run ``deliveries_retry_due`` every ``interval_s`` seconds until cancelled: the embedded default's stand-in
    for Celery beat (no broker, no beat process). The caller starts it as a task and cancels and awaits it on
    shutdown; each sweep runs in a worker thread, off the event loop."""
    import asyncio

    from asgiref.sync import sync_to_async

    def sweep() -> int:
        close_stale_connections()
        try:
            return deliveries_retry_due()
        finally:
            close_stale_connections()

    while True:
        await asyncio.sleep(interval_s)
        try:
            await sync_to_async(sweep, thread_sensitive=False)()
        except Exception:  # one failed sweep (database restarting…) must not end the loop
            logger.exception("webhook retry sweep failed")
