"""Signalling benchmark: N signalling-only members join one room over real WebSockets to Daphne, then one member's
``member.audio_mute``/``audio_unmute`` is timed until every other member has received its ``member.updated``.

    # production-like: PostgreSQL + Redis, two Daphne processes sharing them, 1,000 members
    .venv/bin/python bench/signalling.py --database-url postgres://postgres@127.0.0.1:5432/parley_bench \\
        --redis redis://127.0.0.1:6379/15 --servers 2
    # one Daphne, in-memory channel layer (one process only), SQLite under /dev/shm
    .venv/bin/python bench/signalling.py --members 300

Processes: the servers are ``daphne parley.asgi:application`` subprocesses (``--server-cpus``, default CPU 0);
this process runs every client with the ``websockets`` library (``--client-cpus``, default the other CPUs), pinned
with ``os.sched_setaffinity`` so client work is not counted as server time. Members are spread round-robin over
the servers; joins run ``--join-concurrency`` at a time.

Figures printed: join rate (members/s), join latency (socket open + ``room.join`` response; first and last 100
joins, p50/p99 over all), notifications received per member during the join burst, and the ``member.updated``
fan-out latency in ms, pooled over ``--rounds`` rounds: from ``time.time()`` just before the sender's request is
written to ``time.time()`` when the receiver's socket handed the frame's bytes to ``websockets``
(``data_received``), both in this process. The sender's own RPC round trip is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpus(text: str | None, default: set[int]) -> set[int]:
    if not text:
        return default
    return {int(c) for c in text.split(",") if c.strip()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(args, data_dir: Path, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="parley.settings",
        PARLEY_DATA_DIR=str(data_dir),
        DATABASE_URL=args.database_url,
        PARLEY_MEDIA_WORKER="external",
        PARLEY_EMBEDDED_SWEEPS="0",
        DB_CONN_MAX_AGE=str(args.conn_max_age),
        LOG_LEVEL="INFO",  # channels_redis reports dropped messages ("over capacity") at INFO
        DEBUG="0",
        PYTHONPATH=str(ROOT),
    )
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
        env["PARLEY_CHANNEL_PREFIX"] = prefix
    return env


def _setup(args) -> list[str]:
    """Migrate the database, create a project and a room for ``args.members``, mint one token per member."""
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rooms.models import Project, Room
    from rooms.permissions import ALL_PERMISSIONS
    from rooms.tokens import room_token_mint

    project = Project.objects.create(name=f"bench-{uuid.uuid4().hex[:6]}")
    Room.objects.create(project=project, name="bench", max_members=args.members)
    return [
        room_token_mint(
            project=project,
            claims={"room_name": "bench", "user_name": f"m{i}", "permissions": list(ALL_PERMISSIONS)},
        )[0]
        for i in range(args.members)
    ]


def _servers_start(args, env: dict[str, str], cpus: set[int], log_dir: Path) -> list[tuple[subprocess.Popen, int]]:
    servers = []
    for index in range(args.servers):
        port = _free_port()
        log = open(log_dir / f"daphne-{index}.log", "wb")  # noqa: SIM115 — closed with the process
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
            # Daphne drops a handshake the application has not accepted within 5 s by default; a loaded box
            # can exceed that while the room's fan-out runs, and the benchmark wants every join to count
            + ["--websocket_connect_timeout", "120", "parley.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        servers.append((process, port))
    deadline = time.monotonic() + 120
    for process, port in servers:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"daphne exited with {process.returncode}; see {log_dir}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"daphne on port {port} did not start; see {log_dir}") from None
                time.sleep(0.2)
    return servers


class Member:
    """One participant socket. Frames are not decoded unless needed: responses are matched by prefix, and only
    the measured ``member.updated`` is parsed."""

    def __init__(self, index: int, url: str):
        self.index = index
        self.url = url
        self.ws = None
        self.id: str | None = None
        self.notifications = 0
        self.responses: asyncio.Queue = asyncio.Queue()
        self.arrived_at = 0.0  # time.time() of the last bytes received
        self.watch: tuple[str, asyncio.Future] | None = None
        self.reader: asyncio.Task | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import ClientConnection, connect

        member = self

        class StampedConnection(ClientConnection):
            def data_received(self, data: bytes) -> None:
                member.arrived_at = time.time()
                super().data_received(data)

        self.ws = await connect(
            self.url,
            create_connection=StampedConnection,
            max_size=16 * 1024 * 1024,
            max_queue=None,
            ping_interval=None,
            compression=None,
            open_timeout=120,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in self.ws:
                if text.startswith('{"jsonrpc":"2.0","id"'):
                    self.responses.put_nowait(json.loads(text))
                    continue
                self.notifications += 1
                start = text.find('"event_type":"') + 14
                EVENT_COUNTS[text[start : text.find('"', start)]] += 1
                watch = self.watch
                if watch is not None and '"member.updated"' in text and watch[0] in text:
                    body = json.loads(text)
                    if body["params"]["params"]["member"]["id"] == watch[0] and not watch[1].done():
                        watch[1].set_result(self.arrived_at)
        except ConnectionClosed:
            return

    async def call(self, method: str, params: dict | None = None) -> tuple[dict, float]:
        """Send one request; return ``(response, time.time() just before it was written)``."""
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})
        sent_at = time.time()
        await self.ws.send(frame)
        return await asyncio.wait_for(self.responses.get(), timeout=300), sent_at


EVENT_COUNTS: collections.Counter[str] = collections.Counter()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _run(args, tokens: list[str], ports: list[int]) -> dict:
    members = [
        Member(i, f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/video/?token={token}") for i, token in enumerate(tokens)
    ]
    join_ms: list[float] = [0.0] * len(members)
    open_ms: list[float] = [0.0] * len(members)
    done = 0
    started = time.perf_counter()
    queue: asyncio.Queue = asyncio.Queue()
    for m in members:
        queue.put_nowait(m)

    async def joiner() -> None:
        nonlocal done
        while not queue.empty():
            m = queue.get_nowait()
            t0 = time.perf_counter()
            await m.open()
            open_ms[m.index] = (time.perf_counter() - t0) * 1000
            response, _ = await m.call("room.join")
            assert "result" in response, response
            m.id = response["result"]["member_id"]
            join_ms[m.index] = (time.perf_counter() - t0) * 1000
            done += 1
            if done % 100 == 0:
                print(f"  {done} joined, {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    await asyncio.gather(*(joiner() for _ in range(args.join_concurrency)))
    joined_s = time.perf_counter() - started
    slowest = sorted(range(len(members)), key=lambda i: -join_ms[i])[:5]
    print(
        "  slowest joins (member: socket open + room.join ms): "
        + ", ".join(f"#{i}: {open_ms[i]:.0f} + {join_ms[i] - open_ms[i]:.0f}" for i in slowest),
        file=sys.stderr,
        flush=True,
    )

    # let the join notifications drain before measuring
    previous = -1
    while True:
        await asyncio.sleep(1.0)
        total = sum(m.notifications for m in members)
        if total == previous:
            break
        previous = total
    notifications = [m.notifications for m in members]
    by_type = ", ".join(f"{name} {count / len(members):.0f}" for name, count in EVENT_COUNTS.most_common())
    print(f"  notifications per member during the joins: {by_type}", file=sys.stderr, flush=True)

    latencies_ms: list[float] = []
    rpc_ms: list[float] = []
    sender = members[0]
    others = members[1:]
    loop = asyncio.get_running_loop()
    for round_index in range(args.warmup_rounds + args.rounds):
        for m in others:
            m.watch = (sender.id, loop.create_future())
        method = "member.audio_mute" if round_index % 2 == 0 else "member.audio_unmute"
        response, sent_at = await sender.call(method)
        rpc_ms.append((time.time() - sent_at) * 1000)
        assert "result" in response, response
        received = await asyncio.wait_for(asyncio.gather(*(m.watch[1] for m in others)), timeout=300)
        round_ms = [(r - sent_at) * 1000 for r in received]
        warmup = round_index < args.warmup_rounds
        print(
            f"  round {round_index + 1}{' (warm-up, not counted)' if warmup else ''}: p50 {_pct(round_ms, 0.5):.0f} "
            f"ms, p99 {_pct(round_ms, 0.99):.0f} ms, max {max(round_ms):.0f} ms",
            file=sys.stderr,
            flush=True,
        )
        if not warmup:
            latencies_ms += round_ms
        await asyncio.sleep(0.5)

    for m in members:
        await m.ws.close()
    return {
        "join_total_s": joined_s,
        "join_rate_per_s": len(members) / joined_s,
        "join_first100_ms_mean": statistics.mean(join_ms[:100]),
        "join_last100_ms_mean": statistics.mean(join_ms[-100:]),
        "join_p50_ms": _pct(join_ms, 0.5),
        "join_p99_ms": _pct(join_ms, 0.99),
        "join_notifications_mean": statistics.mean(notifications),
        "fanout_receivers": len(others),
        "fanout_samples": len(latencies_ms),
        "fanout_p50_ms": _pct(latencies_ms, 0.5),
        "fanout_p99_ms": _pct(latencies_ms, 0.99),
        "fanout_max_ms": max(latencies_ms),
        "rpc_p50_ms": _pct(rpc_ms, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--warmup-rounds", type=int, default=1, help="rounds not counted (the first also waits out the join backlog)"
    )
    parser.add_argument("--servers", type=int, default=1, help="Daphne processes (more than one needs --redis)")
    parser.add_argument("--redis", metavar="URL", default=None, help="channels_redis at this URL (else in-memory)")
    parser.add_argument("--database-url", default=None, help="default: a throw-away SQLite file under /dev/shm")
    parser.add_argument("--conn-max-age", type=int, default=600, help="DB_CONN_MAX_AGE of the servers (s)")
    parser.add_argument("--join-concurrency", type=int, default=10)
    parser.add_argument("--server-cpus", default=None, help="comma-separated CPU ids (default: the first CPU)")
    parser.add_argument("--client-cpus", default=None, help="comma-separated CPU ids (default: the other CPUs)")
    args = parser.parse_args()
    if args.servers > 1 and not args.redis:
        parser.error("--servers > 1 needs --redis: the in-memory channel layer is per process")

    available = sorted(os.sched_getaffinity(0))
    server_cpus = _cpus(args.server_cpus, {available[0]})
    client_cpus = _cpus(args.client_cpus, set(available[1:]) or {available[0]})
    data_dir = Path(tempfile.mkdtemp(prefix="parley-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    if not args.database_url:
        args.database_url = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    os.environ.update(DATABASE_URL=args.database_url, PARLEY_DATA_DIR=str(data_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parley.settings")
    os.environ.pop("REDIS_URL", None)
    tokens = _setup(args)
    from django.db import connections

    connections.close_all()

    prefix = f"parley-bench-{uuid.uuid4().hex[:8]}"
    servers = _servers_start(args, _server_env(args, data_dir, prefix), server_cpus, data_dir)
    os.sched_setaffinity(0, client_cpus)
    print(
        f"pinning: {args.servers} Daphne process(es) (pids {', '.join(str(p.pid) for p, _ in servers)}) on CPUs "
        f"{sorted(server_cpus)}; clients (pid {os.getpid()}) on CPUs {sorted(client_cpus)}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    try:
        result = asyncio.run(_run(args, tokens, [port for _, port in servers]))
    finally:
        for process, _ in servers:
            process.terminate()
        for process, _ in servers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        dropped = errors = 0
        for log in data_dir.glob("daphne-*.log"):
            text = log.read_text(errors="replace")
            dropped += text.count("over capacity")
            errors += text.count(" ERROR ")
        print(f"server logs: {dropped} 'over capacity' reports from channels_redis, {errors} errors", flush=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        if args.redis:
            import redis

            client = redis.Redis.from_url(args.redis)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
    db = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(
        f"signalling: {args.members} members, {args.servers} Daphne, {db}, "
        f"{'redis' if args.redis else 'in-memory'} channel layer, join concurrency {args.join_concurrency}\n"
        f"  join: {result['join_rate_per_s']:.1f} members/s ({result['join_total_s']:.1f} s total); each join "
        f"p50 {result['join_p50_ms']:.0f} ms, p99 {result['join_p99_ms']:.0f} ms, first 100 "
        f"{result['join_first100_ms_mean']:.0f} ms, last 100 {result['join_last100_ms_mean']:.0f} ms; "
        f"{result['join_notifications_mean']:.0f} notifications per member\n"
        f"  member.updated fan-out to {result['fanout_receivers']} members ({result['fanout_samples']} samples): "
        f"p50 {result['fanout_p50_ms']:.1f} ms, p99 {result['fanout_p99_ms']:.1f} ms, "
        f"max {result['fanout_max_ms']:.1f} ms (sender's RPC round trip p50 {result['rpc_p50_ms']:.1f} ms)\n"
        f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
