"""Parameter checks for the signalling methods. Each raises ``InvalidParameter`` (-32602) naming the attribute.

Services validate values in depth (ranges, meta size, positions); these check presence and types at the edge.
"""

from __future__ import annotations

import uuid

from rooms.exceptions import InvalidParameter

SDP_MAX_CHARS = 60_000
URL_MAX_CHARS = 1000


def uuid_param(params: dict, key: str, *, required: bool = True) -> uuid.UUID | None:
    value = params.get(key)
    if value is None:
        if required:
            raise InvalidParameter("Required.", attribute=key)
        return None
    if not isinstance(value, str):
        raise InvalidParameter("Must be an id string.", attribute=key)
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise InvalidParameter("Must be an id.", attribute=key) from e


def bool_param(params: dict, key: str, *, default: bool | None = None) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise InvalidParameter("Must be a boolean.", attribute=key)
    return value


def str_param(params: dict, key: str, *, max_chars: int, required: bool = True) -> str | None:
    value = params.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise InvalidParameter(f"Must be a non-empty string of at most {max_chars} characters.", attribute=key)
    return value


def sdp_param(params: dict, *, required: bool = True) -> str | None:
    """An SDP (``v=0`` …) of at most 60,000 characters."""
    sdp = str_param(params, "sdp", max_chars=SDP_MAX_CHARS, required=required)
    if sdp is not None and not sdp.lstrip().startswith("v="):
        raise InvalidParameter("Must be an SDP (starting with v=).", attribute="sdp")
    return sdp


def number_param(params: dict, key: str, *, low: float, high: float, required: bool = True) -> float | None:
    value = params.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise InvalidParameter(f"Must be a number from {low:g} to {high:g}.", attribute=key)
    return float(value)


def only_keys(params: dict, allowed: set[str]) -> None:
    """Reject unknown parameter names (typos should not pass silently)."""
    for key in params:
        if key not in allowed:
            raise InvalidParameter(f"Unknown parameter '{str(key)[:50]}'.", attribute=str(key)[:50])
