"""``POST room_tokens`` (DESIGN §3, reference §1.3): validate every field, mint a signed JWT."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from rooms.api.base import ProjectAPIView, RoomTokensThrottle, error_responses
from rooms.exceptions import InvalidParameter
from rooms.models import ROOM_NAME_RE
from rooms.permissions import ALL_PERMISSIONS
from rooms.services.tokens import room_token_create
from rooms.tokens import MAX_EXPIRES_IN
from rooms.validators import validate_meta


class RoomTokenInputSerializer(serializers.Serializer):
    room_name = serializers.RegexField(ROOM_NAME_RE, max_length=100)
    user_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Default: random alphanumeric."
    )
    permissions = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=len(ALL_PERMISSIONS) * 2,
        help_text="Permission strings (DESIGN §3). Default: the eleven room.self.* media and device permissions. "
        "Ignored (empty) for audience tokens.",
    )
    join_as = serializers.ChoiceField(choices=["member", "audience"], required=False, default="member")
    join_from = serializers.DateTimeField(required=False, allow_null=True)
    join_until = serializers.DateTimeField(required=False, allow_null=True)
    remove_at = serializers.DateTimeField(required=False, allow_null=True)
    remove_after_seconds_elapsed = serializers.IntegerField(
        min_value=1, max_value=200000, required=False, allow_null=True
    )
    auto_create_room = serializers.BooleanField(required=False, default=True)
    join_audio_muted = serializers.BooleanField(required=False, default=False)
    join_video_muted = serializers.BooleanField(required=False, default=False)
    media_allowed = serializers.ChoiceField(
        choices=["all", "audio-only", "video-only"],
        required=False,
        default="all",
        help_text="What the member may receive.",
    )
    end_room_session_on_leave = serializers.BooleanField(required=False, default=False)
    enable_room_previews = serializers.BooleanField(required=False, default=False)
    room_display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    room_meta = serializers.JSONField(required=False, help_text="JSON object ≤ 2000 characters.")
    meta = serializers.JSONField(required=False, help_text="JSON object ≤ 2000 characters (member meta).")
    sync_audio_video = serializers.BooleanField(required=False, default=False)
    expires_in = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRES_IN,
        required=False,
        help_text="Seconds until the token expires (default 86400).",
    )


class RoomTokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()


class RoomTokenCreateApi(ProjectAPIView):
    throttle_classes = [RoomTokensThrottle]

    @extend_schema(
        operation_id="room_tokens_create",
        summary="Mint a room token",
        request=RoomTokenInputSerializer,
        responses={201: RoomTokenOutputSerializer, **error_responses(400, 413, 422)},
        examples=[
            OpenApiExample(
                "A moderator for an hour",
                value={
                    "room_name": "standup",
                    "user_name": "Ada",
                    "permissions": ["room.self.audio_mute", "room.member.remove", "room.set_layout"],
                    "expires_in": 3600,
                },
                request_only=True,
            ),
            OpenApiExample(
                "The token",
                value={"token": "eyJ0eXAiOiJWUlQiLCJhbGciOiJIUzUxMiJ9…"},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=["room tokens"],
    )
    def post(self, request):
        data = dict(self.body(RoomTokenInputSerializer))
        for attribute in ("meta", "room_meta"):
            if attribute in data:
                validate_meta(data[attribute], attribute=attribute)
        if data.get("join_from") and data.get("join_until") and data["join_until"] <= data["join_from"]:
            raise InvalidParameter("join_until must be after join_from.", attribute="join_until")
        expires_in = data.pop("expires_in", None)
        token = room_token_create(project=self.project, actor=self.actor(), fields=data, expires_in=expires_in)
        return Response({"token": token}, status=status.HTTP_201_CREATED)
