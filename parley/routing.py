"""WebSocket routes: each app contributes its own list, and each route gets the Origin rule of how it
authenticates (``parley.origins``): token routes (room token, API key) and session routes (the dashboard's
Django session cookie)."""

from __future__ import annotations

from collections.abc import Callable

from channels.auth import AuthMiddlewareStack
from django.urls import URLPattern

from dashboard.routing import websocket_urlpatterns as dashboard_ws
from parley.origins import SessionOriginValidator, TokenOriginValidator
from rooms.routing import websocket_urlpatterns as rooms_ws


def _wrapped(patterns: list[URLPattern], wrap: Callable) -> list[URLPattern]:
    """``patterns`` with each consumer inside ``wrap(consumer)``; same paths, names and default arguments."""
    return [URLPattern(p.pattern, wrap(p.callback), p.default_args, p.name) for p in patterns]


def _session_route(consumer):
    """Parley's own origins only; then the Django session sets ``scope["user"]`` (checked after the Origin, so a
    foreign page never costs a session lookup)."""
    return SessionOriginValidator(AuthMiddlewareStack(consumer))


websocket_urlpatterns = [
    *_wrapped(rooms_ws, TokenOriginValidator),
    *_wrapped(dashboard_ws, _session_route),
]
