"""``rooms`` (CRUD by id or name) and ``rooms/{id}/streams`` (standing RTMP outputs). Reference §1.2, §1.7."""

from __future__ import annotations

from collections import Counter

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.serializers import RoomOutputSerializer, StreamOutputSerializer
from rooms.models import FPS_CHOICES, ROOM_NAME_RE, Member, Quality
from rooms.services import rooms as room_services

ID_OR_NAME = OpenApiParameter("id_or_name", str, OpenApiParameter.PATH, description="The room's id (UUID) or its name.")
ROOM_EXAMPLE = OpenApiExample(
    "A room",
    value={
        "name": "standup",
        "display_name": "Daily stand-up",
        "max_members": 12,
        "quality": "720p",
        "fps": 20,
        "layout": "grid-responsive",
        "record_on_start": False,
        "meta": {"team": "core"},
    },
    request_only=True,
)


class RoomInputSerializer(serializers.Serializer):
    """Writable room fields (reference §1.2 plus Parley's fps, quality, locked, audio_only, stage_only,
    prioritize_handraise)."""

    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=3000, required=False, allow_blank=True)
    max_members = serializers.IntegerField(min_value=1, max_value=300, required=False)
    quality = serializers.ChoiceField(choices=Quality.choices, required=False)
    fps = serializers.ChoiceField(choices=FPS_CHOICES, required=False)
    layout = serializers.CharField(max_length=100, required=False)
    record_on_start = serializers.BooleanField(required=False)
    enable_room_previews = serializers.BooleanField(required=False)
    locked = serializers.BooleanField(required=False)
    prioritize_handraise = serializers.BooleanField(required=False)
    join_from = serializers.DateTimeField(required=False, allow_null=True, help_text="RFC 3339; a date means 00:00Z.")
    join_until = serializers.DateTimeField(required=False, allow_null=True)
    remove_at = serializers.DateTimeField(required=False, allow_null=True)
    remove_after_seconds_elapsed = serializers.IntegerField(
        min_value=1, max_value=200000, required=False, allow_null=True
    )
    audio_only = serializers.BooleanField(required=False)
    stage_only = serializers.BooleanField(required=False)
    sync_audio_video = serializers.BooleanField(required=False)
    tone_on_entry_and_exit = serializers.BooleanField(required=False)
    room_join_video_off = serializers.BooleanField(required=False)
    user_join_video_off = serializers.BooleanField(required=False)
    meta = serializers.JSONField(required=False, help_text="A JSON object, at most 2000 characters serialized.")


class RoomCreateInputSerializer(RoomInputSerializer):
    name = serializers.RegexField(ROOM_NAME_RE, max_length=100, help_text="Unique in the project: A-Z a-z 0-9 _ -")


class RoomQuerySerializer(serializers.Serializer):
    include_active_session = serializers.BooleanField(required=False, default=False)


class RoomListQuerySerializer(RoomQuerySerializer):
    name = serializers.CharField(required=False, max_length=100)
    starts_after = serializers.DateTimeField(required=False, help_text="RFC 3339: join_from after this instant.")
    ends_before = serializers.DateTimeField(required=False, help_text="RFC 3339: join_until before this instant.")


def _room_context(request, rooms: list, include_active_session: bool) -> dict:
    context = {"request": request}
    if include_active_session:
        sessions = selectors.room_active_sessions(rooms=rooms)
        counts = Counter(
            Member.objects.filter(room_session__in=sessions.values(), leave_time__isnull=True).values_list(
                "room_session_id", flat=True
            )
        )
        context.update(active_sessions=sessions, member_counts=counts)
    return context


class RoomListApi(ProjectAPIView):
    @extend_schema(
        operation_id="rooms_list",
        summary="List rooms",
        parameters=[RoomListQuerySerializer],
        responses={200: page_serializer("RoomPage", RoomOutputSerializer), **error_responses(422)},
        examples=[
            OpenApiExample("Rooms with their live session", value={"include_active_session": True}, request_only=True)
        ],
        tags=["rooms"],
    )
    def get(self, request):
        filters = self.query(RoomListQuerySerializer)
        include = filters.pop("include_active_session")
        qs = selectors.room_list(project=self.project, **filters)
        return paginate(self, qs, RoomOutputSerializer, context=lambda rows: _room_context(request, rows, include))

    @extend_schema(
        operation_id="rooms_create",
        summary="Create a room",
        request=RoomCreateInputSerializer,
        responses={201: RoomOutputSerializer, **error_responses(400, 409, 413, 422)},
        examples=[ROOM_EXAMPLE],
        tags=["rooms"],
    )
    def post(self, request):
        data = self.body(RoomCreateInputSerializer)
        room = room_services.room_create(actor=self.actor(), project=self.project, **data)
        return Response(RoomOutputSerializer(room).data, status=status.HTTP_201_CREATED)


