"""Validation shared by REST serializers, the signalling schemas and services."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from rooms.exceptions import InvalidParameter

META_MAX_CHARS = 2000


def validate_meta(value, *, attribute: str = "meta") -> dict:
    """A JSON object of at most 2000 characters serialized (SignalWire's limit). Raises ``InvalidParameter``."""
    if not isinstance(value, dict):
        raise InvalidParameter("Must be a JSON object.", attribute=attribute)
    if len(json.dumps(value, separators=(",", ":"))) > META_MAX_CHARS:
        raise InvalidParameter(f"Must be at most {META_MAX_CHARS} characters serialized.", attribute=attribute)
    return value


def validate_stream_url(url: str, *, attribute: str = "url") -> str:
    """An ``rtmp://`` or ``rtmps://`` URL with a host. Raises ``InvalidParameter`` (HTTP 422)."""
    if not isinstance(url, str) or len(url) > 1000:
        raise InvalidParameter("Must be an RTMP URL of at most 1000 characters.", attribute=attribute)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidParameter("Not a valid URL.", attribute=attribute) from exc
    if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
        raise InvalidParameter("Must be an rtmp:// or rtmps:// URL with a host.", attribute=attribute)
    return url


def mask_stream_url(url: str) -> str:
    """Mask the stream key: keep scheme, host and the first path segment (``rtmp://h/live/****``);
    user info is dropped. Stream keys never reach logs or events."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    path = "/" + segments[0] + "/****" if len(segments) > 1 else ("/****" if segments else "")
    return urlunsplit((parts.scheme, host, path, "", ""))
