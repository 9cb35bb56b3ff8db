"""Database helpers for long-lived processes (media worker, sweeps, Celery)."""

from __future__ import annotations

from django.db import close_old_connections, connections


def close_stale_connections() -> None:
    """``close_old_connections()`` for code outside the request cycle, made safe inside a transaction: a
    connection in an atomic block is never closed (closing it would break the transaction using it — the
    caller's, or a test's)."""
    if any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        return
    close_old_connections()
