"""API-key authentication: ``Authorization: Bearer <key>`` or HTTP Basic ``<project_id>:<key>``.

A request authenticated this way has ``request.user`` = ``ApiKeyPrincipal`` and ``request.auth`` = the ``ApiKey``;
views scope every query to ``request.user.project``. Missing, unknown or revoked keys → 401 with the error shape.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from rooms.models import ApiKey, Project


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The caller of a key-authenticated request."""

    project: Project
    api_key: ApiKey
    is_authenticated: bool = True

    @property
    def pk(self) -> str:  # for throttling keys
        return str(self.api_key.id)


def api_key_lookup(raw_key: str) -> ApiKey | None:
    """Find the active key matching ``raw_key`` (constant-time hash comparison), or None."""
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != "pk":
        return None
    key = ApiKey.objects.select_related("project").filter(prefix=parts[1], revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash_key(raw_key)):
        return None
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    www_authenticate_realm = "parley"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        project_id = None
        if scheme == "bearer":
            raw_key = value.strip()
        elif scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from e
            project_id, _, raw_key = decoded.partition(":")
        else:
            return None
        key = api_key_lookup(raw_key)
        if key is None or (project_id is not None and str(key.project_id) != project_id.strip()):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(id=key.id).update(last_used_at=now)
        return ApiKeyPrincipal(project=key.project, api_key=key), key

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


class IsProjectAuthenticated(permissions.BasePermission):
    """Allow only requests authenticated with a project API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiKeyPrincipal)
