"""Live sessions (list, live page, moderation, layout, lock, recording and stream control) and recordings."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import selectors
from dashboard.access import Console, console_view
from dashboard.egress import egress_start, egress_stop
from dashboard.forms import LayoutPickForm, StreamStartForm
from rooms.exceptions import NotFound, ParleyError
from rooms.models import Recording, RoomSession
from rooms.services import playbacks as playback_services

logger = logging.getLogger(__name__)

# Member actions the desk offers, with the words shown after they succeed.
MEMBER_ACTIONS = {
    "audio_mute": "muted",
    "audio_unmute": "unmuted",
    "video_mute": "video off",
    "video_unmute": "video on",
    "deaf": "deafened",
    "undeaf": "undeafened",
    "lower_hand": "hand lowered",
    "remove": "removed",
    "promote": "promoted to the stage",
    "demote": "moved to the audience",
}
SESSION_ACTIONS = {"lock": "Room locked.", "unlock": "Room unlocked.", "end": "Session ended."}


@console_view()
def session_list(request: HttpRequest, console: Console) -> HttpResponse:
    status = request.GET.get("status", RoomSession.Status.IN_PROGRESS)
    if status not in ("", *RoomSession.Status.values):
        status = RoomSession.Status.IN_PROGRESS
    sessions = selectors.session_list(project=console.project, status=status)[:200]
    return render(request, "dashboard/sessions.html", {"console": console, "sessions": sessions, "status": status})


def _session_context(request: HttpRequest, console: Console, session: RoomSession) -> dict:
    layout_names = selectors.layout_names(project=console.project)
    return {
        "console": console,
        "session": session,
        "members": selectors.session_members(room_session=session),
        "events": selectors.session_events(room_session=session),
        "recordings": session.recordings.order_by("-started_at"),
        "streams": session.streams.order_by("-created_at"),
        "playbacks": session.playbacks.order_by("-started_at"),
        "layout_form": LayoutPickForm(initial={"layout": session.layout_name}, layout_names=layout_names),
        "stream_form": StreamStartForm(),
        "member_actions": MEMBER_ACTIONS,
        "ws_path": f"/ws/dashboard/sessions/{session.id}/",
    }


@console_view()
def session_detail(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    return render(request, "dashboard/session.html", _session_context(request, console, session))


@console_view()
def session_members(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    """The members panel (htmx partial), refreshed on live events."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    return render(request, "dashboard/partials/members.html", _session_context(request, console, session))


@console_view()
def session_timeline(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    """The event timeline (htmx partial), refreshed on live events."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    return render(request, "dashboard/partials/timeline.html", _session_context(request, console, session))


@console_view()
def session_panel(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    """The session status panel (state, layout, lock, recordings, streams, playbacks), refreshed on live events."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    return render(request, "dashboard/partials/session_panel.html", _session_context(request, console, session))


def _after_action(request: HttpRequest, console: Console, session: RoomSession, partial: str) -> HttpResponse:
    """htmx: the refreshed partial (with messages out of band); otherwise back to the session page."""
    if request.htmx:
        session.refresh_from_db()
        return render(request, partial, {**_session_context(request, console, session), "oob_messages": True})
    return redirect("dashboard:session", room_session_id=session.id)


@require_POST
@console_view()
def member_action_view(request: HttpRequest, console: Console, room_session_id, member_id, action: str) -> HttpResponse:
    """Apply a moderation ``action`` to a member through ``rooms.services.members.member_action``.

    A member who has already left gets a message (not an error page); an unknown action is 404.
    """
    from rooms.services.members import member_action

    if action not in MEMBER_ACTIONS:
        raise Http404("Unknown action.")
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    member = selectors.member_get(room_session=session, member_id=member_id)
    if not member.is_present or not session.is_live:
        messages.warning(request, f"{member.name} has already left; nothing was changed.")
    else:
        try:
            member_action(actor=console.actor(), member_id=member.id, action=action, params={})
        except NotFound:
            messages.warning(request, f"{member.name} has already left; nothing was changed.")
        except ParleyError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{member.name}: {MEMBER_ACTIONS[action]}.")
            logger.info(
                "dashboard member action %s room_session_id=%s member_id=%s user=%s",
                action,
                session.id,
                member.id,
                request.user.pk,
            )
    return _after_action(request, console, session, "dashboard/partials/members.html")


@require_POST
@console_view()
def session_action_view(request: HttpRequest, console: Console, room_session_id, action: str) -> HttpResponse:
    """Lock, unlock or end the session through ``rooms.services.sessions``."""
    from rooms.services.sessions import room_session_action

    if action not in SESSION_ACTIONS:
        raise Http404("Unknown action.")
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    try:
        room_session_action(actor=console.actor(), room_session_id=session.id, action=action, params={})
    except NotFound:
        messages.warning(request, "The session has already ended.")
    except ParleyError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, SESSION_ACTIONS[action])
    return _after_action(request, console, session, "dashboard/partials/session_panel.html")


