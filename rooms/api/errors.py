"""One DRF exception handler: every error leaves as ``{"errors": [{"code", "message", "attribute"}]}``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from rooms.exceptions import ParleyError


def _flatten(detail, attribute: str | None = None) -> list[dict]:
    """DRF's nested ``ValidationError.detail`` → a flat list of ``{code, message, attribute}``."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else (f"{attribute}.{key}" if attribute else str(key))
            out += _flatten(value, name)
        return out
    if isinstance(detail, list):
        out = []
        for index, item in enumerate(detail):
            name = attribute
            if isinstance(item, (dict, list)):
                name = f"{attribute}.{index}" if attribute else str(index)
            out += _flatten(item, name)
        return out
    code = getattr(detail, "code", None) or "invalid_parameter"
    return [
        {"code": "invalid_parameter" if code == "invalid" else code, "message": str(detail), "attribute": attribute}
    ]


def exception_handler(exc, context):
    if isinstance(exc, ParleyError):
        return Response({"errors": [exc.as_error()]}, status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        error = {"code": "payload_too_large", "message": "The request body is too large.", "attribute": None}
        return Response({"errors": [error]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        code = status.HTTP_422_UNPROCESSABLE_ENTITY
    else:
        errors = [
            {
                "code": exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code,
                "message": str(exc.detail),
                "attribute": None,
            }
        ]
        code = exc.status_code
    return Response({"errors": errors}, status=code, headers=headers)
