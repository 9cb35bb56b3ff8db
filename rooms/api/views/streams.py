"""``streams/{id}``: get, change the URL of a standing output, delete (reference §1.7)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses
from rooms.api.serializers import StreamOutputSerializer
from rooms.api.views.rooms import STREAM_EXAMPLE, StreamUrlInputSerializer
from rooms.services import rooms as room_services

STREAM_ID = OpenApiParameter("stream_id", str, OpenApiParameter.PATH, description="Stream id (UUID).")


class StreamDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="streams_retrieve",
        summary="Get a stream (URL with the key masked)",
        parameters=[STREAM_ID],
        responses={200: StreamOutputSerializer, **error_responses(404)},
        examples=[OpenApiExample("No parameters", value=None, request_only=True)],
        tags=["streams"],
    )
    def get(self, request, stream_id: str):
        return Response(StreamOutputSerializer(selectors.stream_get(project=self.project, stream_id=stream_id)).data)

    @extend_schema(
        operation_id="streams_update",
        summary="Change the URL of a room's standing output",
        parameters=[STREAM_ID],
        request=StreamUrlInputSerializer,
        responses={200: StreamOutputSerializer, **error_responses(400, 404, 409, 413, 422)},
        examples=[STREAM_EXAMPLE],
        tags=["streams"],
    )
    def put(self, request, stream_id: str):
        stream = selectors.stream_get(project=self.project, stream_id=stream_id)
        data = self.body(StreamUrlInputSerializer)
        stream = room_services.stream_update(actor=self.actor(), stream=stream, url=data["url"])
        return Response(StreamOutputSerializer(stream).data)

    @extend_schema(
        operation_id="streams_destroy",
        summary="Delete a stream (409 while a session's stream is running)",
        parameters=[STREAM_ID],
        request=None,
        responses={204: None, **error_responses(404, 409)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["streams"],
    )
    def delete(self, request, stream_id: str):
        stream = selectors.stream_get(project=self.project, stream_id=stream_id)
        room_services.stream_delete(actor=self.actor(), stream=stream)
        return Response(status=status.HTTP_204_NO_CONTENT)
