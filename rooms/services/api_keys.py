"""Writes for projects and their API keys. A raw key is returned once by ``api_key_create`` and never stored."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from rooms.actors import Actor
from rooms.events import audit_record
from rooms.exceptions import Conflict, InvalidParameter, NotFound
from rooms.models import ApiKey, Project

logger = logging.getLogger(__name__)


@transaction.atomic
def project_create(*, name: str) -> Project:
    """Create the project ``name`` (1..100 characters, unique). Raises ``Conflict`` if it exists."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidParameter("A project name has 1..100 characters.", attribute="name")
    if Project.objects.filter(name=name).exists():
        raise Conflict(f"A project named '{name}' already exists.", attribute="name")
    project = Project.objects.create(name=name)
    logger.info("project created project_id=%s", project.id)
    return project


@transaction.atomic
def api_key_create(*, project: Project, name: str = "", actor: Actor | None = None) -> tuple[ApiKey, str]:
    """Create an API key for ``project``. Returns ``(ApiKey, raw_key)``; ``raw_key`` (``pk_<prefix>_<secret>``)
    is shown once — only its SHA-256 is stored."""
    if len(name) > 100:
        raise InvalidParameter("A key label has at most 100 characters.", attribute="name")
    raw, prefix = ApiKey.generate()
    while ApiKey.objects.filter(prefix=prefix).exists():  # 32-bit prefixes: collisions are rare, not impossible
        raw, prefix = ApiKey.generate()
    key = ApiKey.objects.create(project=project, name=name, prefix=prefix, key_hash=ApiKey.hash_key(raw))
    actor = actor or Actor.system(project.id)
    audit_record(
        project_id=project.id,
        action="api_key.create",
        target_type="api_key",
        target_id=str(key.id),
        target_name=name or prefix,
        **actor.audit_fields(),
    )
    logger.info("api key created project_id=%s prefix=%s", project.id, prefix)
    return key, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revoke ``api_key`` (idempotent): it stops authenticating at once."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        actor = actor or Actor.system(api_key.project_id)
        audit_record(
            project_id=api_key.project_id,
            action="api_key.revoke",
            target_type="api_key",
            target_id=str(api_key.id),
            target_name=api_key.name or api_key.prefix,
            **actor.audit_fields(),
        )
        logger.info("api key revoked project_id=%s prefix=%s", api_key.project_id, api_key.prefix)
    return api_key


def api_key_revoke_by_prefix(*, prefix: str) -> ApiKey:
    """Revoke the key whose prefix is ``prefix`` (or whose raw key starts ``pk_<prefix>``). Raises ``NotFound``."""
    parts = prefix.split("_")
    if len(parts) >= 2 and parts[0] == "pk":
        prefix = parts[1]
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise NotFound(f"No API key with prefix '{prefix}'.")
    return api_key_revoke(api_key=key)
