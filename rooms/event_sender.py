"""Ordered, non-blocking broadcast of committed events from an ASGI server's sync threads (``rooms.events``).

Services run in Channels' one sync thread per process (``database_sync_to_async``). Sending each committed event
with ``async_to_sync(group_send)`` parked that thread until the event loop — possibly busy fanning the previous
event out to a thousand sockets — got to it, and every other ORM call of the process waited behind it. Here the
thread hands the event to one sender task per event loop and returns at once; the task sends in commit order.

Two refinements live in the sender, both keeping that order:

- **Gates** (``broadcasts_gated``): the events of a join are held until the joiner's socket is in the room's
  groups, so it misses none of them, without holding the room's row lock across channel-layer I/O. Events
  committed later queue behind the gate (it opens after ``GATE_TIMEOUT_SECONDS`` at the latest).
- **``memberList.updated`` coalescing**: at most one per room session every ``MEMBER_LIST_COALESCE_SECONDS``.
  The first goes out at once; one that follows within the window is held and replaced by any newer one, then
  sent at the end of the window. It is sent earlier, before the event, when any other event of the session
  is sent — except ``member.joined``/``member.left`` (a newer list follows them in the same transaction) and
  ``room.ended`` (the held list is dropped). So a list is never older than an event sent before it.

Outside an ASGI server (Celery, management commands, sync tests) ``submit`` returns False and the caller sends
synchronously as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import time
import weakref
from collections.abc import Iterator

logger = logging.getLogger(__name__)

MEMBER_LIST_COALESCE_SECONDS = 0.05
GATE_TIMEOUT_SECONDS = 10.0

# member.joined / member.left are always followed by a memberList.updated of the same session (or room.ended).
_LIST_FOLLOWS = frozenset({"member.joined", "member.left"})


class Gate:
    """Holds the events queued after it until ``open()`` is called on the event loop (or a timeout)."""

    def __init__(self) -> None:
        self.opened = False
        self.queued = False
        self._event: asyncio.Event | None = None

    def open(self) -> None:
        """Let the held events go (call on the event loop's thread)."""
        self.opened = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> None:
        if self.opened:
            return
        self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            logger.warning("event gate not opened within %.1f s; sending the held events", timeout)


_gate: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("parley_event_gate", default=None)


@contextlib.contextmanager
def broadcasts_gated() -> Iterator[Gate]:
    """Within this block (sync code in a server thread), events committed by the block's outermost transaction
    queue behind the yielded ``Gate``; the caller must ``open()`` it once ready (in a ``finally``)."""
    gate = Gate()
    token = _gate.set(gate)
    try:
        yield gate
    finally:
        _gate.reset(token)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop whose ``sync_to_async`` thread we are on, if it is still running (asgiref records it in
    ``SyncToAsync.threadlocal`` for ``async_to_sync``; same rule as asgiref: same process only)."""
    from asgiref.sync import SyncToAsync

    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def submit(body: dict, *, to_member_id=None) -> bool:
    """Queue ``body`` for broadcast on the server's event loop, in order, without waiting. False when not on a
    server's sync thread (the caller sends it itself)."""
    loop = _server_loop()
    if loop is None:
        return False
    gate = _gate.get()
    items: list = []
    if gate is not None and not gate.queued:
        gate.queued = True
        items.append(gate)
    items.append((body, to_member_id))
    try:
        loop.call_soon_threadsafe(_enqueue, loop, items)
    except RuntimeError:  # the loop closed meanwhile
        return False
    return True


_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sender] = weakref.WeakKeyDictionary()


def _enqueue(loop: asyncio.AbstractEventLoop, items: list) -> None:
    sender = _senders.get(loop)
    if sender is None or sender.task.done():
        sender = _senders[loop] = _Sender()
    for item in items:
        sender.queue.put_nowait(item)


class _Sender:
    """One task per event loop sending queued events one at a time (commit order)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.held_lists: dict[str, tuple[dict, float]] = {}  # room_session_id → (body, due in monotonic s)
        self.list_sent_at: dict[str, float] = {}  # room_session_id → monotonic s
        self.task = asyncio.get_running_loop().create_task(self._run(), name="parley-event-sender")

    async def _run(self) -> None:
        getter: asyncio.Future | None = None
        while True:
            timeout = None
            if self.held_lists:
                timeout = max(0.0, min(due for _, due in self.held_lists.values()) - time.monotonic())
            if getter is None:
                getter = asyncio.ensure_future(self.queue.get())
            # asyncio.wait, not wait_for: a timeout must not cancel a get() that already took an item
            done, _ = await asyncio.wait({getter}, timeout=timeout)
            item = None
            if getter in done:
                item, getter = getter.result(), None
            try:
                if isinstance(item, Gate):
                    await item.wait(GATE_TIMEOUT_SECONDS)
                elif item is not None:
                    await self._send(*item)
                await self._send_due_lists()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event sender step failed")

    async def _send(self, body: dict, to_member_id) -> None:
        session_id = body.get("room_session_id")
        if to_member_id is None and session_id:
            event_type = body.get("event_type")
            if event_type == "memberList.updated":
                now = time.monotonic()
                held = self.held_lists.get(session_id)
                if held is not None:
                    self.held_lists[session_id] = (body, held[1])
                    return
                last = self.list_sent_at.get(session_id)
                if last is not None and now - last < MEMBER_LIST_COALESCE_SECONDS:
                    self.held_lists[session_id] = (body, last + MEMBER_LIST_COALESCE_SECONDS)
                    return
                self.list_sent_at[session_id] = now
            elif session_id in self.held_lists:
                if event_type == "room.ended":
                    del self.held_lists[session_id]
                elif event_type not in _LIST_FOLLOWS:
                    await self._send_list(session_id)
        await _broadcast(body, to_member_id)

    async def _send_list(self, session_id: str) -> None:
        body, _ = self.held_lists.pop(session_id)
        self.list_sent_at[session_id] = time.monotonic()
        await _broadcast(body, None)

    async def _send_due_lists(self) -> None:
        now = time.monotonic()
        for session_id in [s for s, (_, due) in self.held_lists.items() if due <= now]:
            await self._send_list(session_id)
        if len(self.list_sent_at) > 256:
            for session_id in [s for s, at in self.list_sent_at.items() if now - at > MEMBER_LIST_COALESCE_SECONDS]:
                del self.list_sent_at[session_id]


async def _broadcast(body: dict, to_member_id) -> None:
    from rooms.events import event_broadcast_async  # rooms.events imports this module

    try:
        await event_broadcast_async(body, to_member_id=to_member_id)
    except Exception:  # a broken channel layer must not stop later events
        logger.exception("event broadcast failed event=%s id=%s", body.get("event_type"), body.get("id"))
