"""``RoomMixer``: the live media of one room session on this worker (DESIGN §6).

Inputs: the latest decoded ``av.VideoFrame`` per member and a small jitter buffer (≤ 100 ms) of 20 ms mono 48 kHz
int16 audio frames per member. A receiver's frames are decoded without the event loop (``media.worker.inputs``):
video in the input's decoder thread straight into ``latest_video``, audio in the room's audio thread once per
tick; any other track (a playback's) is drained continuously.

Video: a loop at the room's fps recomputes the layers only when membership, positions, mute, the floor or the
layout change (``media.mixer.layouts.compute_layers``, emitting ``layout.changed``), then composites
(``media.mixer.compositor.Compositor``) and encodes **once per output group** (``media.worker.encoder``: H.264 and,
while a VP8-only member is present, VP8) in the room's one executor thread, and hands the same ``av.Packet``s to
every member's ``PacketVideoTrack`` of that codec; the render thread also packetizes them once for every member's
sender (``media.worker.rtpsend``); egress subscribers take the H.264 packets.

Audio: every 20 ms one job on the room's audio thread (``RoomMixer._audio_work``) decodes the inputs, runs talk
detection per member (``media.mixer.talk``), mixes every listener's mix-minus (``media.mixer.audio.mix_minus``)
with input/output volume, mute and deaf and Opus-encodes each distinct mix once; the event loop then only queues
the packets on the members' ``MixedAudioTrack``s, emits ``member.talking`` changes and moves the floor
(``FloorTracker``) used by highlight layouts.

Egress: ``subscribe_encoded()`` returns an ``asyncio.Queue`` of ``("video", av.Packet)`` (starting at a
keyframe) and ``("audio", av.AudioFrame)`` (the full mix) items; ``unsubscribe_encoded(queue)`` ends it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError
from django.conf import settings

from media.mixer import audio as audio_mix
from media.mixer import compositor, layouts, talk
from media.worker import db
from media.worker.encoder import (
    EGRESS_KEYFRAME_INTERVAL_S,
    H264,
    MIN_BITRATE_BPS,
    VIDEO_CLOCK_HZ,
    VideoOutputGroup,
    quality_bitrate_bps,
    video_output_groups,
)
from media.worker.inputs import AudioSink, MonoPcm, VideoSink, input_sink
from media.worker.jitter import MarkerJitterBuffer, decode_gate
from media.worker.tracks import (
    AUDIO_RATE_HZ,
    AUDIO_SAMPLES,
    AUDIO_TIME_BASE,
    MixedAudioTrack,
    PacketVideoTrack,
    SharedOpusEncoder,
    encode_mixes,
)

logger = logging.getLogger(__name__)

AUDIO_TICK_S = AUDIO_SAMPLES / AUDIO_RATE_HZ
JITTER_MAX_FRAMES = 5  # 100 ms
JITTER_START_FRAMES = 2  # start playing a member after 40 ms buffered
PREVIEW_INTERVAL_S = 5.0
BITRATE_INTERVAL_S = 2.0
PREVIEW_WIDTH_PX = 320
EGRESS_QUEUE_SIZE = 300
# A member is asked again for its drawn size only when that size moved by more than this share (either side).
SENDER_CONSTRAINTS_TOLERANCE = 0.08
FLOOR_LAYOUTS = frozenset({"highlight-1-responsive", "5up", "1up_top_left+7", "1up_top_left+9"})


@dataclass
class MemberMedia:
    """A member as the mixer sees it: the media fields of ``Member`` plus live inputs and outputs."""

    member_id: str
    name: str = ""
    kind: str = "member"
    join_as: str = "member"
    media_allowed: str = "all"
    audio_muted: bool = False
    video_muted: bool = False
    deaf: bool = False
    visible: bool = True
    input_volume: float = 0.0
    output_volume: float = 0.0
    input_sensitivity: float = 30.0
    position: str = "auto"
    join_order: int = 0
    talking: bool = False
    has_video_input: bool = False
    latest_video: av.VideoFrame | None = None
    audio_buffer: collections.deque = field(default_factory=lambda: collections.deque(maxlen=JITTER_MAX_FRAMES))
    audio_primed: bool = False
    level: float = 0.0
    video_out: PacketVideoTrack | None = None
    audio_out: MixedAudioTrack | None = None
    talk_detector: Any = None
    frames_in: int = 0
    audio_frames_in: int = 0
    input_tasks: list[asyncio.Task] = field(default_factory=list)
    # The video input's decode gate (media.worker.jitter): paused while the member's video is not on the canvas.
    video_gate: MarkerJitterBuffer | None = None
    # Received inputs decoded without the event loop (media.worker.inputs); None for a drained track.
    video_sink: VideoSink | None = None
    audio_sink: AudioSink | None = None
    # The last ``webrtc.sender_constraints`` asked of the member: (width px, height px, max framerate).
    sender_constraints: tuple[int, int, int] | None = None

    @property
    def receives_video(self) -> bool:
        return self.media_allowed in ("all", "video-only")

    @property
    def receives_audio(self) -> bool:
        return self.media_allowed in ("all", "audio-only")

    @property
    def sends_media(self) -> bool:
        return self.join_as == "member"

    def apply(self, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if hasattr(self, name) and name not in ("member_id",):
                setattr(self, name, value)


def _decode_audio(sinks: list[tuple[MemberMedia, AudioSink]]) -> list[tuple[MemberMedia, list[np.ndarray]]]:
    """Audio executor thread: decode what each member's audio input received since the last tick."""
    decoded = []
    for member, sink in sinks:
        try:
            decoded.append((member, sink.decode_pending()))
        except Exception:
            logger.exception("audio input error member_id=%s", member.member_id)
    return decoded


