"""WebSocket routes of the dashboard (live session pages)."""

from __future__ import annotations

from django.urls import path

from dashboard.consumers import SessionLiveConsumer

websocket_urlpatterns: list = [
    path("ws/dashboard/sessions/<uuid:room_session_id>/", SessionLiveConsumer.as_asgi()),
]
