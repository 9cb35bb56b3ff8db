"""``api_keys``: the project's keys without secrets, and revocation."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.serializers import ApiKeyOutputSerializer
from rooms.services.api_keys import api_key_revoke


class ApiKeyListApi(ProjectAPIView):
    @extend_schema(
        operation_id="api_keys_list",
        summary="List the project's API keys (prefixes only, never secrets)",
        responses={200: page_serializer("ApiKeyPage", ApiKeyOutputSerializer), **error_responses(422)},
        examples=[OpenApiExample("First page", value={"page_size": 50}, request_only=True)],
        tags=["api keys"],
    )
    def get(self, request):
        return paginate(self, selectors.api_key_list(project=self.project), ApiKeyOutputSerializer)


class ApiKeyDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="api_keys_revoke",
        summary="Revoke an API key (it stops authenticating at once)",
        parameters=[OpenApiParameter("api_key_id", str, OpenApiParameter.PATH, description="Key id (UUID).")],
        request=None,
        responses={204: None, **error_responses(404)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["api keys"],
    )
    def delete(self, request, api_key_id: str):
        key = selectors.api_key_get(project=self.project, api_key_id=api_key_id)
        api_key_revoke(api_key=key, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
