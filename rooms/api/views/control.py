"""Server-side control of a live room session (DESIGN §4): member actions, layout, end, and egress
(recordings, streams; playbacks are ``rooms.api.views.playbacks``).

Member and session actions go to the signalling services ``rooms.services.members.member_action`` and
``rooms.services.sessions.room_session_action``, resolved at call time. Recording and stream actions go to
``rooms.services.egress`` and wait for the session's media worker (503 ``media_unavailable`` when none is placed
or none answers). Requests are routed, scoped and validated first.

Scope rules: a session, member, recording, stream or playback of another project is 404; acting on a session
that has ended is 409 ``conflict``; acting on a member who has left is 409.
"""

from __future__ import annotations

import importlib
import logging
import re

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rooms import selectors
from rooms.actors import Actor
from rooms.api.base import ProjectAPIView, error_responses
from rooms.api.serializers import (
    MemberOutputSerializer,
    RecordingOutputSerializer,
    RoomSessionOutputSerializer,
    StreamOutputSerializer,
)
from rooms.exceptions import Conflict, InvalidParameter, MediaUnavailable, NotFound
from rooms.models import Recording, RoomSession, Stream
from rooms.services import egress as egress_service

logger = logging.getLogger(__name__)

MEMBER_ACTIONS = (
    "audio_mute",
    "audio_unmute",
    "video_mute",
    "video_unmute",
    "deaf",
    "undeaf",
    "remove",
    "set_position",
    "promote",
    "demote",
)
RECORDING_ACTIONS = ("pause", "resume", "stop")
POSITION_RE = re.compile(r"^(auto|off-canvas|(reserved|standard)-\d{1,3})$")

SESSION_ID = OpenApiParameter("room_session_id", str, OpenApiParameter.PATH, description="Room session id (UUID).")


def _service(module: str, name: str):
    """``rooms.services.<module>.<name>`` if that module and function exist, else None."""
    try:
        mod = importlib.import_module(f"rooms.services.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"rooms.services.{module}":
            raise
        return None
    return getattr(mod, name, None)


def known_action(action: str, actions, kind: str) -> str:
    """``action`` when it is one of ``actions``; else ``NotFound`` (404) "Unknown <kind> action '<action>'."."""
    if action not in actions:
        raise NotFound(f"Unknown {kind} action '{action}'.")
    return action


def live_session(view: ProjectAPIView, room_session_id: str) -> RoomSession:
    """The caller's session ``room_session_id``: 404 if not theirs, 409 if it has ended."""
    session = selectors.room_session_get(project=view.project, room_session_id=room_session_id)
    if session.status != RoomSession.Status.IN_PROGRESS:
        raise Conflict("The room session has ended.")
    return session


def room_session_action(actor: Actor, session: RoomSession, action: str, params: dict) -> dict:
    fn = _service("sessions", "room_session_action")
    if fn is None:
        raise MediaUnavailable("Live session control is not available on this server.")
    return fn(actor=actor, room_session_id=session.id, action=action, params=params)


def _position(value, attribute: str) -> str:
    if not isinstance(value, str) or not POSITION_RE.match(value):
        raise InvalidParameter("A position is auto, off-canvas, reserved-N or standard-N.", attribute=attribute)
    return value


class MemberActionInputSerializer(serializers.Serializer):
    position = serializers.CharField(
        required=False, max_length=32, help_text="For set_position: auto | reserved-N | standard-N | off-canvas."
    )


class MemberActionApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_members_action",
        summary="Act on a member of a live session",
        description="Actions: " + ", ".join(MEMBER_ACTIONS) + ". 409 when the session has ended or the member "
        "has left; 503 when live control is unavailable.",
        parameters=[
            SESSION_ID,
            OpenApiParameter("member_id", str, OpenApiParameter.PATH, description="Member id (UUID)."),
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(MEMBER_ACTIONS)),
        ],
        request=MemberActionInputSerializer,
        responses={200: MemberOutputSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=[
            OpenApiExample("Pin to the first reserved slot", value={"position": "reserved-1"}, request_only=True)
        ],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str, member_id: str, action: str):
        known_action(action, MEMBER_ACTIONS, "member")
        session = live_session(self, room_session_id)
        member = selectors.member_get(room_session=session, member_id=member_id)
        data = self.body(MemberActionInputSerializer)
        params: dict = {}
        if action == "set_position":
            if "position" not in data:
                raise InvalidParameter("Required for set_position.", attribute="position")
            params["position"] = _position(data["position"], "position")
        if member.leave_time is not None:
            raise Conflict("The member has left the room session.")
        fn = _service("members", "member_action")
        if fn is None:
            raise MediaUnavailable("Live member control is not available on this server.")
        member = fn(actor=self.actor(), member_id=member.id, action=action, params=params)
        return Response(MemberOutputSerializer(member).data)


class LayoutInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    positions = serializers.DictField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text="{member_id: position} applied with the layout.",
    )


class RoomSessionLayoutApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_layout_set",
        summary="Set the layout of a live session",
        parameters=[SESSION_ID],
        request=LayoutInputSerializer,
        responses={200: RoomSessionOutputSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=[OpenApiExample("Speaker view", value={"name": "highlight-1-responsive"}, request_only=True)],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str):
        session = live_session(self, room_session_id)
        data = self.body(LayoutInputSerializer)
        try:
            selectors.layout_get(project=self.project, name=data["name"])
        except NotFound as e:
            raise InvalidParameter(f"Unknown layout '{data['name']}'.", attribute="name") from e
        params: dict = {"name": data["name"]}
        if "positions" in data:
            positions = {}
            for member_id, position in data["positions"].items():
                try:
                    selectors.member_get(room_session=session, member_id=member_id)
                except NotFound as e:
                    raise InvalidParameter(
                        f"No member '{member_id}' in this session.", attribute=f"positions.{member_id}"
                    ) from e
                positions[member_id] = _position(position, f"positions.{member_id}")
            params["positions"] = positions
        room_session_action(self.actor(), session, "set_layout", params)
        session.refresh_from_db()
        return Response(RoomSessionOutputSerializer(session).data)


class RoomSessionEndApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_end",
        summary="End a live session (every member is removed)",
        parameters=[SESSION_ID],
        request=None,
        responses={200: RoomSessionOutputSerializer, **error_responses(404, 409, 503)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str):
        session = live_session(self, room_session_id)
        room_session_action(self.actor(), session, "end", {})
        session.refresh_from_db()
        return Response(RoomSessionOutputSerializer(session).data)


class RecordingActionApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_recordings_action",
        summary="Pause, resume or stop a recording",
        description="The session's media worker applies the action before the answer. Paused time is cut out "
        "of the file; a stopped recording is ``processing`` until finalised (then ``completed`` with its "
        "``uri``). A stop always ends the recording: when no worker carries it any more it is finalised from "
        "what is on disk (``completed`` with the partial duration, or ``failed`` with a reason). 409 when the "
        "recording is not live; 503 ``media_unavailable`` when no media worker is placed for a pause/resume or "
        "none answers it.",
        parameters=[
            OpenApiParameter("recording_id", str, OpenApiParameter.PATH, description="Recording id (UUID)."),
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(RECORDING_ACTIONS)),
        ],
        request=None,
        responses={200: RecordingOutputSerializer, **error_responses(404, 409, 503)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["live control"],
    )
    def post(self, request, recording_id: str, action: str):
        known_action(action, RECORDING_ACTIONS, "recording")
        recording = selectors.recording_get(project=self.project, recording_id=recording_id)
        if recording.status not in ("recording", "paused"):
            raise Conflict(f"The recording is {recording.status}.")
        live_session(self, recording.room_session_id)
        egress_service.egress_action(
            actor=self.actor(),
            room_session_id=recording.room_session_id,
            action=f"recording.{action}",
            object_id=recording.id,
        )
        recording = Recording.objects.get(id=recording.id)
        return Response(RecordingOutputSerializer(recording).data)


class StreamStopApi(ProjectAPIView):
    @extend_schema(
        operation_id="streams_stop",
        summary="Stop a session's stream",
        description="The session's media worker closes the RTMP connection before the answer (``stream.ended`` "
        "is emitted). 409 for a room's standing output or a stream that has ended. A stop always ends the "
        "stream, also when the placed media worker does not answer (logged).",
        parameters=[OpenApiParameter("stream_id", str, OpenApiParameter.PATH, description="Stream id (UUID).")],
        request=None,
        responses={200: StreamOutputSerializer, **error_responses(404, 409, 503)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["live control"],
    )
    def post(self, request, stream_id: str):
        stream = selectors.stream_get(project=self.project, stream_id=stream_id)
        if stream.room_session_id is None:
            raise Conflict("A room's standing output is not running; delete it to stop future sessions using it.")
        if stream.state in ("completed", "failed"):
            raise Conflict(f"The stream is {stream.state}.")
        live_session(self, stream.room_session_id)
        egress_service.egress_action(
            actor=self.actor(), room_session_id=stream.room_session_id, action="stream.stop", object_id=stream.id
        )
        return Response(StreamOutputSerializer(Stream.objects.get(id=stream.id)).data)
