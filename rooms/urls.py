"""Participant pages (``/r/<room_name>/``) and signed downloads."""

from __future__ import annotations

from django.urls import path

from rooms import views

urlpatterns: list = [
    path("r/", views.participant_room, name="participant-join"),
    path("r/<str:room_name>/", views.participant_room, name="participant-room"),
]
