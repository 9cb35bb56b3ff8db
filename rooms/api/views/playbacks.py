"""Playbacks over REST (DESIGN §4): ``room_sessions/{id}/playbacks`` (list, start), ``playbacks/{id}`` and
``playbacks/{id}/{action}`` (``pause``, ``resume``, ``seek``, ``set_volume``, ``stop``).

Every write goes through ``rooms.services.playbacks``, the service the signalling RPC ``room.playback.*`` uses, to
the media worker that holds the session over the channel layer. Errors: 404 a session or playback of another
project (or an unknown action); 409 the session or the playback has ended; 422 a bad parameter, or a URL the
worker could not play (``attribute`` ``url``); 503 ``media_unavailable`` when no media worker holds the session or
none answered within ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.views.control import known_action, live_session
from rooms.models import Playback
from rooms.services import playbacks as playback_services

SESSION_ID = OpenApiParameter("room_session_id", str, OpenApiParameter.PATH, description="Room session id (UUID).")
PLAYBACK_ID = OpenApiParameter("playback_id", str, OpenApiParameter.PATH, description="Playback id (UUID).")


class PlaybackOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    room_session_id = serializers.UUIDField()
    url = serializers.CharField()
    state = serializers.ChoiceField(choices=Playback.State.choices)
    volume = serializers.FloatField(help_text="dB, -50..50.")
    position_ms = serializers.IntegerField(help_text="Last known position (start, seek or end), milliseconds.")
    layout = serializers.CharField(help_text="Layout applied when it started (empty: unchanged).")
    positions = serializers.DictField(child=serializers.CharField(), help_text="{member_id | self: position}.")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    failure_reason = serializers.CharField(
        help_text="Why it failed: not_found, not_media, unreachable, http_error, timeout, open_failed, "
        "url_not_allowed, media_unavailable; empty otherwise."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PlaybackStartInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=1000, help_text="http(s)://, rtmp(s):// or rtsp:// URL of audio/video.")
    volume = serializers.FloatField(required=False, min_value=-50, max_value=50, help_text="dB, default 0.")
    seek_position = serializers.IntegerField(
        required=False, min_value=0, help_text="Where to start, milliseconds (needs room.playback_seek)."
    )
    layout = serializers.CharField(required=False, max_length=100, help_text="Layout to switch the session to.")
    positions = serializers.DictField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text="{member_id | self: auto | reserved-N | standard-N | off-canvas}; self is the playback.",
    )


class PlaybackActionInputSerializer(serializers.Serializer):
    position_ms = serializers.IntegerField(required=False, min_value=0, help_text="For seek: milliseconds.")
    volume = serializers.FloatField(required=False, min_value=-50, max_value=50, help_text="For set_volume: dB.")


class RoomSessionPlaybackListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_sessions_playbacks_list",
        summary="List the playbacks of a room session",
        parameters=[SESSION_ID],
        responses={200: page_serializer("PlaybackPage", PlaybackOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("No parameters", value=None, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, room_session_id: str):
        session = selectors.room_session_get(project=self.project, room_session_id=room_session_id)
        qs = selectors.playback_list(project=self.project, room_session=session)
        return paginate(self, qs, PlaybackOutputSerializer)

    @extend_schema(
        operation_id="room_sessions_playbacks_create",
        summary="Play a URL into a live session",
        description="The session's media worker opens the URL and answers once it plays (``playback.started`` is "
        "emitted): the playback is a layer of the layout (``playing_file``) and an audio input everyone hears. "
        "422 with ``attribute`` ``url`` and ``reason`` in the message when the worker could not play it (the "
        "playback is then ``failed`` and ``playback.ended`` emitted); 409 when the session has ended; 503 "
        "``media_unavailable`` when no media worker holds the session or none answers.",
        parameters=[SESSION_ID],
        request=PlaybackStartInputSerializer,
        responses={201: PlaybackOutputSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=[
            OpenApiExample(
                "Intro video, quieter, pinned to the first reserved slot",
                value={
                    "url": "https://media.example.com/intro.mp4",
                    "volume": -6,
                    "seek_position": 2000,
                    "layout": "highlight-1-responsive",
                    "positions": {"self": "reserved-1"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "Started",
                value={
                    "id": "0b9e4a52-9d7c-4d5f-8a61-2f0c6f4d1e10",
                    "room_session_id": "5f3c1d2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
                    "url": "https://media.example.com/intro.mp4",
                    "state": "playing",
                    "volume": -6.0,
                    "position_ms": 2000,
                    "layout": "highlight-1-responsive",
                    "positions": {"self": "reserved-1"},
                    "started_at": "2026-11-22T02:00:00Z",
                    "ended_at": None,
                    "failure_reason": "",
                    "created_at": "2026-11-22T02:00:00Z",
                    "updated_at": "2026-11-22T02:00:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=["live control"],
    )
    def post(self, request, room_session_id: str):
        session = live_session(self, room_session_id)
        data = self.body(PlaybackStartInputSerializer)
        payload = playback_services.playback_start(actor=self.actor(), room_session_id=session.id, params=dict(data))
        return Response(PlaybackOutputSerializer(Playback.objects.get(id=payload["id"])).data, status=201)


class PlaybackDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="playbacks_retrieve",
        summary="Get a playback",
        parameters=[PLAYBACK_ID],
        responses={200: PlaybackOutputSerializer, **error_responses(404)},
        examples=[OpenApiExample("No parameters", value=None, request_only=True)],
        tags=["room sessions"],
    )
    def get(self, request, playback_id: str):
        playback = selectors.playback_get(project=self.project, playback_id=playback_id)
        return Response(PlaybackOutputSerializer(playback).data)


class PlaybackActionApi(ProjectAPIView):
    @extend_schema(
        operation_id="playbacks_action",
        summary="Pause, resume, seek, set the volume of or stop a playback",
        description="The session's media worker applies the action before the answer; ``playback.updated`` "
        "(``playback.ended`` for stop) is emitted. ``seek`` takes ``position_ms`` (needs nothing more over REST; "
        "a member needs ``room.playback_seek``), ``set_volume`` takes ``volume`` (dB). 409 when the playback or "
        "its session has ended, and 409 (reason ``not_seekable``) for a seek of a live stream; 404 when the session's "
        "media worker no longer holds the playback (the playback then ends, ``failed`` with ``worker_lost``; a stop "
        "records the end); 503 ``media_unavailable`` "
        "when no media worker holds the session (a stop then only records the end) or none answers.",
        parameters=[
            PLAYBACK_ID,
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(playback_services.ACTIONS)),
        ],
        request=PlaybackActionInputSerializer,
        responses={200: PlaybackOutputSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=[
            OpenApiExample("Seek to one minute", value={"position_ms": 60000}, request_only=True),
            OpenApiExample("Quieter", value={"volume": -12}, request_only=True),
        ],
        tags=["live control"],
    )
    def post(self, request, playback_id: str, action: str):
        known_action(action, playback_services.ACTIONS, "playback")
        playback = selectors.playback_get(project=self.project, playback_id=playback_id)
        data = self.body(PlaybackActionInputSerializer)
        playback_services.playback_action(actor=self.actor(), playback=playback, action=action, params=dict(data))
        return Response(PlaybackOutputSerializer(Playback.objects.get(id=playback.id)).data)
