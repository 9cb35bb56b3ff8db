"""Shared set-up of the media worker benchmarks (``bench/room.py``, ``bench/egress.py``): Django, one real
``MediaWorker`` in this process, N bot members in a spawned child process, CPU pinning and CPU accounting.

Each bot is an aiortc peer on 127.0.0.1 that sends a pre-encoded 640x360 H.264 loop at 30 fps (no encode in the
bot; every frame carries a :mod:`stamps` frame counter) and a sine tone, and receives the room's canvas and its
mix-minus audio. Signalling goes bot → pipe → this process → ``media.join`` on the channel layer → worker →
``media.answer``, as the consumer does.

Fairness on a 2-core box: this process (the worker) is pinned to CPU ``WORKER_CPU`` and the bots to CPU
``BOTS_CPU`` with ``os.sched_setaffinity``, so bots never take the worker's core. Only the probe bot (bot 0)
decodes the canvas (to read the stamps of every tile: glass-to-glass latency); the other bots receive, NACK and
report RTCP like any peer but drop the canvas after depacketizing, so N bots fit on one core. The worker cannot
tell the difference: it sends the same RTP to every member.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import gc
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))
BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import stamps  # noqa: E402  (bench/stamps.py)

BOT_W, BOT_H, BOT_FPS = stamps.SOURCE_W, stamps.SOURCE_H, 30
BOT_BITRATE_BPS = 600_000
MIN_BOT_BITRATE_BPS = 100_000
WORKER_CPU, BOTS_CPU = 0, 1


# ---------------------------------------------------------------------------------------------------- pinning
def pin(cpu: int, label: str) -> str:
    """Pin this process (all its threads, and those it starts later) to ``cpu``; returns a line to print.

    Leaves the affinity alone, and says so, where ``sched_setaffinity`` is missing or ``cpu`` is not allowed.
    """
    if not hasattr(os, "sched_setaffinity"):
        return f"{label}: not pinned (no sched_setaffinity on this platform)"
    before = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {cpu})  # a child may widen the mask it inherited, within its cpuset
    except OSError as exc:
        return f"{label}: not pinned to CPU {cpu} ({exc}); runs on {before}"
    return f"{label}: pid {os.getpid()} pinned to CPU {cpu} (was {before})"


# ---------------------------------------------------------------------------------------------------- CPU
def thread_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) of every live thread of this process, summed by thread name.

    Names are Python's ``threading`` names with digits folded (``room-1a2b`` → ``room-#``); threads Python does
    not know are ``native``. Linux only (``/proc/self/task``); empty elsewhere.
    """
    names = {t.native_id: re.sub(r"[0-9a-f]{8}|\d+", "#", t.name) for t in threading.enumerate()}
    tick_hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    result: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return result
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick_hz
        name = names.get(int(tid), "native")
        result[name] = result.get(name, 0.0) + cpu
    return result


class CpuWindow:
    """Process CPU-seconds per second over a window, with the per-thread-name split and the time spent in the
    cyclic garbage collector (``gc_s_per_s``, wall time between ``gc.callbacks`` start/stop, any thread) with the
    number of collections per generation (``gc_collections``)."""

    def __init__(self) -> None:
        self.gc_s = 0.0
        self.gc_collections = [0, 0, 0]
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)
        self.c0, self.w0, self.t0 = time.process_time(), time.perf_counter(), thread_cpu_s()

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started
            self.gc_collections[info["generation"]] += 1

    def close(self) -> dict:
        dt = time.perf_counter() - self.w0
        cpu = (time.process_time() - self.c0) / dt
        t1 = thread_cpu_s()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        threads = {name: round((t1[name] - self.t0.get(name, 0.0)) / dt, 3) for name in t1}
        return {
            "seconds": dt,
            "cpu_s_per_s": cpu,
            "threads": dict(sorted(((k, v) for k, v in threads.items() if v >= 0.005), key=lambda kv: -kv[1])),
            "gc_s_per_s": round(self.gc_s / dt, 4),
            "gc_collections": list(self.gc_collections),
        }


async def cpu_over(seconds: float) -> float:
    """This process's CPU-seconds per second while sleeping ``seconds`` on the event loop."""
    window = CpuWindow()
    await asyncio.sleep(seconds)
    return window.close()["cpu_s_per_s"]


