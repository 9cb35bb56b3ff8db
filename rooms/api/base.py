"""Shared pieces of the REST views: the base view (API-key project scope, throttles, bounded JSON parser),
cursor-style pagination, and the error responses documented on every operation."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from rooms.actors import Actor
from rooms.api.authentication import ApiKeyPrincipal
from rooms.exceptions import InvalidParameter

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
_PAGE_TOKEN_SALT = "parley.api.page_token"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser reads the request stream directly, past Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``; this
    one refuses bodies over that size with 413 before parsing, and malformed JSON with 400 ``parse_error``."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as e:
            raise exceptions.ParseError(f"JSON parse error - {e}") from e


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class ApiKeyRateThrottle(SimpleRateThrottle):
    """A rate limit per API key; the rate is read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]`` at
    request time (so settings changes apply without a restart of the class)."""

    scope = ""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not isinstance(request.user, ApiKeyPrincipal):
            return None
        return f"throttle_{self.scope}_{request.user.pk}"


class WritesThrottle(ApiKeyRateThrottle):
    """Scope ``writes``: every POST/PUT/PATCH/DELETE except minting tokens."""

    scope = "writes"

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class RoomTokensThrottle(ApiKeyRateThrottle):
    """Scope ``room_tokens``: ``POST /room_tokens``."""

    scope = "room_tokens"


class ProjectAPIView(APIView):
    """Base of every key-authenticated view: ``self.project`` is the caller's project and ``self.actor()``
    the ``Actor`` services audit."""

    parser_classes = [BoundedJSONParser]
    throttle_classes = [WritesThrottle]

    @property
    def project(self):
        return self.request.user.project

    def actor(self) -> Actor:
        key = self.request.auth
        return Actor(
            project_id=key.project_id,
            kind="api_key",
            id=str(key.id),
            name=key.name or key.prefix,
            interface="rest",
            permissions=None,
        )

    def query(self, serializer_class: type[serializers.Serializer]) -> dict:
        """Validate query parameters with ``serializer_class`` (422 with ``attribute`` on bad values)."""
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def body(self, serializer_class: type[serializers.Serializer], *, partial: bool = False) -> dict:
        """Validate the JSON body with ``serializer_class`` (422 with ``attribute`` on bad values)."""
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# Pagination --------------------------------------------------------------------------------------------------


class PageQuerySerializer(serializers.Serializer):
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE_DEFAULT
    )
    page_token = serializers.CharField(required=False, max_length=500)


class PaginationLinksSerializer(serializers.Serializer):
    self = serializers.URLField()
    first = serializers.URLField()
    next = serializers.URLField(allow_null=True)
    prev = serializers.URLField(allow_null=True)


def _page_token(offset: int) -> str:
    return signing.dumps({"o": offset}, salt=_PAGE_TOKEN_SALT, compress=True)


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = signing.loads(token, salt=_PAGE_TOKEN_SALT)["o"]
    except (signing.BadSignature, KeyError, TypeError, ValueError) as e:
        raise InvalidParameter("Invalid page_token.", attribute="page_token") from e
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameter("Invalid page_token.", attribute="page_token")
    return offset


def paginate(view: ProjectAPIView, queryset, serializer_class, *, context=None) -> Response:
    """One page of ``queryset`` as ``{"data": [...], "links": {"self", "first", "next", "prev"}}``.

    ``page_size`` 1..1000 (default 50); ``page_token`` is opaque (a signed offset) and only valid with the
    filters it was issued for. The queryset must be totally ordered. ``context``: a serializer context dict,
    or a callable taking the page's rows and returning one (for per-page lookups).
    """
    params = view.query(PageQuerySerializer)
    size = params["page_size"]
    offset = _page_offset(params.get("page_token"))
    rows = list(queryset[offset : offset + size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    request = view.request
    base = request.build_absolute_uri(request.path)
    others = [(k, v) for k, v in request.query_params.lists() if k not in ("page_token", "page_size")]
    flat = [(k, v) for k, values in others for v in values]

    def link(at_offset: int | None) -> str | None:
        if at_offset is None:
            return None
        query = flat + [("page_size", size)]
        if at_offset:
            query.append(("page_token", _page_token(at_offset)))
        return f"{base}?{urlencode(query)}"

    links = {
        "self": link(offset),
        "first": link(0),
        "next": link(offset + size) if has_next else None,
        "prev": link(max(offset - size, 0)) if offset else None,
    }
    if callable(context):
        context = context(rows)
    data = serializer_class(rows, many=True, context=context or {"request": request}).data
    return Response({"data": data, "links": links})


def page_serializer(name: str, item_serializer) -> type[serializers.Serializer]:
    """A named ``{data: [item], links}`` serializer for the schema."""
    return type(
        name,
        (serializers.Serializer,),
        {"data": item_serializer(many=True), "links": PaginationLinksSerializer(), "__module__": __name__},
    )


# Errors in the schema ----------------------------------------------------------------------------------------


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    attribute = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    errors = ErrorItemSerializer(many=True)


def error_responses(*codes: int) -> dict:
    """``{status: ErrorSerializer}`` for ``extend_schema(responses=...)``; 401 and 429 always included."""
    from drf_spectacular.utils import OpenApiResponse

    descriptions = {
        400: "Malformed JSON (parse_error).",
        401: "Missing, invalid or revoked API key.",
        403: "Not allowed.",
        404: "Not found in the caller's project.",
        409: "Conflicts with the current state.",
        413: "Body larger than the configured maximum.",
        422: "Invalid parameter; attribute names it.",
        429: "Rate limited; see Retry-After.",
        503: "No media worker is available (media_unavailable).",
    }
    return {c: OpenApiResponse(ErrorSerializer, description=descriptions[c]) for c in sorted({401, 429, *codes})}
