"""Home, project switcher and rooms: list, create, edit, delete, join links."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import selectors
from dashboard.access import Console, console_view, project_switch
from dashboard.forms import JoinLinkForm, RoomForm
from dashboard.views.common import form_error_from
from rooms.exceptions import ParleyError
from rooms.permissions import MODERATOR_PERMISSIONS
from rooms.tokens import room_token_mint

logger = logging.getLogger(__name__)

MODERATOR_TOKEN_SECONDS = 8 * 3600


def join_url(room_name: str, token: str) -> str:
    """``PARLEY_PUBLIC_URL/r/<room>/#token=<token>``: the fragment keeps the token out of server logs."""
    return f"{settings.PARLEY_PUBLIC_URL}/r/{room_name}/#token={token}"


@console_view()
def home(request: HttpRequest, console: Console) -> HttpResponse:
    return redirect("dashboard:rooms" if console.is_operator else "dashboard:sessions")


@require_POST
@console_view()
def switch_project(request: HttpRequest, console: Console) -> HttpResponse:
    chosen = project_switch(request, request.POST.get("project_id", ""))
    messages.info(request, f"Now working in project “{chosen.project.name}” as {chosen.role}.")
    return redirect("dashboard:home")


@console_view()
def room_list(request: HttpRequest, console: Console) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    context = {"console": console, "rooms": selectors.room_list(project=console.project, search=search), "q": search}
    if request.htmx and request.htmx.target == "room-rows":
        return render(request, "dashboard/partials/room_rows.html", context)
    return render(request, "dashboard/rooms.html", context)


def _room_form_page(request: HttpRequest, console: Console, room=None) -> HttpResponse:
    from rooms.services.rooms import room_create, room_update

    names = selectors.layout_names(project=console.project)
    form = RoomForm(request.POST or None, instance=room, project=console.project, layout_names=names)
    if request.method == "POST" and form.is_valid():
        fields = form.room_fields()
        try:
            if room is None:
                name = fields.pop("name")
                room = room_create(actor=console.actor(), project=console.project, name=name, **fields)
                messages.success(request, f"Room “{room.name}” created.")
            else:
                fields.pop("name")
                fresh = selectors.room_get(project=console.project, room_id=room.id)
                room = room_update(actor=console.actor(), room=fresh, **fields)
                messages.success(request, f"Room “{room.name}” saved.")
        except ParleyError as exc:
            form_error_from(form, exc)
        else:
            return redirect("dashboard:rooms")
    status = 422 if request.method == "POST" else 200
    return render(request, "dashboard/room_form.html", {"console": console, "form": form, "room": room}, status=status)


@console_view(operator_only=True, what="room settings")
def room_create_view(request: HttpRequest, console: Console) -> HttpResponse:
    return _room_form_page(request, console)


@console_view(operator_only=True, what="room settings")
def room_edit(request: HttpRequest, console: Console, room_id) -> HttpResponse:
    room = selectors.room_get(project=console.project, room_id=room_id)
    return _room_form_page(request, console, room)


@console_view(operator_only=True, what="room settings")
def room_delete_view(request: HttpRequest, console: Console, room_id) -> HttpResponse:
    from rooms.services.rooms import room_delete

    room = selectors.room_get(project=console.project, room_id=room_id)
    if request.method == "POST":
        try:
            room_delete(actor=console.actor(), room=room)
        except ParleyError as exc:
            messages.error(request, exc.message)
            return redirect("dashboard:rooms")
        messages.success(request, f"Room “{room.name}” deleted.")
        return redirect("dashboard:rooms")
    return render(request, "dashboard/room_delete.html", {"console": console, "room": room})


@console_view()
def room_join_link(request: HttpRequest, console: Console, room_id) -> HttpResponse:
    """A form to mint a join link (permissions, role, expiry) and, after POST, the link to copy."""
    room = selectors.room_get(project=console.project, room_id=room_id)
    form = JoinLinkForm(request.POST or None)
    link = expiry_label = None
    if request.method == "POST" and form.is_valid():
        token, payload = room_token_mint(
            project=console.project, claims=form.token_claims(room=room), expires_in=form.cleaned_data["expires_in"]
        )
        link = join_url(room.name, token)
        expiry_label = dict(JoinLinkForm.EXPIRY_CHOICES)[form.cleaned_data["expires_in"]]
        logger.info("join link minted project_id=%s room=%s jti=%s", console.project.id, room.name, payload["jti"])
    template = "dashboard/partials/join_link.html" if request.htmx else "dashboard/room_link.html"
    context = {"console": console, "room": room, "form": form, "link": link, "expiry_label": expiry_label}
    return render(request, template, context)


@require_POST
@console_view()
def room_join_as_moderator(request: HttpRequest, console: Console, room_id) -> HttpResponse:
    """Mint a moderator token (every permission) for the signed-in user and open the participant page."""
    room = selectors.room_get(project=console.project, room_id=room_id)
    user = request.user
    token, _ = room_token_mint(
        project=console.project,
        claims={
            "room_name": room.name,
            "user_name": (user.get_full_name() or user.get_username())[:100],
            "permissions": list(MODERATOR_PERMISSIONS),
            "join_as": "member",
            "meta": {"dashboard_user_id": user.pk},
        },
        expires_in=MODERATOR_TOKEN_SECONDS,
    )
    return redirect(join_url(room.name, token))
