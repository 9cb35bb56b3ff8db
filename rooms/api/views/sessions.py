"""``room_sessions`` reads: list, detail, ``/members``, ``/events``, ``/recordings``, ``/streams`` (reference §1.5)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.downloads import MEDIA_TTL_MAX, recording_download_url
from rooms.api.serializers import (
    EventOutputSerializer,
    MemberOutputSerializer,
    RecordingOutputSerializer,
    RoomSessionOutputSerializer,
    StreamOutputSerializer,
)
from rooms.api.views.control import live_session
from rooms.api.views.rooms import STREAM_EXAMPLE, StreamUrlInputSerializer
from rooms.models import Recording, Stream
from rooms.services import egress as egress_service

SESSION_ID = OpenApiParameter("room_session_id", str, OpenApiParameter.PATH, description="Room session id (UUID).")


class RoomSessionListQuerySerializer(serializers.Serializer):
    room_id = serializers.UUIDField(required=False)
    room_name = serializers.CharField(required=False, max_length=100)
    room_name_matches = serializers.CharField(required=False, max_length=100, help_text="Substring of the name.")
    status = serializers.ChoiceField(choices=["in-progress", "completed"], required=False)
    starts_after = serializers.DateTimeField(required=False, help_text="RFC 3339.")
    ends_before = serializers.DateTimeField(required=False, help_text="RFC 3339.")


class MediaTtlQuerySerializer(serializers.Serializer):
    media_ttl = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MEDIA_TTL_MAX,
        help_text="Seconds the signed recording uri stays valid (default 900, at most 7 days).",
    )


def recording_context(view: ProjectAPIView) -> dict:
    """Serializer context giving each completed recording its signed ``uri`` (``media_ttl`` query param)."""
    ttl = view.query(MediaTtlQuerySerializer).get("media_ttl") or settings.PARLEY_MEDIA_TTL_DEFAULT
    return {"request": view.request, "recording_uri": lambda r: recording_download_url(r, ttl_seconds=ttl)}


class RoomSessionListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_list",
        summary="List room sessions",
        parameters=[RoomSessionListQuerySerializer],
        responses={200: page_serializer("RoomSessionPage", RoomSessionOutputSerializer), **error_responses(422)},
        examples=[OpenApiExample("Live sessions", value={"status": "in-progress"}, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request):
        filters = self.query(RoomSessionListQuerySerializer)
        qs = selectors.room_session_list(project=self.project, **filters)
        return paginate(self, qs, RoomSessionOutputSerializer)


class RoomSessionDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_retrieve",
        summary="Get a room session",
        parameters=[SESSION_ID],
        responses={200: RoomSessionOutputSerializer, **error_responses(404)},
        examples=[OpenApiExample("No parameters", value=None, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        return Response(RoomSessionOutputSerializer(session).data)


class RoomSessionMemberListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_members_list",
        summary="List the members of a room session (present and past)",
        parameters=[SESSION_ID],
        responses={200: page_serializer("MemberPage", MemberOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("First page", value={"page_size": 100}, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        return paginate(self, selectors.member_list(room_session=session), MemberOutputSerializer)


class RoomSessionEventListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_events_list",
        summary="List the persisted events of a room session",
        parameters=[SESSION_ID],
        responses={200: page_serializer("EventPage", EventOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("First page", value={"page_size": 50}, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        return paginate(self, selectors.room_session_event_list(room_session=session), EventOutputSerializer)


class RoomSessionRecordingListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_recordings_list",
        summary="List the recordings of a room session",
        parameters=[SESSION_ID, MediaTtlQuerySerializer],
        responses={200: page_serializer("RecordingPage", RecordingOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("URIs valid one hour", value={"media_ttl": 3600}, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        qs = selectors.recording_list(project=self.project, room_session_id=session.id)
        return paginate(self, qs, RecordingOutputSerializer, context=recording_context(self))

    @extend_schema(
        operation_id="room_sessions_recordings_create",
        summary="Start recording a live session",
        description="The session's media worker starts a fragmented MP4 of the canvas and the full mix and "
        "acknowledges before the answer (``recording.started`` is emitted). 409 when the session has ended or "
        "already has a live recording (one per session); 503 ``media_unavailable`` when no media worker is "
        "placed for the session (no member has joined with media) or none answers.",
        parameters=[SESSION_ID],
        request=None,
        responses={201: RecordingOutputSerializer, **error_responses(404, 409, 503)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str):
        session = live_session(self, room_session_id)
        payload = egress_service.egress_start(
            actor=self.actor(), room_session_id=session.id, kind="recording", params={}
        )
        recording = Recording.objects.get(id=payload["id"])
        return Response(RecordingOutputSerializer(recording, context=recording_context(self)).data, status=201)


class RoomSessionStreamListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_streams_list",
        summary="List the streams of a room session",
        parameters=[SESSION_ID],
        responses={200: page_serializer("SessionStreamPage", StreamOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("First page", value={"page_size": 50}, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        return paginate(self, selectors.room_session_stream_list(room_session=session), StreamOutputSerializer)

    @extend_schema(
        operation_id="room_sessions_streams_create",
        summary="Start an RTMP/RTMPS stream of a live session",
        description="The session's media worker connects to the URL and sends the canvas (H.264) and the full "
        "mix (AAC); the answer carries the URL with its stream key masked. 422 on a URL that is not "
        "rtmp(s)://; 503 ``media_unavailable`` when no media worker is placed for the session or none answers.",
        parameters=[SESSION_ID],
        request=StreamUrlInputSerializer,
        responses={201: StreamOutputSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=[STREAM_EXAMPLE],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str):
        session = live_session(self, room_session_id)
        data = self.body(StreamUrlInputSerializer)
        payload = egress_service.egress_start(
            actor=self.actor(), room_session_id=session.id, kind="stream", params={"url": data["url"]}
        )
        return Response(StreamOutputSerializer(Stream.objects.get(id=payload["id"])).data, status=201)
