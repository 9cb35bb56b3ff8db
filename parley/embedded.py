"""Periodic sweeps for the embedded default, where no Celery beat runs.

``start_sweeps()`` starts one daemon thread in the web process that runs, every ``interval_s`` seconds, the same
service functions beat schedules in production (``CELERY_BEAT_SCHEDULE``): due webhook retries, the removal of
members whose socket dropped longer than the reconnect grace ago, and the recovery of recordings and streams a
worker left behind (``media.egress.services``). Errors are logged and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

logger = logging.getLogger(__name__)

_started = threading.Event()


def _sweeps() -> list[tuple[str, Callable[[], object]]]:
    from media.egress.services import (
        playbacks_recover_orphans,
        recordings_recover_orphans,
        streams_recover_orphans,
    )
    from rooms import webhooks
    from rooms.services.sessions import members_expire_disconnected

    return [
        ("webhook retries", webhooks.deliveries_retry_due),
        ("expired members", members_expire_disconnected),
        ("orphaned recordings", recordings_recover_orphans),
        ("orphaned streams", streams_recover_orphans),
        ("orphaned playbacks", playbacks_recover_orphans),
    ]


def _run(interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        for name, sweep in _sweeps():
            close_old_connections()
            try:
                sweep()
            except Exception:
                logger.exception("embedded sweep failed: %s", name)
        close_old_connections()


def start_sweeps(*, interval_s: float = 10.0) -> threading.Event | None:
    """Start the sweep thread once per process; returns its stop event (None if already started)."""
    if _started.is_set():
        return None
    _started.set()
    stop = threading.Event()
    threading.Thread(target=_run, args=(interval_s, stop), name="parley-sweeps", daemon=True).start()
    logger.info("embedded sweeps started (every %.0f s)", interval_s)
    return stop
