"""Who is acting: the one shape every transport (REST, signalling, dashboard, worker) hands to services.

``permissions`` is the granted permission set for a member (from its room token); ``None`` means every
permission (an API key or an operator acting on the project's own rooms). Services check with
``actor.require(permission)`` before they write, and record the actor in the audit trail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rooms.exceptions import PermissionMissing


@dataclass(frozen=True)
class Actor:
    project_id: uuid.UUID
    kind: str  # "member" | "api_key" | "user" | "system"
    id: str
    name: str
    interface: str  # AuditEntry.Interface value: "rest" | "signalling" | "dashboard" | "system"
    permissions: frozenset[str] | None = None
    member_id: uuid.UUID | None = None  # set when kind == "member"
    room_session_id: uuid.UUID | None = None  # a member acts only inside its own session

    def has(self, permission: str) -> bool:
        return self.permissions is None or permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise ``PermissionMissing(permission)`` (JSON-RPC -32003, HTTP 403) unless granted."""
        if not self.has(permission):
            raise PermissionMissing(permission)

    def audit_fields(self) -> dict:
        return {"actor_type": self.kind, "actor_id": self.id, "actor_name": self.name, "interface": self.interface}

    @classmethod
    def system(cls, project_id) -> Actor:
        return cls(project_id=project_id, kind="system", id="", name="system", interface="system")
