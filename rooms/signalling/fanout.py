"""Process-local fan-out of room events to the signalling sockets of this process.

A room session's group holds one channel per process — the process's ``RoomFanout`` channel — instead of one per
socket. An event therefore crosses the channel layer once per process (one Redis message, one decode) and is
handed here, in one loop, to every local socket of the room. Before, channels_redis pushed the message into each
socket's receive buffer and every socket woke its own receive and dispatch tasks for it, which was most of the
per-member cost of an event in a large room (``docs/PERFORMANCE.md``, Signalling).

Order: each consumer keeps an inbox; events are delivered in the order the group received them and never while
the consumer is handling one of its own messages (a request, a media reply) — they wait in the inbox until it is
done, as channel-layer messages waited before. Events that end the member's presence (its own ``member.left``,
``room.ended``) are delivered in a task of their own, so their group clean-up does not hold up the room.

The fan-out's channel joins room session groups only: a message's group is that of its event's
``room_session_id`` (``rooms.events.room_session_group``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import Protocol

from rooms.events import room_session_group

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    """What the fan-out needs of a consumer."""

    channel_name: str
    fanout_inbox: deque
    fanout_busy: bool

    def fanout_heavy(self, message: dict) -> bool: ...

    async def fanout_drain(self) -> None: ...


class RoomFanout:
    """One per channel layer and event loop (``for_layer``): a channel in the room groups with local sockets."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.groups: dict[str, dict[str, Subscriber]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reader: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    async def _ensure_channel(self) -> str:
        if self.channel is None:
            # the layer's default prefix: channels_redis receives every process-local channel ("specific.<id>!")
            # through one Redis list and one receive lock; another prefix would starve behind the sockets' receives
            self.channel = await self.layer.new_channel()
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="parley-room-fanout")
        return self.channel

    def _lock(self, group: str) -> asyncio.Lock:
        lock = self._locks.get(group)
        if lock is None:
            lock = self._locks[group] = asyncio.Lock()
        return lock

    async def subscribe(self, group: str, consumer: Subscriber) -> None:
        """Deliver ``group``'s events to ``consumer`` from now on (once this returns, the process's channel is in
        the group on the channel layer; the membership is refreshed on every subscription)."""
        channel = await self._ensure_channel()
        async with self._lock(group):
            self.groups.setdefault(group, {})[consumer.channel_name] = consumer
            await self.layer.group_add(group, channel)

    async def unsubscribe(self, group: str, consumer: Subscriber) -> None:
        """Stop delivering ``group`` to ``consumer``; the last local one takes the process out of the group."""
        local = self.groups.get(group)
        if local is None or local.pop(consumer.channel_name, None) is None:
            return
        if local:
            return
        lock = self._lock(group)
        async with lock:
            if self.groups.get(group):  # someone subscribed meanwhile
                return
            self.groups.pop(group, None)
            if self.channel is not None:
                await self.layer.group_discard(group, self.channel)
        if group not in self.groups and not lock.locked():
            self._locks.pop(group, None)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("room fan-out receive failed channel=%s", self.channel)
                await asyncio.sleep(0.5)
                continue
            await self.deliver(message)

    async def deliver(self, message: dict) -> None:
        """Hand ``message`` to every local subscriber of its group, in order."""
        session_id = (message.get("event") or {}).get("room_session_id")
        local = self.groups.get(room_session_group(session_id)) if session_id else None
        if not local:
            return
        for consumer in list(local.values()):
            consumer.fanout_inbox.append(message)
            if consumer.fanout_busy:
                continue  # delivered by the consumer (or the drain in progress) when it is done
            consumer.fanout_busy = True
            if consumer.fanout_heavy(message):
                task = asyncio.get_running_loop().create_task(consumer.fanout_drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await consumer.fanout_drain()


_fanouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_layer(layer) -> RoomFanout:
    """The fan-out of ``layer`` on the running event loop."""
    loop = asyncio.get_running_loop()
    per_loop = _fanouts.get(layer)
    if per_loop is None:
        per_loop = _fanouts[layer] = weakref.WeakKeyDictionary()
    fanout = per_loop.get(loop)
    if fanout is None:
        fanout = per_loop[loop] = RoomFanout(layer)
    return fanout
