"""Egress cost: media worker CPU for a 9-member room with a recording and one RTMP stream on, as a ratio to the
same room without; then 4 rooms recording at once.

    .venv/bin/python bench/egress.py [--members 9] [--seconds 8] [--warmup 3] [--rooms 4]

Part 1 uses ``bench/harness.py``'s bots (a child process pinned to CPU 1, the worker to CPU 0; 720p30 room,
pre-encoded H.264 + tone per bot): the worker's CPU-s/s is measured without egress, then with a recording (fragmented MP4) and an RTMP stream to a local
``ffmpeg -listen 1 … -f null -`` (a separate process, not counted), then without again after both stop; the ratio
is against the mean of the two windows without. Part 2 runs ``--rooms`` memberless 360p15
rooms in this process, each recording, and prints the CPU-s/s and each file's duration against wall time.
Goal: CPU(with)/CPU(without) ≤ 1.10 (no second video encode: only muxing and one AAC encode per room).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import harness  # bench/harness.py (its directory is on sys.path when run as a script)
from harness import cpu_over


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def room_with_and_without(n: int, seconds: float, warmup: float) -> dict:
    from asgiref.sync import sync_to_async

    from media import protocol
    from rooms.models import Recording, Stream

    bots = await harness.BotRoom(n).open()
    worker, session, layer = bots.worker, bots.session, bots.worker.layer
    bots.start_window()
    await asyncio.sleep(warmup)
    without = await cpu_over(seconds)

    url = f"rtmp://127.0.0.1:{_free_port()}/live/bench"
    server = subprocess.Popen(
        [
            shutil.which("ffmpeg"),
            "-nostdin",
            "-loglevel",
            "error",
            "-listen",
            "1",
            "-i",
            url,
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ]
    )
    await asyncio.sleep(0.5)
    recording = await sync_to_async(Recording.objects.create)(project_id=session.project_id, room_session=session)
    stream = await sync_to_async(Stream.objects.create)(
        project_id=session.project_id, room_session=session, url=url, state="streaming"
    )
    channel = worker.channel_name

    async def egress(action: str, object_id, **extra) -> None:
        reply_channel = await layer.new_channel("bench.")
        await layer.send(
            channel,
            {
                "type": protocol.EGRESS,
                "room_session_id": str(session.id),
                "action": action,
                "object_id": str(object_id),
                "reply_channel": reply_channel,
                "request_id": action,
                **extra,
            },
        )
        reply = await asyncio.wait_for(layer.receive(reply_channel), 10)
        assert reply["type"] == protocol.ANSWER, reply

    await egress("recording.start", recording.id)
    await egress("stream.start", stream.id, url=url)
    await asyncio.sleep(warmup)
    with_egress = await cpu_over(seconds)
    rtmp_state = worker.egress.streams[str(stream.id)].state if str(stream.id) in worker.egress.streams else "ended"
    # A second window without egress brackets the one with it, so a change of load on the shared box during the
    # run shows as a difference between the two "without" figures instead of skewing the ratio.
    await egress("recording.stop", recording.id)
    await egress("stream.stop", stream.id)
    await asyncio.sleep(warmup)
    without_after = await cpu_over(seconds)
    await bots.stop_window()
    await bots.close()
    server.kill()
    return {
        "members": n,
        "cpu_without_s_per_s": round(without, 3),
        "cpu_with_recording_and_rtmp_s_per_s": round(with_egress, 3),
        "cpu_without_after_s_per_s": round(without_after, 3),
        "ratio": round(with_egress / ((without + without_after) / 2), 3),
        "rtmp_state_during_measure": rtmp_state,
    }


async def rooms_recording(rooms: int, seconds: float, data_dir: str) -> dict:
    from media.egress.hub import RoomEgressHub
    from media.egress.recording import Recorder
    from media.worker.room import RoomMixer

    mixers, recorders = [], []
    for i in range(rooms):
        mixer = RoomMixer({"room_session_id": str(uuid.uuid4()), "quality": "360p", "fps": 15}, emit_events=False)
        mixer.start()
        mixers.append(mixer)
        recorder = Recorder(recording_id=f"bench{i}", hub=RoomEgressHub(mixer), path=Path(data_dir) / f"bench{i}.mp4")
        recorder.start()
        recorders.append(recorder)
    w0 = time.perf_counter()
    cpu = await cpu_over(seconds)
    for recorder in recorders:
        recorder.stop()
    await asyncio.gather(*(r.finished.wait() for r in recorders))
    wall = time.perf_counter() - w0
    for recorder in recorders:
        await recorder.hub.close()
    for mixer in mixers:
        await mixer.stop()
    return {
        "rooms": rooms,
        "cpu_s_per_s": round(cpu, 3),
        "wall_s": round(wall, 2),
        "durations_s": [round(r.stats.get("duration_s", 0.0), 2) for r in recorders],
        "all_ok": all(r.state == "stopped" for r in recorders),
    }


async def main(args, data_dir: str) -> None:
    part1 = await room_with_and_without(args.members, args.seconds, args.warmup)
    print(json.dumps(part1), flush=True)
    part2 = await rooms_recording(args.rooms, args.seconds, data_dir)
    print(json.dumps(part2), flush=True)
    print(f"CPU(room + recording + RTMP)/CPU(room) = {part1['ratio']:.2f} (goal <= 1.10)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rooms", type=int, default=4)
    args = parser.parse_args()
    print(harness.pin(harness.WORKER_CPU, "worker"), flush=True)
    with tempfile.TemporaryDirectory(prefix="parley-bench-egress-") as data_dir:
        harness.django_setup(data_dir)
        asyncio.run(main(args, data_dir))
