"""``python manage.py mediaworker``: run a media worker process (DESIGN §1).

Registers on the channel layer (``CONTROL_CHANNEL`` + its own channel), heartbeats its sessions in the database,
takes the room sessions placed on it and, on SIGTERM/SIGINT, tells their members (``media.member_dropped``
``worker_shutdown``) and releases the sessions so members can rejoin on another worker.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from media.worker.worker import MediaWorker

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a Parley media worker (aiortc MCU) until SIGTERM."

    def handle(self, *args, **options) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        worker = MediaWorker()
        await worker.start()
        self.stdout.write(f"media worker listening channel={worker.channel_name}")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        logger.info("media worker stopping: releasing %d room session(s)", len(worker.rooms))
        await worker.stop("worker_shutdown")
        self.stdout.write("media worker stopped")
