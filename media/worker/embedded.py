"""The media worker inside the web process (``PARLEY_MEDIA_WORKER = "embedded"``, the ``make run`` default).

The signalling consumer calls ``await ensure_started()`` on connect; the first call in an event loop starts a
``MediaWorker`` in that loop (listening on ``CONTROL_CHANNEL`` and its own channel of the configured channel
layer), later calls return the same worker. Idempotent per event loop; concurrent first calls start one worker.

``stop()`` runs at the server's shutdown (``parley.asgi`` hooks it before the event sender's drain: ASGI lifespan
shutdown, or Daphne's reactor shutdown on SIGTERM/SIGINT), bounded by ``MediaWorker.stop_bound_s``: the members
are told (``worker_shutdown``) and the sessions released.
"""

from __future__ import annotations

import asyncio
import weakref

from media.worker.worker import MediaWorker

_workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaWorker] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def ensure_started() -> MediaWorker:
    """Start (once per running event loop) and return the embedded media worker."""
    loop = asyncio.get_running_loop()
    worker = _workers.get(loop)
    if worker is not None and worker.started:
        return worker
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        worker = _workers.get(loop)
        if worker is None or not worker.started:
            worker = MediaWorker()
            await worker.start()
            _workers[loop] = worker
    return worker


async def stop() -> None:
    """Stop the current loop's embedded worker, if any (tells its members, releases its sessions; bounded by
    ``MediaWorker.stop_bound_s``). Never raises."""
    worker = _workers.pop(asyncio.get_running_loop(), None)
    if worker is not None:
        await worker.stop()