class RoomDetailApi(ProjectAPIView):
    def _room(self, id_or_name: str):
        return selectors.room_get(project=self.project, id_or_name=id_or_name)

    def _respond(self, room, include: bool) -> Response:
        return Response(RoomOutputSerializer(room, context=_room_context(self.request, [room], include)).data)

    @extend_schema(
        operation_id="rooms_retrieve",
        summary="Get a room by id or name",
        parameters=[ID_OR_NAME, RoomQuerySerializer],
        responses={200: RoomOutputSerializer, **error_responses(404, 422)},
        examples=[OpenApiExample("By name", value={"include_active_session": True}, request_only=True)],
        tags=["rooms"],
    )
    def get(self, request, id_or_name: str):
        include = self.query(RoomQuerySerializer)["include_active_session"]
        return self._respond(self._room(id_or_name), include)

    @extend_schema(
        operation_id="rooms_update",
        summary="Update a room (fields given are changed, others kept)",
        parameters=[ID_OR_NAME],
        request=RoomInputSerializer,
        responses={200: RoomOutputSerializer, **error_responses(400, 404, 413, 422)},
        examples=[OpenApiExample("Lock and go 1080p", value={"locked": True, "quality": "1080p"}, request_only=True)],
        tags=["rooms"],
    )
    def put(self, request, id_or_name: str):
        room = self._room(id_or_name)
        data = self.body(RoomInputSerializer, partial=True)
        room = room_services.room_update(actor=self.actor(), room=room, **data)
        return self._respond(room, False)

    @extend_schema(
        operation_id="rooms_partial_update",
        summary="Partially update a room",
        parameters=[ID_OR_NAME],
        request=RoomInputSerializer,
        responses={200: RoomOutputSerializer, **error_responses(400, 404, 413, 422)},
        examples=[OpenApiExample("Rename for display", value={"display_name": "All hands"}, request_only=True)],
        tags=["rooms"],
    )
    def patch(self, request, id_or_name: str):
        return self.put(request, id_or_name)

    @extend_schema(
        operation_id="rooms_destroy",
        summary="Delete a room (409 while a session is in progress)",
        parameters=[ID_OR_NAME],
        request=None,
        responses={204: None, **error_responses(404, 409)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["rooms"],
    )
    def delete(self, request, id_or_name: str):
        room_services.room_delete(actor=self.actor(), room=self._room(id_or_name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class StreamUrlInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=1000, help_text="rtmp:// or rtmps:// URL, stream key included.")


STREAM_EXAMPLE = OpenApiExample(
    "An RTMP output", value={"url": "rtmp://live.example.com/app/stream-key"}, request_only=True
)


class RoomStreamListApi(ProjectAPIView):
    @extend_schema(
        operation_id="rooms_streams_list",
        summary="List a room's standing outputs",
        parameters=[ID_OR_NAME],
        responses={200: page_serializer("StreamPage", StreamOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("First page", value={"page_size": 50}, request_only=True)],
        tags=["streams"],
    )
    def get(self, request, id_or_name: str):
        room = selectors.room_get(project=self.project, id_or_name=id_or_name)
        return paginate(self, selectors.room_stream_list(room=room), StreamOutputSerializer)

    @extend_schema(
        operation_id="rooms_streams_create",
        summary="Add an RTMP/RTMPS output started with every session of the room",
        parameters=[ID_OR_NAME],
        request=StreamUrlInputSerializer,
        responses={201: StreamOutputSerializer, **error_responses(400, 404, 413, 422)},
        examples=[STREAM_EXAMPLE],
        tags=["streams"],
    )
    def post(self, request, id_or_name: str):
        room = selectors.room_get(project=self.project, id_or_name=id_or_name)
        data = self.body(StreamUrlInputSerializer)
        stream = room_services.room_stream_create(actor=self.actor(), room=room, url=data["url"])
        return Response(StreamOutputSerializer(stream).data, status=status.HTTP_201_CREATED)