@require_POST
@console_view()
def session_layout(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    from rooms.services.sessions import room_session_action

    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    form = LayoutPickForm(request.POST, layout_names=selectors.layout_names(project=console.project))
    if not form.is_valid():
        messages.error(request, "Choose one of the listed layouts.")
    else:
        try:
            room_session_action(
                actor=console.actor(),
                room_session_id=session.id,
                action="set_layout",
                params={"name": form.cleaned_data["layout"]},
            )
        except NotFound:
            messages.warning(request, "The session has already ended.")
        except ParleyError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Layout set to {form.cleaned_data['layout']}.")
    return _after_action(request, console, session, "dashboard/partials/session_panel.html")


@require_POST
@console_view()
def session_recording(request: HttpRequest, console: Console, room_session_id, action: str) -> HttpResponse:
    """Start a recording of the session, or stop one (``recording_id`` in the form)."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    try:
        if action == "start":
            egress_start(actor=console.actor(), room_session_id=session.id, kind="recording", params={})
            messages.success(request, "Recording started.")
        elif action == "stop":
            recording = selectors.recording_get(project=console.project, recording_id=request.POST.get("recording_id"))
            egress_stop(actor=console.actor(), room_session_id=session.id, kind="recording", object_id=recording.id)
            messages.success(request, "Recording stopped; it will be ready shortly.")
        else:
            raise Http404("Unknown action.")
    except ParleyError as exc:
        messages.error(request, exc.message)
    return _after_action(request, console, session, "dashboard/partials/session_panel.html")


@require_POST
@console_view()
def session_stream(request: HttpRequest, console: Console, room_session_id, action: str) -> HttpResponse:
    """Start an RTMP stream of the session (``url``), or stop one (``stream_id``)."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    try:
        if action == "start":
            form = StreamStartForm(request.POST)
            if not form.is_valid():
                messages.error(request, " ".join(form.errors["url"]))
            else:
                egress_start(
                    actor=console.actor(),
                    room_session_id=session.id,
                    kind="stream",
                    params={"url": form.cleaned_data["url"]},
                )
                messages.success(request, "Stream starting.")
        elif action == "stop":
            stream = selectors.stream_get(room_session=session, stream_id=request.POST.get("stream_id"))
            egress_stop(actor=console.actor(), room_session_id=session.id, kind="stream", object_id=stream.id)
            messages.success(request, "Stream stopped.")
        else:
            raise Http404("Unknown action.")
    except ParleyError as exc:
        messages.error(request, exc.message)
    return _after_action(request, console, session, "dashboard/partials/session_panel.html")


@require_POST
@console_view()
def session_playback_stop(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    """Stop a playback of the session (``playback_id`` in the form) through ``rooms.services.playbacks`` (the
    media worker stops it first; without a worker the end is only recorded). 404 for an id not in the session."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    playback = selectors.playback_get(room_session=session, playback_id=request.POST.get("playback_id"))
    try:
        playback_services.playback_action(actor=console.actor(), playback=playback, action="stop")
        messages.success(request, "Playback stopped.")
    except ParleyError as exc:
        messages.error(request, exc.message)
    return _after_action(request, console, session, "dashboard/partials/session_panel.html")


@console_view()
def session_preview(request: HttpRequest, console: Console, room_session_id) -> HttpResponse:
    """The session's latest preview JPEG (written by the media worker under the data directory)."""
    session = selectors.session_get(project=console.project, room_session_id=room_session_id)
    if not session.preview_path:
        raise Http404("No preview.")
    data_dir = Path(settings.PARLEY_DATA_DIR).resolve()
    path = Path(session.preview_path)
    path = (path if path.is_absolute() else data_dir / path).resolve()
    if not path.is_relative_to(data_dir) or not path.is_file():
        raise Http404("No preview.")
    response = FileResponse(path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "no-store"
    return response


def recording_uri(recording: Recording) -> str | None:
    """The signed download URL (``rooms.api.downloads``, valid ``PARLEY_MEDIA_TTL_DEFAULT`` seconds) of a
    completed recording, else ``None``."""
    from rooms.api.downloads import recording_download_url

    return recording_download_url(recording, ttl_seconds=settings.PARLEY_MEDIA_TTL_DEFAULT)


@console_view()
def recording_list(request: HttpRequest, console: Console) -> HttpResponse:
    recordings = list(selectors.recording_list(project=console.project)[:200])
    return render(request, "dashboard/recordings.html", {"console": console, "recordings": recordings})


@console_view()
def recording_detail(request: HttpRequest, console: Console, recording_id) -> HttpResponse:
    recording = selectors.recording_get(project=console.project, recording_id=recording_id)
    context = {"console": console, "recording": recording, "uri": recording_uri(recording)}
    return render(request, "dashboard/recording.html", context)


@console_view()
def recording_delete(request: HttpRequest, console: Console, recording_id) -> HttpResponse:
    from rooms.services.rooms import room_recording_delete

    recording = selectors.recording_get(project=console.project, recording_id=recording_id)
    if request.method == "POST":
        try:
            room_recording_delete(actor=console.actor(), recording=recording)
        except ParleyError as exc:
            messages.error(request, exc.message)
            return redirect("dashboard:recording", recording_id=recording.id)
        messages.success(request, "Recording deleted.")
        return redirect("dashboard:recordings")
    return render(request, "dashboard/recording_delete.html", {"console": console, "recording": recording})
