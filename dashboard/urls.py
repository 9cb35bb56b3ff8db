"""Dashboard routes, included at ``/dashboard/``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard.views import console, live, project

app_name = "dashboard"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="dashboard/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("", console.home, name="home"),
    path("project/", console.switch_project, name="switch_project"),
    path("rooms/", console.room_list, name="rooms"),
    path("rooms/new/", console.room_create_view, name="room_create"),
    path("rooms/<uuid:room_id>/edit/", console.room_edit, name="room_edit"),
    path("rooms/<uuid:room_id>/delete/", console.room_delete_view, name="room_delete"),
    path("rooms/<uuid:room_id>/link/", console.room_join_link, name="room_link"),
    path("rooms/<uuid:room_id>/join/", console.room_join_as_moderator, name="room_join"),
    path("sessions/", live.session_list, name="sessions"),
    path("sessions/<uuid:room_session_id>/", live.session_detail, name="session"),
    path("sessions/<uuid:room_session_id>/members/", live.session_members, name="session_members"),
    path("sessions/<uuid:room_session_id>/timeline/", live.session_timeline, name="session_timeline"),
    path("sessions/<uuid:room_session_id>/panel/", live.session_panel, name="session_panel"),
    path("sessions/<uuid:room_session_id>/preview.jpg", live.session_preview, name="session_preview"),
    path("sessions/<uuid:room_session_id>/layout/", live.session_layout, name="session_layout"),
    path(
        "sessions/<uuid:room_session_id>/members/<uuid:member_id>/<slug:action>/",
        live.member_action_view,
        name="member_action",
    ),
    path("sessions/<uuid:room_session_id>/recording/<slug:action>/", live.session_recording, name="session_recording"),
    path("sessions/<uuid:room_session_id>/stream/<slug:action>/", live.session_stream, name="session_stream"),
    path("sessions/<uuid:room_session_id>/playback/stop/", live.session_playback_stop, name="session_playback_stop"),
    path("sessions/<uuid:room_session_id>/<slug:action>/", live.session_action_view, name="session_action"),
    path("recordings/", live.recording_list, name="recordings"),
    path("recordings/<uuid:recording_id>/", live.recording_detail, name="recording"),
    path("recordings/<uuid:recording_id>/delete/", live.recording_delete, name="recording_delete"),
    path("api-keys/", project.api_key_list, name="api_keys"),
    path("api-keys/<uuid:api_key_id>/revoke/", project.api_key_revoke_view, name="api_key_revoke"),
    path("webhooks/", project.webhook_list, name="webhooks"),
    path("webhooks/<uuid:endpoint_id>/", project.webhook_detail, name="webhook"),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/resend/",
        project.webhook_resend,
        name="webhook_resend",
    ),
    path("webhooks/<uuid:endpoint_id>/<slug:action>/", project.webhook_action, name="webhook_action"),
    path("layouts/", project.layout_list, name="layouts"),
    path("audit/", project.audit_log, name="audit"),
    path("usage/", project.usage, name="usage"),
]
