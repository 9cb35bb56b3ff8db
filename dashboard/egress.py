"""Recording and stream control from the dashboard (start/stop): thin calls to ``rooms.services.egress``.

Starting needs the session's media worker to acknowledge the ``media.egress`` command (``media/protocol.py``)
within ``PARLEY_MEDIA_ANSWER_TIMEOUT_SECONDS``; without a placed worker or an answer in time the start is marked
failed and ``MediaUnavailable`` is raised — the view shows its message.
"""

from __future__ import annotations

from rooms.actors import Actor
from rooms.services import egress as egress_service


def egress_start(
    *, actor: Actor, room_session_id, kind: str, params: dict, timeout_seconds: float | None = None
) -> dict:
    """Start a ``recording`` or ``stream`` (``params``: ``{"url"}``) of the session; returns its payload once the
    media worker acknowledged. Raises ``MediaUnavailable``, ``Conflict``, ``InvalidParameter``, ``NotFound``."""
    return egress_service.egress_start(
        actor=actor, room_session_id=room_session_id, kind=kind, params=params, timeout_seconds=timeout_seconds
    )


def egress_stop(*, actor: Actor, room_session_id, kind: str, object_id) -> dict:
    """Stop a live ``recording`` or ``stream`` of the session; the placed worker acknowledges it.
    Raises ``NotFound`` when it is not live, ``MediaUnavailable`` when the placed worker does not answer."""
    return egress_service.egress_action(
        actor=actor, room_session_id=room_session_id, action=f"{kind}.stop", object_id=object_id
    )