# ---------------------------------------------------------------------------------------------------- Django
def django_setup(data_dir: str) -> None:
    """Django on a throw-away SQLite database in ``data_dir`` and the in-memory channel layer; migrated."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parley.settings")
    os.environ["PARLEY_DATA_DIR"] = data_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir}/bench.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# ---------------------------------------------------------------------------------------------------- bots
def bot_payloads(size: tuple[int, int] = (BOT_W, BOT_H)) -> list[bytes]:
    """``STAMP_PERIOD`` pre-encoded 640x360 H.264 frames (x264 ultrafast baseline, 600 kb/s, GOP 60): a panning
    gradient and a moving disc, frame ``i`` stamped with ``i``; frame 0 is an IDR so the loop wraps cleanly.

    ``size``: ``(width, height)`` px to send instead, as a browser honouring ``webrtc.sender_constraints`` does
    (``scaleResolutionDownBy``): the 640x360 picture is drawn, stamped, then scaled down (``INTER_AREA``), and
    the bitrate scales with the pixel count (at least ``MIN_BOT_BITRATE_BPS``)."""
    import av
    import cv2
    import numpy as np

    width, height = size
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, 90000)
    codec.framerate = fractions.Fraction(BOT_FPS, 1)
    codec.bit_rate = max(MIN_BOT_BITRATE_BPS, BOT_BITRATE_BPS * width * height // (BOT_W * BOT_H))
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "bf": "0"}
    codec.gop_size = 60
    yy, xx = np.mgrid[0:BOT_H, 0 : BOT_W + 256].astype(np.float32)
    scene = np.stack(
        [128 + 90 * np.sin(xx / 41.0) * np.cos(yy / 57.0), 128 + 80 * np.sin((xx + yy) / 73.0), 140 + 0 * xx], -1
    ).astype(np.uint8)
    payloads = []
    for i in range(stamps.STAMP_PERIOD):
        image = np.ascontiguousarray(scene[:, (i * 3) % 256 : (i * 3) % 256 + BOT_W])
        cx = int(BOT_W / 2 + BOT_W / 3 * np.sin(i / 11.0))
        cv2.circle(image, (cx, BOT_H * 2 // 3), BOT_H // 6, (230, 190, 160), -1)
        stamps.draw_stamp(image, i)
        if (width, height) != (BOT_W, BOT_H):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i * 3000
        frame.time_base = codec.time_base
        frame.pict_type = av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
        payloads.extend(bytes(p) for p in codec.encode(frame))
    payloads.extend(bytes(p) for p in codec.encode(None))
    if len(payloads) != stamps.STAMP_PERIOD:
        raise RuntimeError(f"expected {stamps.STAMP_PERIOD} encoded frames, got {len(payloads)}")
    return payloads


def tone_payloads(frequency_hz: int) -> list[bytes]:
    """One second (50 × 20 ms) of a mono 48 kHz sine of an integer ``frequency_hz`` as Opus packets (PyAV
    libopus, 32 kb/s); the loop is seamless because the sine completes whole periods in a second."""
    import av
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "mono", "s16"
    codec.bit_rate = 32_000
    codec.time_base = fractions.Fraction(1, 48000)
    packets = []
    for k in range(50 + 1):  # one extra frame flushes the encoder's look-ahead
        t = (np.arange(960) + (k % 50) * 960) / 48000
        pcm = (8000 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, k * 960, codec.time_base
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets[:50]


def widen_receive_buffer(pc, size_bytes: int = 4 << 20) -> int:
    """Set ``SO_RCVBUF`` of a connected peer's ICE sockets (capped by the kernel's ``rmem_max``); returns the
    size the kernel reports for the last one (it doubles the request for bookkeeping)."""
    import socket

    reported = 0
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        for protocol in connection._protocols:
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size_bytes)
                reported = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return reported


def bots_main(conn, indices: list[int], cpu: int | None = BOTS_CPU) -> None:
    """Child process entry: run the bots ``indices`` (bot 0 is the probe), talking to the parent over ``conn``
    (see :class:`BotRoom`)."""
    import logging

    label = "probe" if indices == [0] else f"bots {indices[0]}..{indices[-1]}"
    logging.basicConfig(level=logging.WARNING, format=f"{label}: %(levelname)s %(name)s %(message)s")
    if cpu is not None:
        print(pin(cpu, label), flush=True)
    asyncio.run(_bots(conn, indices))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def _bots(conn, indices: list[int]) -> None:
    import aioice.ice
    import av
    import numpy as np
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from media.worker.jitter import is_keyframe, release_frames_on_marker

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]
    loops = {(BOT_W, BOT_H): bot_payloads()}  # pre-encoded loops by size
    h264 = [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType == "video/H264" and c.parameters.get("profile-level-id") == "42e01f"
    ]
    history: dict[int, list[tuple[int, float]]] = {i: [] for i in indices}  # (stamp, send time) while recording

    class PreEncodedTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self, index: int) -> None:
            super().__init__()
            self._index = index
            self._n = 0
            self._start: float | None = None
            self.size = (BOT_W, BOT_H)
            self.payloads = loops[self.size]
            self.next_size: tuple[int, int] | None = None  # switched to at that loop's next keyframe
            self.switched = asyncio.Event()

        async def recv(self):
            if self._start is None:
                self._start = time.monotonic()
            await asyncio.sleep(max(0.0, self._start + self._n / BOT_FPS - time.monotonic()))
            stamp = self._n % stamps.STAMP_PERIOD
            if self.next_size is not None and is_keyframe(loops[self.next_size][stamp]):
                self.size, self.next_size = self.next_size, None
                self.payloads = loops[self.size]
                self.switched.set()
            packet = av.Packet(self.payloads[stamp])
            packet.pts = self._n * (90000 // BOT_FPS)
            packet.time_base = fractions.Fraction(1, 90000)
            self._n += 1
            now_s = time.monotonic()
            if probe["recording"]:
                history[self._index].append((stamp, round(now_s, 6)))
            return packet

    class PreEncodedToneTrack(MediaStreamTrack):
        """A sine tone as pre-encoded Opus packets, paced at 20 ms (aiortc's sender only packs them)."""

        kind = "audio"

        def __init__(self, frequency_hz: int) -> None:
            super().__init__()
            self._payloads = tone_payloads(frequency_hz)
            self._n = 0
            self._start: float | None = None

        async def recv(self):
            if self._start is None:
                self._start = time.monotonic()
            await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - time.monotonic()))
            packet = av.Packet(self._payloads[self._n % len(self._payloads)])
            packet.pts = self._n * 960
            packet.time_base = fractions.Fraction(1, 48000)
            self._n += 1
            return packet

    loop = asyncio.get_running_loop()
    pcs: list = []
    received = dict.fromkeys(indices, 0)
    probe = {"reader": None, "recording": False}

    def read_canvas(frame, at_s: float) -> None:
        reader = probe["reader"]
        if reader is not None and probe["recording"]:
            plane = frame.planes[0]
            reader.read(
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width], at_s
            )

    async def consume(i: int, track) -> None:
        """Drain one received track of the probe; canvas frames are timed and their stamps read."""
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    received[i] += 1
                    read_canvas(frame, time.monotonic())

    def stop_decoding(receiver) -> None:
        """Stop a receiver's decoder thread: what arrives is still depacketized (RTCP, NACK) but never decoded."""
        if receiver._RTCRtpReceiver__decoder_thread is not None:
            receiver._RTCRtpReceiver__decoder_queue.put(None)
            receiver._RTCRtpReceiver__decoder_thread = None

    def count_frames_only(i: int, receiver) -> None:
        """Count the canvas frames a non-probe bot receives (marker bit) without decoding them."""
        stop_decoding(receiver)
        handle = receiver._handle_rtp_packet

        async def counting(packet, arrival_time_ms):
            if packet.marker:  # the last packet of a video frame (RTX copies are rare on loopback)
                received[i] += 1
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = counting

    tracks: dict[int, PreEncodedTrack] = {}
    for i in indices:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        tracks[i] = PreEncodedTrack(i)
        video = pc.addTransceiver(tracks[i], direction="sendrecv")
        video.setCodecPreferences(h264)
        # No REMB from the bots: a bot starved of CPU would report a collapsing estimate and the worker would
        # lower the room's bitrate (and its own cost); the worker is measured at the room quality's bitrate.
        video.receiver._RTCRtpReceiver__remote_bitrate_estimator = None
        if i == 0:
            # The probe completes a frame at its marker-bit packet, as Chromium and Parley's worker do, not one
            # frame later as aiortc's stock jitter buffer would (media.worker.jitter).
            release_frames_on_marker(video.receiver)
        pc.addTransceiver(PreEncodedToneTrack(300 + 50 * i), direction="sendrecv")
        if i == 0:
            pc.on("track", lambda track, i=i: asyncio.ensure_future(consume(i, track)))
        await pc.setLocalDescription(await pc.createOffer())
        conn.send(("offer", i, pc.localDescription.sdp))
        _, _, sdp = await loop.run_in_executor(None, conn.recv)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        pcs.append(pc)
    while not all(pc.connectionState == "connected" for pc in pcs):
        await asyncio.sleep(0.05)
    # Under load a starved bot loop lets the kernel drop canvas packets (UDP RcvbufErrors): give every bot socket
    # the largest receive buffer the kernel allows without a sysctl (net.core.rmem_max).
    buffers = {widen_receive_buffer(pc) for pc in pcs}
    print(f"bots: UDP receive buffers {sorted(buffers)} bytes", flush=True)
    # Receivers start their decoder once DTLS is up: wait for every one, then stop the audio decoders (no bot
    # listens) and the canvas decoders of bots 1..N-1 (only the probe reads the canvas).
    receivers = [t.receiver for pc in pcs for t in pc.getTransceivers()]
    while not all(r._RTCRtpReceiver__decoder_thread is not None for r in receivers):
        await asyncio.sleep(0.05)
    for i, pc in zip(indices, pcs, strict=True):
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                stop_decoding(transceiver.receiver)
                continue
            if i > 0:
                count_frames_only(i, transceiver.receiver)
    conn.send(("connected", 0, ""))
    # The sizes the worker asked for (``{bot: [width, height]}``; empty when the bench ignores them): encode a
    # loop per size (this process's CPU), switch at the next keyframe, and tell the parent once every bot did.
    _, _, asked = await loop.run_in_executor(None, conn.recv)
    for i, (width, height) in json.loads(asked).items():
        # As the SDK does: scaleResolutionDownBy = max(1, min(captured / asked)), 2 decimals; even sizes here.
        scale = round(max(1.0, min(BOT_W / width, BOT_H / height)), 2)
        size = (int(BOT_W / scale) // 2 * 2, int(BOT_H / scale) // 2 * 2)
        if size not in loops:
            loops[size] = await loop.run_in_executor(None, bot_payloads, size)
        if size != tracks[int(i)].size:
            tracks[int(i)].next_size = size
            await asyncio.wait_for(tracks[int(i)].switched.wait(), 30)
    conn.send(("sizes", 0, json.dumps({i: track.size for i, track in tracks.items()})))
    _, _, rects = await loop.run_in_executor(None, conn.recv)  # start, with the probe's tile rects
    probe["reader"] = stamps.TileStampReader(
        [(int(bot), tuple(rect)) for bot, rect in json.loads(rects)] if 0 in indices else []
    )
    probe["recording"] = True
    c0, w0, r0 = time.process_time(), time.perf_counter(), dict(received)
    await loop.run_in_executor(None, conn.recv)  # stop
    probe["recording"] = False
    dt = time.perf_counter() - w0
    reader = probe["reader"]
    conn.send(
        (
            "result",
            0,
            json.dumps(
                {
                    "bots_cpu_s_per_s": round((time.process_time() - c0) / dt, 3),
                    "bots_rx_frames": sum(received[i] - r0[i] for i in indices),
                    "seconds": dt,
                    "seen": reader.seen,
                    "probe_canvas_frames": reader.frames,
                    "stamp_misreads": reader.misread,
                    "sent": history,
                }
            ),
        )
    )
    for pc in pcs:
        await pc.close()


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---------------------------------------------------------------------------------------------------- room
@dataclass
class BotRoom:
    """A room session on a real ``MediaWorker`` (this process) with ``n`` bots joined from child processes: the
    probe (bot 0, which decodes the canvas) alone in one, so that its receive path waits for nothing but its own
    packets, and bots 1..N-1 in another, both pinned to ``bots_cpu``.

    ``await open()`` creates the session (720p30 by default) and members, starts the worker and the bots and
    returns once every bot's ICE is connected and, with ``sender_constraints``, every bot sends at the size the
    worker asked it for (``media.sender_constraints``, as the browser SDK does; ``send_sizes`` has them); ``start_window()``/``stop_window()`` bracket a measurement (the
    probe reads stamps only in between; ``stop_window`` returns the bots' figures); ``close()`` ends it all.
    """

    n: int
    quality: str = "720p"
    fps: int = 30
    bots_cpu: int | None = BOTS_CPU
    sender_constraints: bool = False
    send_sizes: dict = field(default_factory=dict)  # {bot: (width, height)} each bot sends at
    worker: object = None
    room: object = None
    session: object = None
    members: list = field(default_factory=list)
    _pipes: list = field(default_factory=list)
    _procs: list = field(default_factory=list)
    _reply_channels: dict = field(default_factory=dict)

    async def open(self) -> BotRoom:
        from asgiref.sync import sync_to_async
        from channels.layers import channel_layers, get_channel_layer

        from media.worker.ice import restrict_host_addresses
        from media.worker.worker import MediaWorker
        from rooms.tests.factories import MemberFactory, RoomSessionFactory

        channel_layers.backends.clear()
        layer = get_channel_layer()
        restrict_host_addresses()
        self.session = await sync_to_async(RoomSessionFactory)(quality=self.quality, fps=self.fps)
        self.members = [await sync_to_async(MemberFactory)(room_session=self.session) for _ in range(self.n)]
        self.worker = MediaWorker(layer=layer)
        await self.worker.start()
        groups = [[0], list(range(1, self.n))] if self.n > 1 else [[0]]
        for indices in groups:
            parent, child = mp.Pipe()
            proc = mp.get_context("spawn").Process(target=bots_main, args=(child, indices, self.bots_cpu))
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)
        loop = asyncio.get_running_loop()
        for pipe, indices in zip(self._pipes, groups, strict=True):
            for _ in indices:
                await self._join(layer, pipe)
        for pipe in self._pipes:
            await loop.run_in_executor(None, pipe.recv)  # every bot connected
        asked = await self._asked_sizes(layer) if self.sender_constraints else {}
        for pipe, indices in zip(self._pipes, groups, strict=True):
            pipe.send(("sizes", 0, json.dumps({str(i): asked[i] for i in indices if i in asked})))
        for pipe in self._pipes:
            _, _, sizes = await loop.run_in_executor(None, pipe.recv)
            self.send_sizes.update({int(i): tuple(size) for i, size in json.loads(sizes).items()})
        self.room = self.worker.rooms[str(self.session.id)]
        return self

    async def _asked_sizes(self, layer) -> dict[int, tuple[int, int]]:
        """The last ``media.sender_constraints`` size the worker sent each bot: read until a bot's reply channel
        has been quiet for a second (the layout has settled)."""
        from media import protocol

        async def last_size(i: int) -> tuple[int, tuple[int, int] | None]:
            size = None
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(self._reply_channels[i]), 30 if size is None else 1)
                except TimeoutError:
                    return i, size
                if message.get("type") == protocol.SENDER_CONSTRAINTS:
                    size = (message["width"], message["height"])

        sizes = dict(await asyncio.gather(*(last_size(i) for i in range(self.n))))
        missing = [i for i, size in sizes.items() if size is None]
        if missing:
            raise RuntimeError(f"the worker asked bots {missing} for no size")
        return sizes

    async def _join(self, layer, pipe) -> None:
        """Relay one bot's offer from ``pipe`` to the worker as ``media.join`` and its answer back."""
        from media import protocol

        _, i, sdp = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        reply_channel = await layer.new_channel("bench.")
        await layer.send(
            protocol.CONTROL_CHANNEL,
            {
                "type": protocol.JOIN,
                "room_session_id": str(self.session.id),
                "member_id": str(self.members[i].id),
                "sdp": sdp,
                "reply_channel": reply_channel,
                "request_id": str(i),
            },
        )
        reply = await asyncio.wait_for(layer.receive(reply_channel), 60)
        if reply["type"] != protocol.ANSWER:
            raise RuntimeError(f"join of bot {i} refused: {reply}")
        self._reply_channels[i] = reply_channel
        pipe.send(("answer", i, reply["sdp"]))

    def tile_rects(self) -> list[tuple[int, tuple[int, int, int, int]]]:
        """``[(bot index, (x, y, w, h))]``: where the compositor draws each bot's picture now (canvas px)."""
        from media.mixer.compositor import _even_rect, _letterbox

        index = {str(m.id): i for i, m in enumerate(self.members)}
        rects = []
        for layer in self.room.layers:
            if layer.member_id in index and not layer.zoom:
                x0, y0, x1, y1 = _even_rect(layer)
                ox, oy, w, h = _letterbox(BOT_W, BOT_H, x1 - x0, y1 - y0)
                rects.append((index[layer.member_id], (x0 + ox, y0 + oy, w, h)))
        return rects

    async def canvas_bytes_sent(self) -> int:
        """Video bytes the worker's senders have sent to the bots so far (``outbound-rtp``, all members)."""
        total = 0
        for peer in self.worker.peers.get(str(self.session.id), {}).values():
            for report in (await peer.pc.getStats()).values():
                if report.type == "outbound-rtp" and report.kind == "video":
                    total += report.bytesSent
        return total

    def remb_counts(self) -> tuple[int, int]:
        """REMB packets the worker's video receivers sent and skipped so far (``media.worker.remb``; 0, 0 without
        the throttle)."""
        sent = skipped = 0
        for peer in self.worker.peers.get(str(self.session.id), {}).values():
            for transceiver in peer.pc.getTransceivers():
                throttle = getattr(transceiver.receiver, "remb_throttle", None)
                if throttle is not None:
                    sent, skipped = sent + throttle.sent, skipped + throttle.skipped
        return sent, skipped

    def watch_canvas(self) -> stamps.TileStampReader:
        """Read every tile's stamp from each canvas the worker composes, in the room's render thread right after
        compositing (bot send → on the canvas). It costs worker CPU: keep it out of CPU windows."""
        import numpy as np

        reader = stamps.TileStampReader(self.tile_rects())
        compositor = self.room.compositor
        compose = compositor.compose

        def watched(layers, tiles):
            canvas = compose(layers, tiles)
            at_s = time.monotonic()
            plane = canvas.planes[0]
            reader.read(
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: canvas.height, : canvas.width], at_s
            )
            return canvas

        compositor.compose = watched  # shadows the method on this instance only
        return reader

    def unwatch_canvas(self) -> None:
        self.room.compositor.__dict__.pop("compose", None)

    def start_window(self) -> None:
        rects = json.dumps(self.tile_rects())
        for pipe in self._pipes:
            pipe.send(("start", 0, rects))

    async def stop_window(self) -> dict:
        """The bots' figures over the window: CPU (both processes), mean canvas fps received per bot, the
        probe's glass-to-glass latency, and ``sent`` (per bot, ``[(stamp, send time)]``)."""
        loop = asyncio.get_running_loop()
        for pipe in self._pipes:
            pipe.send(("stop", 0, ""))
        parts = [json.loads((await loop.run_in_executor(None, pipe.recv))[2]) for pipe in self._pipes]
        sent: list = [[] for _ in range(self.n)]
        for part in parts:
            for i, log in part["sent"].items():
                sent[int(i)] = log
        # The probe saw every tile; the send times of bots 1..N-1 come from the other process.
        latencies, unmatched = stamps.latencies_ms(parts[0]["seen"], sent)
        seconds = max(part["seconds"] for part in parts)
        return {
            "bots_cpu_s_per_s": round(sum(part["bots_cpu_s_per_s"] for part in parts), 3),
            "bots_rx_fps_mean": round(sum(part["bots_rx_frames"] for part in parts) / self.n / seconds, 1),
            "latency_samples": len(latencies),
            "latency_p50_ms": rounded(percentile(latencies, 0.50)),
            "latency_p95_ms": rounded(percentile(latencies, 0.95)),
            "latency_mean_ms": rounded(statistics.fmean(latencies) if latencies else None),
            "probe_canvas_frames": parts[0]["probe_canvas_frames"],
            "stamp_misreads": parts[0]["stamp_misreads"] + unmatched,
            "sent": sent,
        }

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for proc in self._procs:
            await loop.run_in_executor(None, proc.join, 30)
            if proc.is_alive():
                proc.kill()
        await self.worker.stop()
