"""Participant pages (DESIGN §5): ``/r/<room_name>/#token=<room token>`` and the join form ``/r/``.

The room token travels in the URL fragment, so it never reaches the server in a request line or a log; the page
reads it client-side (``static/parley/app.js``) and hands it to the WebSocket. The page itself carries no secret:
only its config (ICE servers, WebSocket path, reconnect grace), rendered with ``json_script``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rooms.models import room_name_validator

logger = logging.getLogger(__name__)

WEBSOCKET_PATH = "/ws/video/"
# Reactions offered by the meeting toolbar: (emoji, accessible name).
REACTIONS = (("👍", "thumbs up"), ("👏", "applause"), ("❤️", "heart"), ("😂", "laughing"), ("🎉", "celebrate"))


def participant_config() -> dict:
    """The participant page's config: ``{"ice_servers": [RTCIceServer…], "ws_url": path or absolute URL,
    "reconnect_grace_seconds": int}``. ICE servers come from ``PARLEY_ICE_SERVERS`` (default ``[]``)."""
    return {
        "ice_servers": list(settings.PARLEY_ICE_SERVERS),
        "ws_url": WEBSOCKET_PATH,
        "reconnect_grace_seconds": int(settings.PARLEY_RECONNECT_GRACE_SECONDS),
    }


def _no_store(response: HttpResponse) -> HttpResponse:
    # The page is a shell around a token held in the fragment: never cache it, never leak it as a referrer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Permissions-Policy"] = "camera=(self), microphone=(self), display-capture=(self)"
    return response


@require_GET
def participant_room(request: HttpRequest, room_name: str = "") -> HttpResponse:
    """Render the participant page for ``room_name`` (pre-join, meeting), or the join form without one.

    ``room_name`` is only displayed: which room is joined is decided by the token, checked on the WebSocket.
    A malformed name is answered 404.
    """
    if room_name:
        try:
            room_name_validator(room_name)
        except ValidationError:
            return _no_store(render(request, "participant/not_found.html", status=404))
    context = {
        "room_name": room_name,
        "reactions": REACTIONS,
        "parley_config": {**participant_config(), "room_name": room_name},
    }
    return _no_store(render(request, "participant/room.html", context))
