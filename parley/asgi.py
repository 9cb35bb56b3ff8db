"""ASGI entry point: HTTP → Django, WebSocket → the signalling, notification and dashboard consumers (each route
behind its Origin rule and, for the dashboard, the Django session: ``parley.routing``)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parley.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from parley.routing import websocket_urlpatterns  # noqa: E402

if settings.PARLEY_EMBEDDED_SWEEPS:
    from parley.embedded import start_sweeps

    start_sweeps()

from rooms import event_sender  # noqa: E402

if settings.PARLEY_MEDIA_WORKER == "embedded":
    from media.worker import embedded

    # At shutdown the embedded worker stops first (bounded: it tells members, releases sessions), then the drain
    # sends the events it emitted.
    event_sender.before_shutdown_drain(embedded.stop)

# event_sender.application: records the server loop for the ordered event sender and drains it on shutdown.
application = event_sender.application(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter(websocket_urlpatterns),
        }
    )
)
