"""Which browser origins may open Parley's WebSockets (the ``Origin`` header of the handshake).

Browsers apply no CORS to WebSockets: a page of any site may open ``ws://parley/...`` and the browser sends
Parley's cookies with it. The rule therefore depends on how a route authenticates (``docs/protocol.md`` §1):

- **Session routes** (cookie-authenticated: the dashboard's ``/ws/dashboard/…``) accept only Parley's own origins
  (``parley_origins``): the origin of ``PARLEY_PUBLIC_URL``, every ``CSRF_TRUSTED_ORIGINS`` entry, and the hosts of
  ``ALLOWED_HOSTS`` on any scheme and port (as Channels' ``AllowedHostsOriginValidator``, but a ``*`` host is not
  taken as "any origin"). A handshake without ``Origin`` is refused.
- **Token routes** (``/ws/video/`` with a room token, ``/ws/events/`` with an API key): the credential is not
  ambient, so by default any origin works (integrators embed the SDK on their own sites). ``PARLEY_WS_ALLOWED_ORIGINS``
  narrows them to a list of origins (``https://app.example.com``, ``https://.example.com`` with subdomains, ``*``
  for any) on top of Parley's own; a client that sends no ``Origin`` (a server, a bot — only browsers are bound by
  the header) is still accepted.

A refused handshake is answered with HTTP 403 by Channels' ``WebsocketDenier`` and logged with the origin.
"""

from __future__ import annotations

import logging
from urllib.parse import ParseResult, urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings

logger = logging.getLogger(__name__)


def _channels_pattern(origin: str) -> str:
    """Django's ``https://*.example.com`` subdomain wildcard in Channels' spelling ``https://.example.com``."""
    return origin.replace("://*.", "://.", 1)


def parley_origins() -> list[str]:
    """Parley's own origins as Channels ``OriginValidator`` patterns, read from the settings on each call."""
    public = urlsplit(settings.PARLEY_PUBLIC_URL)
    origins = [f"{public.scheme}://{public.netloc}"] if public.scheme and public.netloc else []
    origins += [_channels_pattern(origin) for origin in settings.CSRF_TRUSTED_ORIGINS]
    origins += [host for host in settings.ALLOWED_HOSTS if host != "*"]
    return origins


class _SettingsOriginValidator(OriginValidator):
    """Channels' ``OriginValidator`` whose allowed origins come from the settings at each handshake, so that a
    changed setting (or a test's override) applies without rebuilding the ASGI application."""

    route_kind = ""
    allow_missing_origin = False

    def __init__(self, application):
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:
        raise NotImplementedError

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None and self.allow_missing_origin:
            return True
        valid = super().valid_origin(parsed_origin)
        if not valid:
            origin = parsed_origin.geturl() if parsed_origin is not None else None
            logger.warning(
                "websocket handshake refused: origin %r is not allowed on %s routes", origin, self.route_kind
            )
        return valid


class SessionOriginValidator(_SettingsOriginValidator):
    """For cookie-authenticated routes: Parley's own origins only; a missing ``Origin`` is refused."""

    route_kind = "session"

    @property
    def allowed_origins(self) -> list[str]:
        return parley_origins()


class TokenOriginValidator(_SettingsOriginValidator):
    """For token-authenticated routes: ``PARLEY_WS_ALLOWED_ORIGINS`` (default ``["*"]``) and Parley's own
    origins; a missing ``Origin`` is accepted."""

    route_kind = "token"
    allow_missing_origin = True

    @property
    def allowed_origins(self) -> list[str]:
        configured = [_channels_pattern(origin) for origin in settings.PARLEY_WS_ALLOWED_ORIGINS]
        return ["*"] if "*" in configured else [*configured, *parley_origins()]