class AudioTick(NamedTuple):
    """One audio tick's result (``RoomMixer._audio_work``): the full mix (int16, 960 samples; None without
    sources), each listener's Opus packets, the talking changes ``[(member_id, talking)]`` and the talk
    detectors' scores for the floor."""

    full: np.ndarray | None
    encoded: list[tuple[MixedAudioTrack, list[av.Packet]]]
    talking: list[tuple[str, bool]]
    scores: dict[str, float]


def _detect_talking(
    inputs: dict[str, np.ndarray], members: dict[str, MemberMedia]
) -> tuple[list[tuple[str, bool]], dict[str, float]]:
    """Audio thread: run each sending member's talk detector on its frame, set ``member.talking`` where it
    changed and return the changes and the detectors' scores (``talk.FloorTracker`` input). A playback is heard
    by everyone but never holds the floor; a muted member stops talking."""
    changes: list[tuple[str, bool]] = []
    scores: dict[str, float] = {}
    for member_id, pcm in inputs.items():
        member = members[member_id]
        if member.kind == "playback":
            continue
        if member.audio_muted:
            change = False if member.talking else None
        else:
            change = member.talk_detector.update(pcm)
            scores[member_id] = member.talk_detector.score_iir
        if change is not None and change != member.talking:
            member.talking = change
            changes.append((member_id, change))
    return changes, scores


def _below_noise_gate(member: MemberMedia) -> bool:
    """FreeSWITCH's noise gate (``reference/signalwire-freeswitch.md`` §3.3): a member's frame whose score (mean
    ``|sample|`` after input gain) is at or below its energy level (``input_sensitivity``) is not mixed, unless
    the member is talking (the 800 ms hang-over keeps word endings). A gated member hears the full mix, which
    the room encodes once for every such listener. Playbacks are never gated."""
    if member.kind == "playback" or member.talking or member.talk_detector is None:
        return False
    return not member.talk_detector.gate_open


def _make_talk_detector(member: MemberMedia) -> talk.TalkDetector:
    return talk.TalkDetector(
        talk.TalkConfig(input_sensitivity=member.input_sensitivity, input_gain_db=member.input_volume)
    )


class RoomMixer:
    """Mixes one room session. ``config``: ``media.worker.db.session_take``'s dict (quality, fps, layout…).

    Lifecycle: ``start()`` launches the video, audio and event loops; ``stop()`` cancels and awaits them and
    shuts the executor down. Member methods are called on the event loop by the worker.
    """

    def __init__(self, config: dict[str, Any], *, emit_events: bool = True) -> None:
        self.config = config
        self.room_session_id: str = config["room_session_id"]
        self.fps: int = int(config.get("fps") or 20)
        self.canvas_w, self.canvas_h = layouts.canvas_size(config.get("quality") or "720p")
        self.layout_name: str = config.get("layout_name") or "grid-responsive"
        self.hide_video_muted: bool = bool(config.get("hide_video_muted"))
        self.custom_layouts: dict = config.get("custom_layouts") or {}
        self.emit_events = emit_events
        self.members: dict[str, MemberMedia] = {}
        self.max_bitrate_bps = quality_bitrate_bps(config.get("quality") or "720p")
        # One output group per video codec (encoder + keyframe/REMB adapter); a member's PacketVideoTrack.codec
        # picks its group. A group encodes only while it has receivers; H.264 also while egress subscribes.
        self.video_groups: dict[str, VideoOutputGroup] = video_output_groups(
            self.canvas_w, self.canvas_h, fps=self.fps, bitrate_bps=self.max_bitrate_bps
        )
        self.encoder = self.video_groups[H264].encoder
        self.keyframes = self.video_groups[H264].keyframes
        self.compositor = compositor.Compositor(self.canvas_w, self.canvas_h)
        self.floor = talk.FloorTracker()
        # The members the mix takes when more talk at once than it takes (the loudest; audio thread only).
        self.mix_sources = talk.MixSources(settings.PARLEY_MIX_MAX_SOURCES)
        self.floor_member_id: str | None = None
        self.layers: list = []
        self.concrete_layout: str = self.layout_name
        self._layout_dirty = True
        self._last_layout_event: tuple | None = None
        self._join_counter = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"room-{self.room_session_id[:8]}")
        # Every member's mix-minus of a tick is Opus-encoded in one job here (one thread: a track's encoder is
        # never used concurrently), instead of one thread hop per member in aiortc's senders.
        self._audio_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"room-audio-{self.room_session_id[:8]}"
        )
        # Mixes several members hear (listeners' full mix, deaf members' silence): one encode each per tick.
        self._shared_opus = {"full": SharedOpusEncoder(), "silence": SharedOpusEncoder()}
        self._tasks: list[asyncio.Task] = []
        self._events: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue()
        self._egress: list[asyncio.Queue] = []
        self._egress_waiting_keyframe: set[int] = set()
        self._t0_s: float | None = None
        self._last_preview_s = 0.0
        self._last_bitrate_s = 0.0
        self.preview_enabled = bool(config.get("enable_room_previews"))
        self.video_frames_out = 0
        # Render time per canvas frame in ms (composite + every encode), and the composite stage alone.
        self.composite_ms: collections.deque = collections.deque(maxlen=300)
        self.compose_ms: collections.deque = collections.deque(maxlen=300)
        # Set by the worker: ``(member_id, {"width", "height", "max_framerate"})`` on the event loop, to send the
        # member a ``webrtc.sender_constraints`` notification (see ``_ask_senders``).
        self.on_sender_constraints: Callable[[str, dict[str, int]], None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.ensure_future(self._video_loop()),
            asyncio.ensure_future(self._audio_loop()),
            asyncio.ensure_future(self._event_loop()),
        ]

    async def stop(self) -> None:
        for member_id in list(self.members):
            self.remove_member(member_id)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for queue in self._egress:
            queue.put_nowait(None)
        self._egress.clear()
        loop = asyncio.get_running_loop()
        for group in self.video_groups.values():
            await loop.run_in_executor(self._executor, group.encoder.close)
        self._executor.shutdown(wait=False)
        self._audio_executor.shutdown(wait=False)

    # -- members -------------------------------------------------------------------------------------------
    def add_member(self, member_id: str, state: dict[str, Any]) -> MemberMedia:
        """Register a member (``state``: ``db.MEMBER_MEDIA_FIELDS``); creates its outbound tracks."""
        member = self.members.get(member_id)
        if member is None:
            self._join_counter += 1
            member = MemberMedia(member_id=member_id, join_order=self._join_counter)
            self.members[member_id] = member
        member.apply({k: v for k, v in state.items() if k != "type"})
        member.kind = state.get("type", member.kind)
        member.talk_detector = _make_talk_detector(member)
        if member.receives_video and member.video_out is None:
            member.video_out = PacketVideoTrack()
        if member.receives_audio and member.audio_out is None:
            member.audio_out = MixedAudioTrack()
        self.keyframes.request(member_id, reason="join")
        self._layout_dirty = True
        logger.info("member added room_session_id=%s member_id=%s", self.room_session_id, member_id)
        return member

    def remove_member(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is None:
            return
        for task in member.input_tasks:
            task.cancel()
        for sink in (member.video_sink, member.audio_sink):
            if sink is not None and sink.member is member:
                sink.unbind()
        for track in (member.video_out, member.audio_out):
            if track is not None:
                track.stop()
        for group in self.video_groups.values():
            group.keyframes.remb_forget(member_id)
        if member.talking:
            self._queue_event(db.member_talking_emit, self.config, member_id, False)
        self._layout_dirty = True
        logger.info("member removed room_session_id=%s member_id=%s", self.room_session_id, member_id)

    def update_member(self, member_id: str, fields: dict[str, Any]) -> None:
        """Apply ``media.member_update`` fields (mute, deaf, volumes, sensitivity, position, visible, name)."""
        member = self.members.get(member_id)
        if member is None:
            return
        member.apply(fields)
        if fields.keys() & {"input_sensitivity", "input_volume"}:
            member.talk_detector.config.input_sensitivity = member.input_sensitivity
            member.talk_detector.config.input_gain_db = member.input_volume
        if fields.keys() & {"video_muted", "visible", "position", "name", "audio_muted", "join_as"}:
            self._layout_dirty = True

    def set_layout(self, layout_name: str | None, positions: dict[str, str] | None, hide_video_muted) -> None:
        if layout_name:
            self.layout_name = layout_name
        for member_id, position in (positions or {}).items():
            if member_id in self.members:
                self.members[member_id].position = position
        if hide_video_muted is not None:
            self.hide_video_muted = bool(hide_video_muted)
        self._layout_dirty = True

    def attach_input(self, member_id: str, track) -> None:
        """Start draining a member's received ``track`` (audio or video) into the mixer's input slots."""
        member = self.members.get(member_id)
        if member is None:
            return
        sink = input_sink(track)
        if track.kind == "video":
            member.has_video_input = True
            member.video_gate = decode_gate(track)
            self._layout_dirty = True
            if isinstance(sink, VideoSink):
                member.video_sink = sink
                sink.bind(member)
            else:
                member.input_tasks.append(asyncio.ensure_future(self._drain_video(member, track)))
        elif isinstance(sink, AudioSink):
            member.audio_sink = sink
            sink.bind(member)
        else:
            member.input_tasks.append(asyncio.ensure_future(self._drain_audio(member, track)))

    async def _drain_video(self, member: MemberMedia, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            member.latest_video = frame
            member.frames_in += 1

    async def _drain_audio(self, member: MemberMedia, track) -> None:
        mono = MonoPcm()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            try:
                for pcm in mono.chunks(frame):
                    member.audio_buffer.append(pcm)
                    member.audio_frames_in += 1
            except Exception:
                logger.exception(
                    "audio input error room_session_id=%s member_id=%s", self.room_session_id, member.member_id
                )

    # -- egress --------------------------------------------------------------------------------------------
    def subscribe_encoded(self) -> asyncio.Queue:
        """An ``asyncio.Queue`` receiving ``("video", av.Packet)`` from the next keyframe on and
        ``("audio", av.AudioFrame)`` full-mix frames (48 kHz mono s16, 20 ms, pts in 1/48000); ``None`` when the
        room stops. Bounded (300 items): when full, the oldest item is dropped. While any subscriber is active the
        shared encoder emits a keyframe at least every ``EGRESS_KEYFRAME_INTERVAL_S``."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=EGRESS_QUEUE_SIZE)
        self._egress.append(queue)
        self._egress_waiting_keyframe.add(id(queue))
        self.keyframes.request(None, reason="egress")
        self.encoder.keyframe_interval_s = EGRESS_KEYFRAME_INTERVAL_S
        return queue

    def unsubscribe_encoded(self, queue: asyncio.Queue) -> None:
        with contextlib.suppress(ValueError):
            self._egress.remove(queue)
        self._egress_waiting_keyframe.discard(id(queue))
        if not self._egress:
            self.encoder.keyframe_interval_s = None

    def _egress_put(self, queue: asyncio.Queue, item) -> None:
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(item)

    # -- layout --------------------------------------------------------------------------------------------
    def _layout_members(self) -> list[layouts.LayoutMember]:
        return [
            layouts.LayoutMember(
                id=m.member_id,
                name=m.name,
                position=m.position,
                kind=m.kind if m.kind in layouts.MEMBER_KINDS else "member",
                video_muted=m.video_muted,
                visible=m.visible,
                has_video=m.has_video_input,
                join_order=m.join_order,
            )
            for m in self.members.values()
            if m.sends_media
        ]

    def relayout(self) -> None:
        """Recompute the layers; queue ``layout.changed`` when the geometry or the placement changed."""
        self._layout_dirty = False
        members = self._layout_members()
        try:
            layers = layouts.compute_layers(
                self.layout_name,
                members,
                canvas_w=self.canvas_w,
                canvas_h=self.canvas_h,
                floor_member_id=self.floor_member_id,
                hide_video_muted=self.hide_video_muted,
                custom=self.custom_layouts,
            )
            concrete = layouts.concrete_layout_name(
                self.layout_name, members, hide_video_muted=self.hide_video_muted, custom=self.custom_layouts
            )
        except layouts.UnknownLayout:
            logger.warning(
                "unknown layout %s room_session_id=%s; using grid-responsive", self.layout_name, self.room_session_id
            )
            self.layout_name = "grid-responsive"
            return self.relayout()
        self.layers = layers
        self.concrete_layout = concrete
        event_layers = [layer.to_event(self.canvas_w, self.canvas_h) for layer in layers]
        key = (concrete, tuple(tuple(sorted(e.items(), key=lambda kv: kv[0])) for e in event_layers))
        if key != self._last_layout_event:
            self._last_layout_event = key
            self._queue_event(db.layout_changed_emit, self.config, concrete, event_layers)

    # -- video ---------------------------------------------------------------------------------------------
    def _render(self, layers, tiles, pts: int, encodes, idle, preview_path: Path | None):
        """Executor thread: composite once, encode once per active output group, optionally write the preview
        JPEG. ``encodes``: ``[(group, keyframe, bitrate_bps | None)]``; ``idle``: groups whose encoder to close.
        Returns ``({codec: [av.Packet]}, took_ms, preview_path)``."""
        started = time.perf_counter()
        for group in idle:
            group.encoder.close()
        compose_started = time.perf_counter()
        canvas = self.compositor.compose(layers, tiles)
        self.compose_ms.append((time.perf_counter() - compose_started) * 1000.0)
        if preview_path is not None:
            try:
                width = PREVIEW_WIDTH_PX
                height = width * self.canvas_h // self.canvas_w
                preview_path.parent.mkdir(parents=True, exist_ok=True)
                canvas.reformat(width=width, height=height).to_image().save(preview_path, format="JPEG", quality=75)
            except Exception:
                logger.exception("preview failed room_session_id=%s", self.room_session_id)
                preview_path = None
        packets = {}
        for group, keyframe, bitrate_bps in encodes:
            if bitrate_bps is not None:
                group.encoder.set_bitrate(bitrate_bps)
            # Groups encode the same canvas one after another (encode() rewrites pts/time_base in place).
            packets[group.codec] = group.encoder.encode(canvas, pts=pts, keyframe=keyframe)
            for packet in packets[group.codec]:
                group.packetizer.pack(packet)  # RTP payloads for every member's sender, off the event loop
        return packets, (time.perf_counter() - started) * 1000.0, preview_path

    def _target_bitrate_bps(self, group: VideoOutputGroup) -> int:
        """The room quality's bitrate, lowered to 90 % of the group's lowest fresh REMB, never below the minimum."""
        remb = group.keyframes.remb_min_bps()
        if remb is None:
            return self.max_bitrate_bps
        return max(MIN_BITRATE_BPS, min(self.max_bitrate_bps, int(remb * 0.9)))

    async def _video_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval_s = 1.0 / self.fps
        next_s = loop.time()
        self._t0_s = next_s
        while True:
            next_s += interval_s
            delay = next_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -interval_s:
                next_s = loop.time()  # fell behind: skip frames rather than burst
            try:
                await self._video_tick(loop)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("video tick failed room_session_id=%s", self.room_session_id)

    def _gate_decoders(self) -> None:
        """Decode only the video that is shown: pause the decode gate of a member whose video has no layer or is
        muted (its last frame is let go, so a comeback never shows a stale picture), resume it when it is shown
        again (decoding restarts at a keyframe the gate asks the member for)."""
        shown = {layer.member_id for layer in self.layers if layer.member_id}
        for member in self.members.values():
            gate = member.video_gate
            if gate is None:
                continue
            sink = member.video_sink
            if member.member_id in shown and not member.video_muted:
                if sink is not None and gate.paused:
                    sink.show()
                gate.resume()
            elif not gate.paused:
                gate.pause()
                if sink is not None:
                    sink.clear()  # also keeps a frame still in the decoder from coming back
                else:
                    member.latest_video = None

    def _ask_senders(self) -> None:
        """Ask each shown member to send its camera at the size it is drawn and at most at the canvas fps.

        The size is ``compositor.drawn_size`` of the member's decoded picture in its layer's cell (its aspect,
        the layer's fit; ``compositor.cell_size``); a member is asked again only when that size moves by more than
        ``SENDER_CONSTRAINTS_TOLERANCE``. Members not shown, screen shares and playbacks are not asked (a
        member coming back on the canvas keeps its last size until its picture is decoded again). The browser
        SDK applies it with ``RTCRtpSender.setParameters`` (``scaleResolutionDownBy``, ``maxFramerate``), never
        above what it captures.
        """
        if self.on_sender_constraints is None:
            return
        for layer in self.layers:
            member = self.members.get(layer.member_id) if layer.member_id else None
            if member is None or member.kind != "member" or member.video_muted:
                continue
            frame = member.latest_video
            cell_w, cell_h = compositor.cell_size(layer)
            if frame is None or cell_w < 2 or cell_h < 2:
                continue
            width, height = compositor.drawn_size(frame.width, frame.height, cell_w, cell_h, zoom=layer.zoom)
            last = member.sender_constraints
            if (
                last is not None
                and last[2] == self.fps
                and abs(width - last[0]) <= SENDER_CONSTRAINTS_TOLERANCE * last[0]
                and abs(height - last[1]) <= SENDER_CONSTRAINTS_TOLERANCE * last[1]
            ):
                continue
            member.sender_constraints = (width, height, self.fps)
            self.on_sender_constraints(member.member_id, {"width": width, "height": height, "max_framerate": self.fps})

    async def _video_tick(self, loop) -> None:
        outputs = [m.video_out for m in self.members.values() if m.video_out is not None]
        if not outputs and not self._egress and not self.preview_enabled:
            return
        if self._layout_dirty:
            self.relayout()
        self._gate_decoders()
        self._ask_senders()
        tiles = {}
        for layer in self.layers:
            member = self.members.get(layer.member_id) if layer.member_id else None
            if member is None:
                continue
            tiles[member.member_id] = compositor.Tile(
                frame=member.latest_video,
                name=member.name,
                video_muted=member.video_muted or not member.has_video_input,
                talking=member.talking,
            )
        now_s = loop.time()
        pts = int((now_s - (self._t0_s or now_s)) * VIDEO_CLOCK_HZ)
        active = {track.codec for track in outputs}
        if self._egress:
            active.add(H264)  # recording and RTMP take H.264, whatever the members receive
        retarget = now_s - self._last_bitrate_s >= BITRATE_INTERVAL_S
        if retarget:
            # A retarget re-opens the encoder (a keyframe for the group): consider it at most every 2 s.
            self._last_bitrate_s = now_s
        encodes = [
            (group, group.keyframes.take(now_s), self._target_bitrate_bps(group) if retarget else None)
            for codec, group in self.video_groups.items()
            if codec in active
        ]
        idle = [g for codec, g in self.video_groups.items() if codec not in active and g.encoder.is_open]
        preview_path = None
        if self.preview_enabled and now_s - self._last_preview_s >= PREVIEW_INTERVAL_S:
            self._last_preview_s = now_s
            preview_path = Path(settings.PARLEY_DATA_DIR) / "previews" / f"{self.room_session_id}.jpg"
        encoded, took_ms, written = await loop.run_in_executor(
            self._executor, self._render, self.layers, tiles, pts, encodes, idle, preview_path
        )
        self.composite_ms.append(took_ms)
        if written is not None:
            self._queue_event(db.preview_save, self.room_session_id, str(written))
        for codec, packets in encoded.items():
            group = self.video_groups[codec]
            for packet in packets:
                group.packets_out += 1
                for member in self.members.values():
                    if member.video_out is not None and member.video_out.codec == codec:
                        member.video_out.push(packet)
        for packet in encoded.get(H264, ()):
            self.video_frames_out += 1
            for queue in self._egress:
                if id(queue) in self._egress_waiting_keyframe:
                    if not packet.is_keyframe:
                        continue
                    self._egress_waiting_keyframe.discard(id(queue))
                self._egress_put(queue, ("video", packet))

    # -- audio ---------------------------------------------------------------------------------------------
    async def _audio_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_s = loop.time()
        audio_pts = 0
        while True:
            next_s += AUDIO_TICK_S
            delay = next_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                next_s = loop.time()  # stalled > 200 ms: resynchronise instead of bursting
            tick = await self._in_audio_thread(loop, "tick", self._audio_work, list(self.members.values()))
            if tick is not None:
                self._apply_talking(tick.talking, tick.scores)
                for track, packets in tick.encoded:
                    track.push_packets(packets)
                if self._egress and tick.full is not None:
                    frame = av.AudioFrame.from_ndarray(tick.full.reshape(1, -1), format="s16", layout="mono")
                    frame.sample_rate = AUDIO_RATE_HZ
                    frame.pts = audio_pts
                    frame.time_base = AUDIO_TIME_BASE
                    for queue in self._egress:
                        self._egress_put(queue, ("audio", frame))
            audio_pts += AUDIO_SAMPLES

    async def _in_audio_thread(self, loop, what: str, job, *args):
        """Run ``job(*args)`` on the room's audio thread; a failure is logged and yields None (the tick goes on)."""
        try:
            return await loop.run_in_executor(self._audio_executor, job, *args)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("audio %s failed room_session_id=%s", what, self.room_session_id)
            return None

    def _audio_work(self, members: list[MemberMedia]) -> AudioTick:
        """Audio thread, once per 20 ms tick: decode what every member's audio input received, take each
        member's next frame from its jitter buffer, detect talking (``member.talking`` is set here; the event
        loop emits the changes), pick the sources (noise gate, ``talk.MixSources``), mix every listener's
        mix-minus and Opus-encode each distinct mix once.

        ``members``: the room's members when the tick started (a snapshot: joins and leaves land next tick)."""
        sinks = [(m, m.audio_sink) for m in members if m.audio_sink is not None and m.audio_sink.has_pending]
        for member, chunks in _decode_audio(sinks):
            member.audio_buffer.extend(chunks)
            member.audio_frames_in += len(chunks)
        inputs: dict[str, np.ndarray] = {}
        for member in members:
            buffer = member.audio_buffer
            if not member.audio_primed:
                if len(buffer) < JITTER_START_FRAMES:
                    continue
                member.audio_primed = True
            if not buffer:
                member.audio_primed = False
                continue
            inputs[member.member_id] = buffer.popleft()
        by_id = {m.member_id: m for m in members}
        outputs = {m.member_id: m.audio_out for m in members if m.audio_out is not None}
        talking, scores = _detect_talking(inputs, by_id)
        # Deaf also mutes (DESIGN §6); a frame below the member's noise gate is not mixed.
        muted = {m.member_id for m in members if m.audio_muted or m.deaf or not m.sends_media}
        muted.update(member_id for member_id in inputs if _below_noise_gate(by_id[member_id]))
        # Beyond PARLEY_MIX_MAX_SOURCES talking members, the loudest are mixed (playbacks always are).
        candidates = {
            member_id: scores[member_id] for member_id in inputs if member_id in scores and member_id not in muted
        }
        mixed = self.mix_sources.update(candidates)
        muted.update(member_id for member_id in candidates if member_id not in mixed)
        per_listener, full = audio_mix.mix_minus(
            inputs,
            input_gain_db={m.member_id: m.input_volume for m in members},
            output_gain_db={m.member_id: m.output_volume for m in members},
            muted=muted,
            deaf={m.member_id for m in members if m.deaf},
            listeners=list(outputs),
        )
        mixes = [(outputs[member_id], pcm) for member_id, pcm in per_listener.items()]
        encoded = encode_mixes(mixes, full, self._shared_opus) if mixes else []
        return AudioTick(full, encoded, talking, scores)

    def _apply_talking(self, talking: list[tuple[str, bool]], scores: dict[str, float]) -> None:
        """Event loop, after each audio tick: emit ``member.talking`` changes and move the floor."""
        for member_id, change in talking:
            if member_id in self.members:
                self._queue_event(db.member_talking_emit, self.config, member_id, change)
        holder = self.floor.update(scores)
        if holder != self.floor_member_id and (holder is None or holder in self.members):
            self.floor_member_id = holder
            if self.concrete_layout in FLOOR_LAYOUTS or self.layout_name in FLOOR_LAYOUTS:
                self._layout_dirty = True

    # -- events --------------------------------------------------------------------------------------------
    def _queue_event(self, func, *args) -> None:
        if self.emit_events:
            self._events.put_nowait(lambda: func(*args))

    async def _event_loop(self) -> None:
        """Runs the DB/event writes one after another, off the media loops, so their order is kept."""
        while True:
            job = await self._events.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event write failed room_session_id=%s", self.room_session_id)
