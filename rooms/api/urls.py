"""REST API routes under ``/api/video/`` (DESIGN §4). Path ids are matched as strings so a malformed id is a
404 with the error shape, not Django's HTML page."""

from __future__ import annotations

from django.urls import include, path

from rooms.api import schema  # noqa: F401  (registers the security schemes)
from rooms.api.views import api_keys, control, layouts, playbacks, recordings, rooms, sessions, streams, tokens

urlpatterns: list = [
    path("rooms", rooms.RoomListApi.as_view(), name="api-rooms"),
    path("rooms/<str:id_or_name>", rooms.RoomDetailApi.as_view(), name="api-room"),
    path("rooms/<str:id_or_name>/streams", rooms.RoomStreamListApi.as_view(), name="api-room-streams"),
    path("room_tokens", tokens.RoomTokenCreateApi.as_view(), name="api-room-tokens"),
    path("room_sessions", sessions.RoomSessionListApi.as_view(), name="api-room-sessions"),
    path("room_sessions/<str:room_session_id>", sessions.RoomSessionDetailApi.as_view(), name="api-room-session"),
    path(
        "room_sessions/<str:room_session_id>/members",
        sessions.RoomSessionMemberListApi.as_view(),
        name="api-room-session-members",
    ),
    path(
        "room_sessions/<str:room_session_id>/members/<str:member_id>/<str:action>",
        control.MemberActionApi.as_view(),
        name="api-room-session-member-action",
    ),
    path(
        "room_sessions/<str:room_session_id>/events",
        sessions.RoomSessionEventListApi.as_view(),
        name="api-room-session-events",
    ),
    path(
        "room_sessions/<str:room_session_id>/recordings",
        sessions.RoomSessionRecordingListApi.as_view(),
        name="api-room-session-recordings",
    ),
    path(
        "room_sessions/<str:room_session_id>/streams",
        sessions.RoomSessionStreamListApi.as_view(),
        name="api-room-session-streams",
    ),
    path(
        "room_sessions/<str:room_session_id>/playbacks",
        playbacks.RoomSessionPlaybackListApi.as_view(),
        name="api-room-session-playbacks",
    ),
    path(
        "room_sessions/<str:room_session_id>/layout",
        control.RoomSessionLayoutApi.as_view(),
        name="api-room-session-layout",
    ),
    path("room_sessions/<str:room_session_id>/end", control.RoomSessionEndApi.as_view(), name="api-room-session-end"),
    path("room_recordings", recordings.RecordingListApi.as_view(), name="api-recordings"),
    path("room_recordings/<str:recording_id>", recordings.RecordingDetailApi.as_view(), name="api-recording"),
    path(
        "room_recordings/<str:recording_id>/events",
        recordings.RecordingEventListApi.as_view(),
        name="api-recording-events",
    ),
    path(
        "room_recordings/<str:recording_id>/download",
        recordings.RecordingDownloadApi.as_view(),
        name="api-recording-download",
    ),
    path(
        "room_recordings/<str:recording_id>/<str:action>",
        control.RecordingActionApi.as_view(),
        name="api-recording-action",
    ),
    path("streams/<str:stream_id>", streams.StreamDetailApi.as_view(), name="api-stream"),
    path("streams/<str:stream_id>/stop", control.StreamStopApi.as_view(), name="api-stream-stop"),
    path("playbacks/<str:playback_id>", playbacks.PlaybackDetailApi.as_view(), name="api-playback"),
    path("playbacks/<str:playback_id>/<str:action>", playbacks.PlaybackActionApi.as_view(), name="api-playback-action"),
    path("layouts", layouts.LayoutListApi.as_view(), name="api-layouts"),
    path("layouts/<str:name>", layouts.LayoutDetailApi.as_view(), name="api-layout"),
    path("api_keys", api_keys.ApiKeyListApi.as_view(), name="api-api-keys"),
    path("api_keys/<str:api_key_id>", api_keys.ApiKeyDetailApi.as_view(), name="api-api-key"),
    path("", include("rooms.api.webhook_urls")),
]
