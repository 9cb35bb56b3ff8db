"""Media worker CPU per room size and glass-to-glass latency, for N bot members at 720p30.

    .venv/bin/python bench/room.py [--sizes 4,9,16] [--seconds 8] [--warmup 3] [--split-seconds 4] [--no-pin]
                                   [--ignore-sender-constraints]

This process runs Django (a throw-away SQLite database, the in-memory channel layer) and one real
``MediaWorker`` pinned to CPU 0; a spawned child process pinned to CPU 1 runs the N bots (``bench/harness.py``:
pre-encoded stamped 640x360 H.264 at 30 fps plus a tone each, receiving the canvas and their mix-minus). Like the
browser SDK, the bots honour the worker's ``webrtc.sender_constraints``: each sends at the size its tile is drawn
at (pre-encoded at that size before the window; 426x240 at N=9, 320x180 at N=16); ``--ignore-sender-constraints``
keeps every bot at 640x360, as a client that ignores them.

Prints per N: the worker's CPU-seconds per second (all its threads) with the split by thread, the canvas fps,
the mean inbound fps per member at the worker, composite and composite+encode ms (median), the bots' CPU and
inbound fps, and the glass-to-glass latency from a bot's send to the probe bot's decoded canvas (p50/p95 over
every tile's stamps: ``bench/stamps.py``). After the CPU window, ``--split-seconds`` more read the same stamps
on the worker's own canvas right after compositing (send → canvas: the inbound half of the latency; this costs
worker CPU, hence outside the CPU window). Then CPU(Nmax)/CPU(Nmin) and the goals of ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile

import harness  # bench/harness.py (its directory is on sys.path when run as a script)
import stamps  # bench/stamps.py

GOAL_CPU_9 = 0.5
GOAL_RATIO = 2.0
GOAL_LATENCY_P50_MS = 100.0


def _median(values) -> float | None:
    values = list(values)
    return round(statistics.median(values), 2) if values else None


async def run_size(
    n: int, seconds: float, warmup: float, bots_cpu: int | None, split_seconds: float, constraints: bool
) -> dict:
    room = await harness.BotRoom(n, bots_cpu=bots_cpu, sender_constraints=constraints).open()
    send_sizes = sorted({f"{w}x{h}" for w, h in room.send_sizes.values()})
    mixer = room.room
    await asyncio.sleep(warmup)
    room.start_window()
    out0 = mixer.encoder.frames
    in0 = sum(m.frames_in for m in mixer.members.values())
    dropped0 = sum(m.video_out.dropped for m in mixer.members.values() if m.video_out is not None)
    compose_n0, render_n0 = len(mixer.compose_ms), len(mixer.composite_ms)
    load0 = os.getloadavg()[0]
    bytes0 = await room.canvas_bytes_sent()
    remb0 = room.remb_counts()
    window = harness.CpuWindow()
    await asyncio.sleep(seconds)
    cpu = window.close()
    bytes1 = await room.canvas_bytes_sent()
    remb1 = room.remb_counts()
    dt = cpu["seconds"]
    out_fps = (mixer.encoder.frames - out0) / dt
    in_fps = (sum(m.frames_in for m in mixer.members.values()) - in0) / n / dt
    # Canvas packets a member's sender did not take in time (its queue of 2 drops the oldest): a starved loop.
    dropped = sum(m.video_out.dropped for m in mixer.members.values() if m.video_out is not None) - dropped0
    compose = list(mixer.compose_ms)[-max(1, len(mixer.compose_ms) - compose_n0) :]
    render = list(mixer.composite_ms)[-max(1, len(mixer.composite_ms) - render_n0) :]
    # After the CPU window: where the latency goes, read at the worker's own canvas (bot send → composited).
    reader = room.watch_canvas()
    await asyncio.sleep(split_seconds)
    room.unwatch_canvas()
    bots = await room.stop_window()
    await room.close()
    ingress, _ = stamps.latencies_ms(reader.seen, bots.pop("sent"))
    return {
        "n": n,
        "bots_send": send_sizes,
        "worker_cpu_s_per_s": round(cpu["cpu_s_per_s"], 3),
        "canvas_fps": round(out_fps, 1),
        "worker_rx_fps_mean": round(in_fps, 1),
        "canvas_dropped_fps_mean": round(dropped / n / dt, 1),
        # What each member was sent: REMB from starved bots lowers the shared encoder's bitrate (and the cost).
        "canvas_kbps_per_member": round((bytes1 - bytes0) * 8 / 1000 / n / dt),
        "encoder_target_kbps": round(mixer.encoder.bitrate_bps / 1000),
        "composite_ms_median": _median(compose),
        "render_ms_median": _median(render),
        **bots,
        "to_canvas_p50_ms": harness.rounded(harness.percentile(ingress, 0.50)),
        "to_canvas_p95_ms": harness.rounded(harness.percentile(ingress, 0.95)),
        "load_average": round(load0, 1),
        "worker_threads_s_per_s": cpu["threads"],
        "worker_gc_s_per_s": cpu["gc_s_per_s"],
        # REMB from the worker's video receivers to the bots, per second (sent, skipped by the throttle).
        "remb_sent_per_s": round((remb1[0] - remb0[0]) / dt, 1),
        "remb_skipped_per_s": round((remb1[1] - remb0[1]) / dt, 1),
        "worker_gc_collections": cpu["gc_collections"],
    }


async def main(
    sizes: list[int], seconds: float, warmup: float, bots_cpu: int | None, split_seconds: float, constraints: bool
) -> None:
    results = {}
    print(f"bots {'honour' if constraints else 'ignore'} the sender constraints", flush=True)
    for n in sizes:
        result = await run_size(n, seconds, warmup, bots_cpu, split_seconds, constraints)
        results[n] = result
        print(json.dumps(result), flush=True)
    print()
    print(
        "| N | bots send | worker CPU s/s | canvas fps | kb/s sent per member | inbound fps/member | composite ms | render ms "
        "| bots CPU s/s | bots rx fps "
        "| glass-to-glass p50 / p95 ms | send→canvas p50 / p95 ms | load avg |"
    )
    for n, r in results.items():
        print(
            f"| {n} | {', '.join(r['bots_send'])} | {r['worker_cpu_s_per_s']:.3f} | {r['canvas_fps']} | {r['canvas_kbps_per_member']} | "
            f"{r['worker_rx_fps_mean']} | {r['composite_ms_median']} | {r['render_ms_median']} | "
            f"{r['bots_cpu_s_per_s']} | {r['bots_rx_fps_mean']} | "
            f"{r['latency_p50_ms']} / {r['latency_p95_ms']} | {r['to_canvas_p50_ms']} / {r['to_canvas_p95_ms']} | "
            f"{r['load_average']} |"
        )
    lo, hi = min(results), max(results)
    if lo != hi:
        ratio = results[hi]["worker_cpu_s_per_s"] / results[lo]["worker_cpu_s_per_s"]
        print(f"CPU({hi})/CPU({lo}) = {ratio:.2f} (goal <= {GOAL_RATIO})")
    if 9 in results:
        print(f"CPU(9) = {results[9]['worker_cpu_s_per_s']:.3f} s/s (goal <= {GOAL_CPU_9})")
    p50s = [r["latency_p50_ms"] for r in results.values() if r["latency_p50_ms"] is not None]
    if p50s:
        print(f"latency p50 worst over sizes = {max(p50s):.1f} ms (goal <= {GOAL_LATENCY_P50_MS})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,9,16")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--split-seconds", type=float, default=4.0, help="send → canvas window after the CPU one")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place worker and bots")
    parser.add_argument(
        "--ignore-sender-constraints", action="store_true", help="every bot sends 640x360 whatever its tile"
    )
    args = parser.parse_args()
    bots_cpu = None if args.no_pin else harness.BOTS_CPU
    if not args.no_pin:
        print(harness.pin(harness.WORKER_CPU, "worker"), flush=True)
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as data_dir:
        harness.django_setup(data_dir)
        sizes = [int(s) for s in args.sizes.split(",")]
        constraints = not args.ignore_sender_constraints
        asyncio.run(main(sizes, args.seconds, args.warmup, bots_cpu, args.split_seconds, constraints))
