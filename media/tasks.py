"""Celery shims for egress: finalisation, orphan recovery and retention (``media.egress.services``)."""

from __future__ import annotations

from celery import shared_task

from media.egress import services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def recording_finalize(recording_id: str) -> str:
    """Remux, probe, hash and store one recording; idempotent. Returns its final status."""
    return services.recording_finalize(recording_id)


@shared_task(acks_late=True)
def recordings_recover_orphans() -> list[str]:
    """Finalise recordings whose worker stopped heartbeating them (beat, every 5 min)."""
    return services.recordings_recover_orphans()


@shared_task(acks_late=True)
def streams_recover_orphans() -> list[str]:
    """End live streams whose session ended or whose worker stopped heartbeating it (beat, every minute)."""
    return services.streams_recover_orphans()


@shared_task(acks_late=True)
def playbacks_recover_orphans() -> list[str]:
    """End live playbacks whose session ended or whose worker stopped heartbeating it (beat, every minute)."""
    return services.playbacks_recover_orphans()


@shared_task(acks_late=True)
def recordings_apply_retention() -> int:
    """Delete recordings older than ``PARLEY_RECORDING_RETENTION_DAYS`` (beat, hourly)."""
    return services.recordings_apply_retention()
