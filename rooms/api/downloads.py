"""Signed, expiring recording download URLs: ``/api/video/room_recordings/{id}/download?expires=&signature=``.

``signature`` is an HMAC (``django.core.signing.Signer`` with ``SECRET_KEY`` and its own salt) of
``"<recording id>:<expires unix seconds>"``; no API key is needed to follow the URL, only an unexpired,
untampered signature.
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

from rooms.models import Recording

MEDIA_TTL_MAX = 7 * 24 * 3600
_SALT = "parley.recording.download"


def _signature(recording_id, expires: int) -> str:
    return signing.Signer(salt=_SALT).signature(f"{recording_id}:{expires}")


def recording_download_url(recording: Recording, *, ttl_seconds: int, now: float | None = None) -> str | None:
    """The absolute download URL of a completed recording, valid ``ttl_seconds`` from now (based on
    ``PARLEY_PUBLIC_URL``); None unless the recording is ``completed`` with a stored file."""
    if recording.status != Recording.Status.COMPLETED or not recording.storage_name:
        return None
    expires = int((now or time.time()) + ttl_seconds)
    path = reverse("api-recording-download", kwargs={"recording_id": recording.id})
    query = urlencode({"expires": expires, "signature": _signature(recording.id, expires)})
    return f"{settings.PARLEY_PUBLIC_URL}{path}?{query}"


def recording_download_check(recording_id, *, expires: str | None, signature: str | None) -> bool:
    """True when ``signature`` matches ``recording_id`` and ``expires`` and ``expires`` is in the future."""
    if not expires or not signature or not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return False
    if not hmac.compare_digest(_signature(recording_id, int(expires)).encode(), signature.encode("utf-8", "replace")):
        return False
    return int(expires) >= time.time()
