"""Live updates for the dashboard's session page: ``/ws/dashboard/sessions/<room_session_id>/``.

Authenticated by the Django session (``AuthMiddlewareStack``): the user must be a member (operator or
moderator) of the session's project, otherwise the socket closes with 4403 before accepting (4401 when not
signed in). The consumer joins the project's group (``rooms.events.project_group``) and forwards only the events
of this session, as text frames ``{"event_type", "params", "room_session_id", "timestamp"}``.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from rooms.events import project_group
from rooms.models import ProjectMembership, RoomSession

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def session_project_for(user, room_session_id) -> str | None:
    """The project id of ``room_session_id`` when ``user`` belongs to that project, else ``None``."""
    project_id = RoomSession.objects.filter(id=room_session_id).values_list("project_id", flat=True).first()
    if project_id is None or not ProjectMembership.objects.filter(user=user, project_id=project_id).exists():
        return None
    return str(project_id)


class SessionLiveConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None
    room_session_id: str = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.room_session_id = str(self.scope["url_route"]["kwargs"]["room_session_id"])
        project_id = await database_sync_to_async(session_project_for)(user, self.room_session_id)
        if project_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group_name = project_group(project_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        logger.debug("dashboard live socket open room_session_id=%s user=%s", self.room_session_id, user.pk)

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """The page sends nothing but pings; answer them so proxies keep the socket open."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def parley_event(self, message: dict) -> None:
        event = message.get("event") or {}
        if str(event.get("room_session_id")) != self.room_session_id:
            return
        await self.send_json(
            {
                "event_type": event.get("event_type"),
                "params": event.get("params") or {},
                "room_session_id": self.room_session_id,
                "timestamp": event.get("timestamp"),
            }
        )
