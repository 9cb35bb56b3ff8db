"""Celery shims for the rooms domain: each takes ids and calls one service (the logic lives in the services)."""

from __future__ import annotations

from celery import shared_task

from rooms import webhooks


@shared_task(acks_late=True, ignore_result=True)
def webhook_delivery_attempt(delivery_id: str) -> None:
    """One attempt of a webhook delivery; schedules its own retry when a broker runs (``rooms.webhooks``)."""
    webhooks.delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliveries_retry_due() -> int:
    """Beat, every 30 s: dispatch the pending webhook deliveries whose next attempt is due."""
    return webhooks.deliveries_retry_due()


@shared_task(acks_late=True, ignore_result=True)
def members_expire_disconnected() -> int:
    """Beat, every 10 s: remove members whose socket dropped longer than the reconnect grace ago."""
    from rooms.services.sessions import members_expire_disconnected as expire

    return expire()
