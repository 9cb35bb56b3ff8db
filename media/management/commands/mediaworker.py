"""``python manage.py mediaworker``: run a media worker process (DESIGN §1).

Registers on the channel layer (``CONTROL_CHANNEL`` + its own channel), heartbeats its sessions in the database,
takes the room sessions placed on it and, on SIGTERM/SIGINT, tells their members (``media.member_dropped``
``worker_shutdown``) and releases the sessions so members can rejoin on another worker.

The shutdown is bounded: ``MediaWorker.stop()`` returns within its ``stop_bound_s`` (``--stop-step-timeout`` s
per step, 4 steps), the events it emitted are broadcast (``rooms.event_sender.drain``, at most one more step),
then the tasks it abandoned are cancelled and waited for at most ``LOOP_CLOSE_TIMEOUT_S``
before the event loop closes (``asyncio.run`` would wait for them without a bound). Should a thread that is not a
daemon (a media decoder of a peer connection whose close was abandoned) still hold the interpreter
``EXIT_TIMEOUT_S`` later, the process logs the threads and exits with status 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time

from django.core.management.base import BaseCommand

from media.worker.worker import STOP_STEP_TIMEOUT_S, MediaWorker
from rooms import event_sender

logger = logging.getLogger(__name__)

LOOP_CLOSE_TIMEOUT_S = 5.0
EXIT_TIMEOUT_S = 10.0


def exit_watchdog(timeout_s: float = EXIT_TIMEOUT_S) -> None:
    """Exit the process with status 1 if it is still running ``timeout_s`` from now (a daemon thread: a normal
    exit does not wait for it)."""

    def watch() -> None:
        time.sleep(timeout_s)
        names = sorted(t.name for t in threading.enumerate() if t.is_alive() and not t.daemon)
        logger.warning("media worker exit: still running after %.1f s (threads: %s); exiting", timeout_s, names)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()


def close_loop(loop: asyncio.AbstractEventLoop, timeout_s: float = LOOP_CLOSE_TIMEOUT_S) -> None:
    """Cancel the loop's remaining tasks (and those they start meanwhile), wait for them at most ``timeout_s`` in
    all (logging those left), then close the loop."""
    deadline = time.monotonic() + timeout_s
    while tasks := asyncio.all_tasks(loop):
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            logger.warning(
                "media worker exit: %d task(s) did not end within %.1f s: %s",
                len(tasks),
                timeout_s,
                ", ".join(sorted(task.get_name() for task in tasks)),
            )
            break
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.wait(tasks, timeout=remaining_s))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class Command(BaseCommand):
    help = "Run a Parley media worker (aiortc MCU) until SIGTERM."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stop-step-timeout",
            type=float,
            default=STOP_STEP_TIMEOUT_S,
            help=f"Seconds each shutdown step may take before it is abandoned (default {STOP_STEP_TIMEOUT_S:g}).",
        )

    def handle(self, *args, **options) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run(options["stop_step_timeout"]))
        finally:
            close_loop(loop)
            asyncio.set_event_loop(None)
            exit_watchdog()
        self.stdout.write("media worker stopped")

    async def _run(self, stop_step_timeout_s: float) -> None:
        worker = MediaWorker(stop_step_timeout_s=stop_step_timeout_s)
        await worker.start()
        self.stdout.write(f"media worker listening channel={worker.channel_name}")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        logger.info("media worker stopping: releasing %d room session(s)", len(worker.rooms))
        await worker.stop("worker_shutdown")
        # The events the stop emitted (sessions released, members dropped) are broadcast before the loop closes.
        left = await event_sender.drain(timeout=min(event_sender.DRAIN_SECONDS, stop_step_timeout_s))
        logger.info("media worker: event sender drained, %d event(s) left unsent", left)
