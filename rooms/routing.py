"""WebSocket routes of the rooms app: participants' signalling and integrators' server notifications."""

from __future__ import annotations

from django.urls import path

from rooms.signalling.consumers import EventsConsumer, VideoConsumer

websocket_urlpatterns: list = [
    path("ws/video/", VideoConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
]
