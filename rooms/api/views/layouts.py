"""``layouts``: built-in and project layouts; create, replace and delete the project's own (built-ins are
read-only, 403 ``layout_read_only``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.serializers import LayoutOutputSerializer
from rooms.services import layouts as layout_services

LAYOUT_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Layout name.")
LAYOUT_EXAMPLE = OpenApiExample(
    "Picture in picture",
    value={
        "name": "pip",
        "description": "One large, one small in the corner.",
        "slots": [
            {"x": 0, "y": 0, "width": 360, "height": 360, "z_index": 0, "floor": True},
            {"x": 250, "y": 250, "width": 100, "height": 100, "z_index": 1, "reservation": "guest"},
        ],
    },
    request_only=True,
)


class LayoutUpdateInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    slots = serializers.JSONField(
        required=False,
        help_text="1..100 slots {x, y, width, height (0..360 units, x+width ≤ 360, y+height ≤ 360), z_index, "
        "reservation (null or a short slug), floor, zoom}.",
    )


class LayoutCreateInputSerializer(LayoutUpdateInputSerializer):
    name = serializers.CharField(max_length=100)
    slots = serializers.JSONField(help_text=LayoutUpdateInputSerializer().fields["slots"].help_text)


class LayoutListApi(ProjectAPIView):
    @extend_schema(
        operation_id="layouts_list",
        summary="List built-in and project layouts",
        responses={200: page_serializer("LayoutPage", LayoutOutputSerializer), **error_responses(422)},
        examples=[OpenApiExample("Every layout", value={"page_size": 1000}, request_only=True)],
        tags=["layouts"],
    )
    def get(self, request):
        return paginate(self, selectors.layout_list(project=self.project), LayoutOutputSerializer)

    @extend_schema(
        operation_id="layouts_create",
        summary="Create a project layout",
        request=LayoutCreateInputSerializer,
        responses={201: LayoutOutputSerializer, **error_responses(400, 409, 413, 422)},
        examples=[LAYOUT_EXAMPLE],
        tags=["layouts"],
    )
    def post(self, request):
        data = self.body(LayoutCreateInputSerializer)
        layout = layout_services.layout_create(
            actor=self.actor(),
            project=self.project,
            name=data["name"],
            slots=data["slots"],
            description=data.get("description", ""),
        )
        return Response(LayoutOutputSerializer(layout).data, status=status.HTTP_201_CREATED)


class LayoutDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="layouts_retrieve",
        summary="Get a layout by name (the project's own first, then built-in)",
        parameters=[LAYOUT_NAME],
        responses={200: LayoutOutputSerializer, **error_responses(404)},
        examples=[OpenApiExample("No parameters", value=None, request_only=True)],
        tags=["layouts"],
    )
    def get(self, request, name: str):
        return Response(LayoutOutputSerializer(selectors.layout_get(project=self.project, name=name)).data)

    @extend_schema(
        operation_id="layouts_update",
        summary="Replace a project layout's slots or description (built-ins: 403)",
        parameters=[LAYOUT_NAME],
        request=LayoutUpdateInputSerializer,
        responses={200: LayoutOutputSerializer, **error_responses(400, 403, 404, 413, 422)},
        examples=[
            OpenApiExample(
                "New slots", value={"slots": [{"x": 0, "y": 0, "width": 180, "height": 180}]}, request_only=True
            )
        ],
        tags=["layouts"],
    )
    def put(self, request, name: str):
        layout = selectors.layout_get(project=self.project, name=name)
        data = self.body(LayoutUpdateInputSerializer)
        layout = layout_services.layout_update(
            actor=self.actor(), layout=layout, slots=data.get("slots"), description=data.get("description")
        )
        return Response(LayoutOutputSerializer(layout).data)

    @extend_schema(
        operation_id="layouts_destroy",
        summary="Delete a project layout (built-ins: 403; a room's default: 409)",
        parameters=[LAYOUT_NAME],
        request=None,
        responses={204: None, **error_responses(403, 404, 409)},
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["layouts"],
    )
    def delete(self, request, name: str):
        layout = selectors.layout_get(project=self.project, name=name)
        layout_services.layout_delete(actor=self.actor(), layout=layout)
        return Response(status=status.HTTP_204_NO_CONTENT)
