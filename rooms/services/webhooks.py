"""Writes (and the few reads) of webhook endpoints and their deliveries (DESIGN §7).

Everything is scoped to a project: an endpoint or delivery of another project is ``NotFound`` (HTTP 404).
Deliveries themselves are sent by ``rooms.webhooks`` (the outbox); these functions only reset and schedule them,
after commit.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from rooms import webhooks
from rooms.actors import Actor
from rooms.events import WEBHOOK_EVENTS, audit_record
from rooms.exceptions import Conflict, InvalidParameter, NotFound
from rooms.models import Project, RoomSessionEvent, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

WEBHOOK_TEST_EVENT = "webhook.test"
DESCRIPTION_MAX_CHARS = 300


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def webhook_event_types_validate(value, *, attribute: str = "event_types") -> list[str]:
    """A list of distinct event names from ``rooms.events.WEBHOOK_EVENTS`` (empty = every event), in the
    given order. Raises ``InvalidParameter`` naming the first unknown name."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter("Must be a list of event names.", attribute=attribute)
    out: list[str] = []
    for name in value:
        if name not in WEBHOOK_EVENTS:
            raise InvalidParameter(
                f"Unknown event type '{name}'. Known: {', '.join(WEBHOOK_EVENTS)}.", attribute=attribute
            )
        if name not in out:
            out.append(name)
    return out


def _description_validate(value) -> str:
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX_CHARS:
        raise InvalidParameter(f"At most {DESCRIPTION_MAX_CHARS} characters.", attribute="description")
    return value


# --- reads ------------------------------------------------------------------------------------------------------


def webhook_endpoint_list(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project).order_by("-created_at", "id")


def webhook_endpoint_get(*, project: Project, endpoint_id) -> WebhookEndpoint:
    """The project's endpoint ``endpoint_id``; ``NotFound`` for a malformed id or another project's endpoint."""
    eid = _uuid_or_none(endpoint_id)
    endpoint = WebhookEndpoint.objects.filter(project=project, id=eid).first() if eid else None
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event").order_by("-created_at", "id")


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id) -> WebhookDelivery:
    did = _uuid_or_none(delivery_id)
    delivery = (
        WebhookDelivery.objects.select_related("event").filter(endpoint=endpoint, id=did).first() if did else None
    )
    if delivery is None:
        raise NotFound("Webhook delivery not found.")
    return delivery


# --- writes -----------------------------------------------------------------------------------------------------


def _audit(actor: Actor, endpoint: WebhookEndpoint, action: str, details: dict | None = None) -> None:
    audit_record(
        project_id=endpoint.project_id,
        action=action,
        target_type="webhook",
        target_id=str(endpoint.id),
        target_name=endpoint.url[:150],
        details=details,
        **actor.audit_fields(),
    )


@transaction.atomic
def webhook_endpoint_create(
    *,
    project: Project,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    enabled: bool = True,
    actor: Actor | None = None,
) -> WebhookEndpoint:
    """Register an endpoint. ``url``: http(s), passing the SSRF guard; ``event_types``: names of
    ``WEBHOOK_EVENTS`` (empty = all). A new random secret is generated; it signs every delivery."""
    webhooks.webhook_url_check(url)
    endpoint = WebhookEndpoint.objects.create(
        project=project,
        url=url,
        event_types=webhook_event_types_validate(event_types),
        description=_description_validate(description),
        enabled=bool(enabled),
    )
    _audit(actor or Actor.system(project.id), endpoint, "webhook.create", {"event_types": endpoint.event_types})
    logger.info("webhook endpoint created project_id=%s endpoint_id=%s", project.id, endpoint.id)
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict, actor: Actor | None = None) -> WebhookEndpoint:
    """Change ``url``, ``event_types``, ``description`` and/or ``enabled`` (the keys present in ``data``)."""
    fields: list[str] = []
    if "url" in data:
        webhooks.webhook_url_check(data["url"])
        endpoint.url = data["url"]
        fields.append("url")
    if "event_types" in data:
        endpoint.event_types = webhook_event_types_validate(data["event_types"])
        fields.append("event_types")
    if "description" in data:
        endpoint.description = _description_validate(data["description"])
        fields.append("description")
    if "enabled" in data:
        endpoint.enabled = bool(data["enabled"])
        fields.append("enabled")
    if fields:
        endpoint.save(update_fields=[*fields, "updated_at"])
        _audit(actor or Actor.system(endpoint.project_id), endpoint, "webhook.update", {"fields": fields})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor | None = None) -> None:
    """Delete the endpoint and its delivery log."""
    _audit(actor or Actor.system(endpoint.project_id), endpoint, "webhook.delete")
    logger.info("webhook endpoint deleted project_id=%s endpoint_id=%s", endpoint.project_id, endpoint.id)
    endpoint.delete()


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor | None = None) -> WebhookEndpoint:
    """Replace the signing secret; deliveries attempted from now on are signed with the new one."""
    endpoint.secret = WebhookEndpoint._meta.get_field("secret").get_default()
    endpoint.save(update_fields=["secret", "updated_at"])
    _audit(actor or Actor.system(endpoint.project_id), endpoint, "webhook.rotate_secret")
    logger.info("webhook secret rotated project_id=%s endpoint_id=%s", endpoint.project_id, endpoint.id)
    return endpoint


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict("The webhook endpoint is disabled; enable it first.", attribute="enabled")


@transaction.atomic
def webhook_delivery_resend(
    *, endpoint: WebhookEndpoint, delivery: WebhookDelivery, actor: Actor | None = None
) -> WebhookDelivery:
    """Make ``delivery`` pending and due now, and attempt it after commit (the same event id, so receivers
    deduplicate). If that attempt fails, retries continue only while the event is younger than the max age."""
    _require_enabled(endpoint)
    webhooks.delivery_reset(delivery_id=delivery.id)
    _audit(actor or Actor.system(endpoint.project_id), endpoint, "webhook.resend", {"delivery_id": str(delivery.id)})
    transaction.on_commit(lambda: webhooks.delivery_schedule(delivery.id))
    return delivery


@transaction.atomic
def webhook_test_send(*, endpoint: WebhookEndpoint, actor: Actor | None = None) -> WebhookDelivery:
    """Send a ``webhook.test`` ping to this endpoint only (after commit). The event is persisted like any
    other (its id is the idempotency key) with params ``{"webhook": {"id", "url"}}``."""
    _require_enabled(endpoint)
    event = RoomSessionEvent.objects.create(
        project_id=endpoint.project_id,
        name=WEBHOOK_TEST_EVENT,
        payload={"webhook": {"id": str(endpoint.id), "url": endpoint.url}},
        created_at=timezone.now(),
    )
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
    _audit(actor or Actor.system(endpoint.project_id), endpoint, "webhook.test", {"event_id": str(event.id)})
    transaction.on_commit(lambda: webhooks.delivery_schedule(delivery.id))
    return delivery
