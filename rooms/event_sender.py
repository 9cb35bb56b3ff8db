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

**Which loop.** The server's event loop is recorded with ``attach()``: the ASGI application calls it for every
connection and at lifespan startup (``application``), and a sync thread that finds none recorded asks through
``asgiref.sync.async_to_sync`` which loop it serves (the media worker process, tests). Only a loop running on
the process's main thread counts: servers (Daphne, the media worker, pytest-asyncio) run their loop there, while
``async_to_sync`` called outside any server runs a throwaway loop in a thread of its own, which must not keep
events. Outside a server (Celery, management commands, sync tests) and on the loop's own thread ``submit``
returns False and the caller sends synchronously.

**Shutdown.** ``drain()`` sends what is queued (held ``memberList.updated`` at once, gates no longer waited
for) within ``DRAIN_SECONDS``. It runs at ASGI ``lifespan.shutdown`` and, under Daphne (which does not speak
lifespan), in a Twisted "before shutdown" trigger, alongside Daphne's own cancelling of connections. Events
still queued beyond the bound are not broadcast (``drain`` counts them in a warning), nor are those of a process
that dies without a shutdown. Nothing durable is lost with them: every non-ephemeral event is already
stored (``RoomSessionEvent``: the REST event lists, the dashboard) and its webhook deliveries are enqueued by the
same commit hook that hands it here; sockets of that process close with it, and clients that reconnect read current state
(``memberList.updated``, ``member.talking`` and the other ephemeral events are superseded by the next ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator

logger = logging.getLogger(__name__)

MEMBER_LIST_COALESCE_SECONDS = 0.05
GATE_TIMEOUT_SECONDS = 10.0
DRAIN_SECONDS = 5.0

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


class _Attached:
    """The server loop recorded for this process: the loop, its thread and the pid that recorded it."""

    loop: asyncio.AbstractEventLoop | None = None
    thread_id: int | None = None
    pid: int | None = None
    shutdown_hooked = False


def attach(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Record ``loop`` (default: the running one; call on it) as this process's server loop, whose sender takes
    the events of the process's sync threads, and hook ``drain`` into Daphne's shutdown when Daphne runs it."""
    loop = loop or asyncio.get_running_loop()
    pid = os.getpid()
    if _Attached.loop is loop and _Attached.pid == pid:
        return
    _Attached.loop, _Attached.thread_id, _Attached.pid = loop, threading.get_ident(), pid
    _hook_daphne_shutdown()


def _usable(loop: asyncio.AbstractEventLoop | None) -> bool:
    return loop is not None and not loop.is_closed() and loop.is_running()


async def _main_thread_loop() -> asyncio.AbstractEventLoop | None:
    """Run through ``async_to_sync``: the loop it ran on when that is a server's (main-thread) loop."""
    if threading.current_thread() is not threading.main_thread():
        return None
    loop = asyncio.get_running_loop()
    attach(loop)
    return loop


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The server loop this sync thread may hand events to, or None (see the module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return None  # a server's loop runs on this thread, or there is no server
    loop = _Attached.loop
    if _Attached.pid == os.getpid() and _usable(loop):
        return None if _Attached.thread_id == threading.get_ident() else loop
    from asgiref.sync import async_to_sync

    try:
        loop = async_to_sync(_main_thread_loop)()
    except RuntimeError:  # a loop runs on this very thread: sync code called from a coroutine
        return None
    return loop if _usable(loop) else None


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
        sender.put(item)


_WAKE = object()  # queued by drain(): wakes the sender so held lists go at once


class _Sender:
    """One task per event loop sending queued events one at a time (commit order)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.held_lists: dict[str, tuple[dict, float]] = {}  # room_session_id → (body, due in monotonic s)
        self.list_sent_at: dict[str, float] = {}  # room_session_id → monotonic s
        self.draining = False  # shutting down: nothing is held, gates are not waited for
        self.gate: Gate | None = None  # the gate being waited for
        self.task = asyncio.get_running_loop().create_task(self._run(), name="parley-event-sender")

        self.pending = 0  # events queued and not yet through _send

    def put(self, item) -> None:
        if isinstance(item, tuple):
            self.pending += 1
        self.queue.put_nowait(item)

    def unsent(self) -> int:
        """Events queued or held, not yet handed to the channel layer."""
        return self.pending + len(self.held_lists)

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
                    if not self.draining:
                        self.gate = item
                        await item.wait(GATE_TIMEOUT_SECONDS)
                elif isinstance(item, tuple):
                    self.pending -= 1
                    await self._send(*item)
                await self._send_due_lists()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event sender step failed")
            finally:
                self.gate = None
                if item is not None:
                    self.queue.task_done()

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
        flush = self.draining and self.queue.empty()  # shutting down: the held lists go once the queue is sent
        for session_id in [s for s, (_, due) in self.held_lists.items() if due <= now or flush]:
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


# -- shutdown ------------------------------------------------------------------------------------------------------
async def drain(timeout: float | None = None) -> int:
    """Broadcast what this loop's sender still has, within ``timeout`` seconds (default ``DRAIN_SECONDS``):
    queued events in order, held ``memberList.updated`` at once, without waiting for gates. Events submitted
    meanwhile are sent too. Returns how many were left unsent (0: drained); those are logged."""
    timeout = DRAIN_SECONDS if timeout is None else timeout
    sender = _senders.get(asyncio.get_running_loop())
    if sender is None or sender.task.done():
        return 0
    sender.draining = True
    if sender.gate is not None:
        sender.gate.open()
    sender.put(_WAKE)
    try:
        await asyncio.wait_for(sender.queue.join(), timeout)
    except TimeoutError:
        left = sender.unsent()
        logger.warning("event sender: %d event(s) not broadcast within %.1f s of shutdown", left, timeout)
        return left
    return sender.unsent()


def _hook_daphne_shutdown() -> None:
    """Under Daphne, run ``drain`` in the Twisted reactor's "before shutdown" phase (Daphne has no lifespan);
    once per process, from the reactor's loop."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if _Attached.shutdown_hooked or reactor is None or not getattr(reactor, "running", False):
        return
    from twisted.internet.defer import Deferred

    _Attached.shutdown_hooked = True
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(_shutdown_drain("Daphne")))
    )


_shutdown_hooks: list[Callable[[], Awaitable[object]]] = []


def before_shutdown_drain(hook: Callable[[], Awaitable[object]]) -> None:
    """Await ``hook()`` at a server's shutdown (lifespan or Daphne's), on the server loop, before ``drain``: what
    it emits goes out with the drain. A hook must bound itself; one that raises is logged and skipped. Once per
    hook."""
    if hook not in _shutdown_hooks:
        _shutdown_hooks.append(hook)


async def _shutdown_drain(server: str) -> int:
    """The ``before_shutdown_drain`` hooks, then ``drain`` at a server's shutdown, logged."""
    for hook in list(_shutdown_hooks):
        try:
            await hook()
        except Exception:
            logger.exception("shutdown hook %r failed at %s shutdown", hook, server)
    sender = _senders.get(asyncio.get_running_loop())
    queued = sender.unsent() if sender is not None else 0
    left = await drain()
    logger.info("event sender drained at %s shutdown: %d event(s) queued, %d left unsent", server, queued, left)
    return left


def application(app):
    """Wrap the ASGI application ``app``: every connection records its loop (``attach``); ASGI lifespan
    (uvicorn, hypercorn) is answered here — startup attaches, shutdown drains (``drain``) before completing."""

    async def asgi(scope, receive, send):
        if scope["type"] != "lifespan":
            attach()
            return await app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                attach()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _shutdown_drain("lifespan")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi
