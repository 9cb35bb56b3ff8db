"""``MemberPeer``: one member's ``RTCPeerConnection`` on the worker.

Negotiation (the member offers, the worker answers; the worker offers on promotion/demotion):
- **codec groups**: the first video m-line carries the room canvas to the member. If the offer has H.264
  constrained baseline ``42e01f`` packetization-mode 1 there, the member joins the room's **H.264 output group**;
  otherwise, if it has VP8, the **VP8 output group** (the canvas is then encoded once more, in VP8, for every VP8
  member together: ``media.worker.encoder``). The answer keeps only that codec (+ RTX) on the m-line, in both
  directions. A video m-line with neither codec is refused with ``MediaRefused("unsupported_codec")``
  (``media.error``, JSON-RPC -32010 at the socket); a later offer cannot change the member's group;
- **extra video m-lines** (a screen share or a second camera added with ``webrtc.offer``) are received only
  (H.264 or VP8) and each becomes a layer of kind ``screen`` whose id is ``<member_id>:<mid>``; it goes away when
  the member stops sending on that m-line, is demoted, or leaves;
- direction per m-line: the worker sends video when ``media_allowed`` is ``all|video-only``, audio when
  ``all|audio-only``; it receives only from ``join_as=member`` (an audience member's m-lines are answered
  ``sendonly``/``inactive``, so no inbound track is used). ``server_offer()`` re-derives the directions after
  promotion/demotion or a ``media_allowed`` change; ``apply_answer()`` then starts using the tracks the member now
  sends;
- an unparsable or inconsistent offer → ``MediaRefused("invalid_sdp", message)``.

ICE: ``RTCConfiguration`` from settings, host candidates restricted to ``PARLEY_ICE_HOST_ADDRESSES``
(``media.worker.ice``). A peer whose ICE does not reach ``connected`` within ``ice_timeout_s`` (20 s), or fails,
is reported through ``on_dropped(member_id, reason)``.

Stats: every ``STATS_INTERVAL_S`` ``pc.getStats()`` is summarised into ``Member.stats``:
``{"updated_at", "rtt_ms", "jitter_ms", "packets_lost", "bytes_in", "bytes_out", "frames_in", "frames_out",
"video_in", "video_asked"}`` (``video_in``: ``[width, height]`` px of the last decoded camera picture;
``video_asked``: ``[width, height, max_framerate]`` of the last sender constraints; either ``null``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription, sdp
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import (
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
)
from aiortc.rtcrtpsender import RTCRtpSender

from media.worker import db
from media.worker.encoder import H264, VIDEO_CODECS, VP8, VideoOutputGroup
from media.worker.ice import announce_address, restrict_host_addresses, rtc_configuration
from media.worker.inputs import decode_directly
from media.worker.jitter import release_frames_on_marker
from media.worker.remb import lean_bitrate_estimator, throttle_remb
from media.worker.room import MemberMedia, RoomMixer
from media.worker.tracks import MixedAudioTrack, PacketVideoTrack

logger = logging.getLogger(__name__)

ICE_TIMEOUT_S = 20.0
STATS_INTERVAL_S = 5.0
H264_PARAMETERS = {"level-asymmetry-allowed": "1", "packetization-mode": "1", "profile-level-id": "42e01f"}
# What each output group's codec must match in an offer (aiortc's own compatibility rules).
_WANTED = {
    H264: RTCRtpCodecParameters(
        mimeType="video/H264", clockRate=90000, payloadType=0, parameters=dict(H264_PARAMETERS)
    ),
    VP8: RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=0),
}
UNSUPPORTED_VIDEO = (
    "Parley sends and receives video as H.264 constrained baseline (42e01f, packetization-mode=1) or VP8; "
    "the offer's video m-line {mid} has neither."
)
SENDING = ("sendrecv", "sendonly", None)
# RTP header-extension ids of the one-byte form (RFC 8285 §4.2): 1-14.
EXTENSION_IDS = range(1, 15)


class MediaRefused(Exception):
    """The worker cannot answer: ``code`` (``invalid_sdp``, ``unsupported_codec``…) and a human ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def codec_preferences(*codecs: str) -> list[RTCRtpCodecCapability]:
    """aiortc capabilities for ``codecs`` (``h264``: 42e01f packetization-mode 1 only; ``vp8``), in that order,
    then RTX."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = []
    for codec in codecs:
        chosen += [
            c
            for c in capabilities
            if c.mimeType.lower() == _WANTED[codec].mimeType.lower()
            and (codec != H264 or c.parameters == H264_PARAMETERS)
        ]
    return chosen + [c for c in capabilities if c.mimeType.lower() == "video/rtx"]


def h264_preferences() -> list[RTCRtpCodecCapability]:
    """H.264 42e01f packetization-mode 1 and RTX, from aiortc's own capabilities."""
    return codec_preferences(H264)


def offered_video_codecs(media: sdp.MediaDescription) -> list[str]:
    """The output codecs (``VIDEO_CODECS`` order: H.264 first) a video m-line offers."""
    return [codec for codec in VIDEO_CODECS if any(is_codec_compatible(_WANTED[codec], c) for c in media.rtp.codecs)]


def parse_offer(offer_sdp: str) -> sdp.SessionDescription:
    """Parse and sanity-check an offer; raises ``MediaRefused`` (``invalid_sdp`` / ``unsupported_codec``)."""
    if not isinstance(offer_sdp, str) or not offer_sdp.strip().startswith("v=0"):
        raise MediaRefused("invalid_sdp", "The offer is not an SDP session description (must start with v=0).")
    try:
        description = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:
        raise MediaRefused("invalid_sdp", f"The offer could not be parsed: {exc}") from None
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media:
        raise MediaRefused("invalid_sdp", "The offer has no audio or video m-line.")
    for m in media:
        if not m.ice.usernameFragment or not m.ice.password or not m.dtls or not m.dtls.fingerprints:
            raise MediaRefused("invalid_sdp", f"The {m.kind} m-line lacks ICE credentials or a DTLS fingerprint.")
        if m.kind == "video" and m.port != 0 and not offered_video_codecs(m):
            raise MediaRefused("unsupported_codec", UNSUPPORTED_VIDEO.format(mid=m.rtp.muxId or "?"))
    return description


def keep_extension_ids(offer_sdp: str, *negotiated_sdps: str | None) -> str:
    """``offer_sdp`` with each m-line's ``a=extmap`` ids set to those already negotiated for its mid.

    aiortc's ``createOffer()`` numbers the header extensions afresh (its own table); RFC 8285 §6 and JSEP
    (RFC 8829 §5.2.2) keep an extension's id for the whole session. ``negotiated_sdps``: the connection's
    current descriptions, the local one first (its ids win), then the remote one (whose other ids stay
    reserved). Per m-line (matched by mid): a URI negotiated before takes its id; a URI new to the m-line keeps
    the offer's id if it is free, else takes the lowest free id of 1-14, else is left out. An m-line new to the
    connection is left as offered. Raises ``ValueError`` for an unparsable SDP.
    """
    offer = sdp.SessionDescription.parse(offer_sdp)
    known: dict[str, dict[str, int]] = {}  # mid -> uri -> id
    reserved: dict[str, set[int]] = {}  # mid -> every id in use on the m-line
    for previous_sdp in reversed([s for s in negotiated_sdps if s]):
        for media in sdp.SessionDescription.parse(previous_sdp).media:
            if media.kind not in ("audio", "video") or media.rtp.muxId is None:
                continue
            ids = known.setdefault(media.rtp.muxId, {})
            for extension in media.rtp.headerExtensions:
                ids[extension.uri] = extension.id
                reserved.setdefault(media.rtp.muxId, set()).add(extension.id)
    for media in offer.media:
        ids = known.get(media.rtp.muxId) if media.kind in ("audio", "video") else None
        if ids is None:
            continue
        used = set(reserved.get(media.rtp.muxId, ())) | set(ids.values())
        kept, new = [], []
        for extension in media.rtp.headerExtensions:
            if extension.uri in ids:
                kept.append(RTCRtpHeaderExtensionParameters(id=ids[extension.uri], uri=extension.uri))
            else:
                new.append(extension)
        for extension in new:
            free = [extension.id] if extension.id not in used else [i for i in EXTENSION_IDS if i not in used]
            if free:
                used.add(free[0])
                kept.append(RTCRtpHeaderExtensionParameters(id=free[0], uri=extension.uri))
        media.rtp.headerExtensions = kept
    return str(offer)


def report_audio_level(sender: RTCRtpSender) -> None:
    """Fill the ``ssrc-audio-level`` header extension (RFC 6464) of an audio sender fed by a ``MixedAudioTrack``.

    aiortc 1.16 measures the level only of the ``AudioFrame``s it encodes itself (``RTCRtpSender.
    _next_encoded_frame``); for a pre-encoded ``av.Packet`` it sends none. The wrapper gives each encoded frame the
    level the track measured for that packet (``MixedAudioTrack.level_dbov``), which aiortc's RTP loop then writes
    into every packet of the frame. Without that method (another aiortc) the sender is left as it is."""
    next_encoded_frame = getattr(sender, "_next_encoded_frame", None)
    if next_encoded_frame is None or getattr(sender, "_parley_audio_level", False):
        return

    async def with_level(codec):
        frame = await next_encoded_frame(codec)
        track = sender.track
        if frame is not None and getattr(frame, "audio_level", 0) is None and isinstance(track, MixedAudioTrack):
            frame.audio_level = track.level_dbov
        return frame

    sender._next_encoded_frame = with_level
    sender._parley_audio_level = True


def _direction(send: bool, recv: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, recv), "inactive"
    )


class MemberPeer:
    """A member's peer connection bound to a ``RoomMixer``.

    ``on_dropped(member_id, reason)``: awaited when ICE times out or fails (``ice_timeout``/``ice_failed``).
    ``video_codec``: the member's output group (``h264``/``vp8``), None before the first offer or without video.
    ``sources``: ``{mid: source id}`` of the extra video m-lines shown as ``screen`` layers.
    """

    def __init__(
        self,
        room: RoomMixer,
        member: MemberMedia,
        *,
        reply_channel: str | None,
        on_dropped: Callable[[str, str], Awaitable[None]] | None = None,
        ice_timeout_s: float = ICE_TIMEOUT_S,
    ) -> None:
        self.room = room
        self.member = member
        self.member_id = member.member_id
        self.reply_channel = reply_channel
        self.on_dropped = on_dropped
        self.ice_timeout_s = ice_timeout_s
        self.pc: RTCPeerConnection | None = None
        self.video_codec: str | None = None
        self.canvas_mid: str | None = None
        self.sources: dict[str, str] = {}
        self._inputs: set[str] = set()  # mids whose received track feeds the mixer
        self._keyframes_installed = False
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    def _log(self, message: str, *args) -> None:
        logger.info(message + " room_session_id=%s member_id=%s", *args, self.room.room_session_id, self.member_id)

    @property
    def video_group(self) -> VideoOutputGroup:
        """The room's output group this member receives (H.264 when it receives no video)."""
        return self.room.video_groups[self.video_codec or H264]

    async def answer(self, offer_sdp: str) -> str:
        """Apply the member's first offer and return the answer SDP. Raises ``MediaRefused``."""
        description = parse_offer(offer_sdp)
        self._choose_canvas(description)
        restrict_host_addresses()
        pc = RTCPeerConnection(rtc_configuration())
        self.pc = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                # Packets queued while ICE/DTLS were connecting went stale: start the member at a fresh keyframe.
                if self.member.video_out is not None:
                    self.member.video_out.restart_at_keyframe()
                self.video_group.keyframes.request(self.member_id, reason="connected")
            elif pc.connectionState == "failed" and not self._closed:
                await self._drop("ice_failed")

        # One transceiver per offered m-line, in order, so aiortc pairs them with the offer's mids.
        for media in description.media:
            if media.kind not in ("audio", "video"):
                continue
            self._add_transceiver(pc, media)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self.close()
            raise MediaRefused("invalid_sdp", f"The offer could not be applied: {exc}") from None
        self._install_keyframes()
        self._sync_inputs(description)
        self._tasks.append(asyncio.ensure_future(self._ice_watchdog()))
        self._tasks.append(asyncio.ensure_future(self._stats_loop()))
        self._log("answered codec=%s", self.video_codec)
        return announce_address(pc.localDescription.sdp)

    def _choose_canvas(self, description: sdp.SessionDescription) -> None:
        """Pick the m-line that carries the canvas (the first usable video m-line: a rejected one, port 0, has no
        codec to choose) and the member's output group, unless one was chosen before (a member who joined without
        video and adds a camera later gets it then)."""
        if self.canvas_mid is not None:
            return
        video = next((m for m in description.media if m.kind == "video" and offered_video_codecs(m)), None)
        if video is None:
            return
        self.canvas_mid = video.rtp.muxId
        self.video_codec = offered_video_codecs(video)[0]
        if self.member.video_out is not None:
            # Before any await: the room's next frame already goes to the right group.
            self.member.video_out.set_codec(self.video_codec)

    def _install_keyframes(self) -> None:
        """Route the canvas sender's PLI/FIR and REMB to the member's own group (also before it sends: a member
        who receives video only after a renegotiation is covered)."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video" and transceiver.mid == self.canvas_mid and not self._keyframes_installed:
                self.video_group.keyframes.install(transceiver.sender, self.member_id)
                self._keyframes_installed = True

    def _add_transceiver(self, pc: RTCPeerConnection, media: sdp.MediaDescription) -> RTCRtpTransceiver:
        member = self.member
        offered_send = media.direction in SENDING
        offered_recv = media.direction in ("sendrecv", "recvonly", None)
        canvas = media.kind == "video" and media.rtp.muxId == self.canvas_mid
        if media.kind == "video":
            track = member.video_out if canvas else None  # extra video m-lines are received only
        else:
            track = member.audio_out
        send = track is not None and offered_recv
        recv = member.sends_media and offered_send
        transceiver = pc.addTransceiver(track if send else media.kind, direction=_direction(send, recv))
        if canvas:
            transceiver.setCodecPreferences(codec_preferences(self.video_codec))
        elif media.kind == "video" and offered_video_codecs(media):
            transceiver.setCodecPreferences(codec_preferences(*offered_video_codecs(media)))
        decode_directly(transceiver.receiver)  # decoded frames reach the room without the loop (media.worker.inputs)
        if media.kind == "video":
            release_frames_on_marker(transceiver.receiver)  # decode a frame at its last packet (media.worker.jitter)
            throttle_remb(transceiver.receiver)  # REMB at most every 200 ms unless it drops 3 % (media.worker.remb)
            lean_bitrate_estimator(transceiver.receiver)  # aiortc's estimates at half the cost (media.worker.remb)
        else:
            report_audio_level(transceiver.sender)
        return transceiver

    def _sync_inputs(self, remote: sdp.SessionDescription) -> None:
        """Feed the mixer with what the member sends now (after any negotiation): the canvas m-line's and audio
        tracks as the member's inputs, other video m-lines as ``screen`` sources; a source whose m-line stopped
        sending, or every source of a member who no longer sends media, is removed."""
        if self.pc is None:
            return
        sending = {m.rtp.muxId for m in remote.media if m.kind in ("audio", "video") and m.direction in SENDING}
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            track = transceiver.receiver.track
            live = self.member.sends_media and mid in sending and track is not None
            if mid in self.sources and not live:
                self.room.remove_member(self.sources.pop(mid))
                self._inputs.discard(mid)
            if not live or mid in self._inputs:
                continue
            self._inputs.add(mid)
            if transceiver.kind == "video" and mid != self.canvas_mid:
                source_id = self.sources[mid] = f"{self.member_id}:{mid}"
                self.room.add_member(
                    source_id,
                    {"type": "screen", "name": f"{self.member.name} (screen)".strip(), "media_allowed": "none"},
                )
                self.room.attach_input(source_id, track)
                self._log("screen source added mid=%s", mid)
            else:
                # The member's own camera/microphone. Once attached it stays drained (aiortc's receiver queues
                # are unbounded); a demoted member's input is simply left out of the layout and the mix.
                self.room.attach_input(self.member_id, track)

    async def renegotiate(self, offer_sdp: str) -> str:
        """Apply a member's later offer (``media.offer``) on the same connection; returns the answer.

        Raises ``MediaRefused``: ``invalid_sdp`` (also while a ``server_offer`` awaits the member's answer: glare),
        or ``unsupported_codec`` when the canvas m-line no longer offers the member's codec or a new video m-line
        offers neither H.264 nor VP8. A refused offer leaves the connection as it was."""
        if self.pc is None:
            return await self.answer(offer_sdp)
        description = parse_offer(offer_sdp)
        if self.pc.signalingState != "stable":
            raise MediaRefused(
                "invalid_sdp",
                "The media worker's own offer is awaiting an answer: answer its webrtc.offer, then offer again.",
            )
        for media in description.media:
            if media.kind == "video" and media.rtp.muxId == self.canvas_mid and media.port != 0:
                if self.video_codec not in offered_video_codecs(media):
                    raise MediaRefused(
                        "unsupported_codec",
                        f"The member receives the room as {self.video_codec.upper()}; an offer cannot change the "
                        "codec of a live connection (rejoin instead).",
                    )
        self._choose_canvas(description)
        known = {t.mid for t in self.pc.getTransceivers() if t.mid is not None}
        for media in description.media:
            if media.kind in ("audio", "video") and media.rtp.muxId not in known:
                self._add_transceiver(self.pc, media)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            raise MediaRefused("invalid_sdp", f"The offer could not be applied: {exc}") from None
        self._install_keyframes()
        self._sync_inputs(description)
        self._log("renegotiated sources=%s", sorted(self.sources))
        return announce_address(self.pc.localDescription.sdp)

    def _refresh_outputs(self) -> None:
        """Give the canvas and audio senders the tracks ``media_allowed`` now calls for (creating them in the
        member's output group), or none."""
        member = self.member
        if member.receives_video and member.video_out is None:
            member.video_out = PacketVideoTrack(self.video_codec or H264)
        if member.receives_audio and member.audio_out is None:
            member.audio_out = MixedAudioTrack()
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video" and transceiver.mid == self.canvas_mid:
                transceiver.sender.replaceTrack(member.video_out if member.receives_video else None)
            elif transceiver.kind == "audio":
                transceiver.sender.replaceTrack(member.audio_out if member.receives_audio else None)

    async def server_offer(self) -> str:
        """Renegotiate from the worker (promotion/demotion, ``media_allowed`` change): re-derive every m-line's
        direction from ``join_as``/``media_allowed`` and return the offer SDP (sent as ``media.server_offer``).
        Every m-line keeps the RTP header-extension ids negotiated before (``keep_extension_ids``).

        A demoted member's screen sources leave the layout at once; its own input leaves it through ``join_as``.
        """
        assert self.pc is not None
        self._refresh_outputs()
        for transceiver in self.pc.getTransceivers():
            send = transceiver.sender.track is not None
            transceiver.direction = _direction(send, self.member.sends_media)
        if not self.member.sends_media:
            for mid in list(self.sources):
                self.room.remove_member(self.sources.pop(mid))
                self._inputs.discard(mid)
        offer = await self.pc.createOffer()
        previous = [d.sdp for d in (self.pc.localDescription, self.pc.remoteDescription) if d is not None]
        offer = RTCSessionDescription(sdp=keep_extension_ids(offer.sdp, *previous), type="offer")
        await self.pc.setLocalDescription(offer)
        return announce_address(self.pc.localDescription.sdp)

    async def apply_answer(self, answer_sdp: str) -> None:
        """Apply the member's answer to ``server_offer`` (``media.server_answer``) and start using what it now
        sends (a promoted member's camera and microphone). Raises ``MediaRefused("invalid_sdp")``."""
        assert self.pc is not None
        try:
            description = sdp.SessionDescription.parse(answer_sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        except Exception as exc:
            raise MediaRefused("invalid_sdp", f"The answer could not be applied: {exc}") from None
        self._sync_inputs(description)
        self._log("server offer answered")

    async def _drop(self, reason: str) -> None:
        self._log("dropped reason=%s", reason)
        if self.on_dropped is not None:
            await self.on_dropped(self.member_id, reason)

    async def _ice_watchdog(self) -> None:
        deadline = time.monotonic() + self.ice_timeout_s
        while time.monotonic() < deadline:
            if self.pc is None or self._closed or self.pc.connectionState == "connected":
                return
            await asyncio.sleep(0.1)
        if not self._closed and self.pc is not None and self.pc.connectionState != "connected":
            await self._drop("ice_timeout")

    async def stats(self) -> dict:
        """Summary of ``pc.getStats()`` (units: ms, packets, bytes, frames)."""
        report = await self.pc.getStats() if self.pc is not None else {}
        out = {"rtt_ms": None, "jitter_ms": None, "packets_lost": 0, "bytes_in": 0, "bytes_out": 0}
        jitters_ms = []
        for item in report.values():
            kind = getattr(item, "type", "")
            if kind == "inbound-rtp":
                out["bytes_in"] += getattr(item, "bytesReceived", 0) or 0
                out["packets_lost"] += max(0, item.packetsLost or 0)
                if item.jitter is not None:
                    clock_khz = 90.0 if item.kind == "video" else 48.0
                    jitters_ms.append(float(item.jitter) / clock_khz)
            elif kind == "outbound-rtp":
                out["bytes_out"] += item.bytesSent or 0
            elif kind == "remote-inbound-rtp":
                if item.roundTripTime is not None:
                    rtt_ms = float(item.roundTripTime) * 1000.0
                    out["rtt_ms"] = round(max(out["rtt_ms"] or 0.0, rtt_ms), 2)
        if jitters_ms:
            # aiortc reports jitter in RTP timestamp units of the stream's clock (90 kHz video, 48 kHz audio).
            out["jitter_ms"] = round(max(jitters_ms), 2)
        transport = [item for item in report.values() if getattr(item, "type", "") == "transport"]
        if transport and not out["bytes_in"]:
            out["bytes_in"] = sum(t.bytesReceived for t in transport)
        out["frames_in"] = self.member.frames_in
        picture = self.member.latest_video
        # The camera's decoded size, and the size and fps the member was asked to send (sender constraints).
        out["video_in"] = [picture.width, picture.height] if picture is not None else None
        asked = self.member.sender_constraints
        out["video_asked"] = list(asked) if asked is not None else None
        out["frames_out"] = self.video_group.packets_out if self.member.video_out is not None else 0
        out["updated_at"] = round(time.time(), 3)
        return out

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            try:
                await db.member_stats_save(self.member_id, await self.stats())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("stats failed member_id=%s", self.member_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for source_id in self.sources.values():
            self.room.remove_member(source_id)
        self.sources.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
