"""``room_recordings``: list, detail, delete, ``/events`` and the signed ``/download`` (reference §1.6)."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms import selectors
from rooms.api.base import ProjectAPIView, error_responses, page_serializer, paginate
from rooms.api.downloads import recording_download_check
from rooms.api.serializers import EventOutputSerializer, RecordingOutputSerializer
from rooms.api.views.sessions import MediaTtlQuerySerializer, recording_context
from rooms.exceptions import NotFound, ParleyError
from rooms.models import Recording
from rooms.services.rooms import room_recording_delete

logger = logging.getLogger(__name__)

RECORDING_ID = OpenApiParameter("recording_id", str, OpenApiParameter.PATH, description="Recording id (UUID).")


class RecordingListQuerySerializer(MediaTtlQuerySerializer):
    room_session_id = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=Recording.Status.choices, required=False)


class RecordingListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_recordings_list",
        summary="List recordings",
        parameters=[RecordingListQuerySerializer],
        responses={200: page_serializer("RoomRecordingPage", RecordingOutputSerializer), **error_responses(422)},
        examples=[OpenApiExample("Completed ones", value={"status": "completed"}, request_only=True)],
        tags=["room recordings"],
    )
    def get(self, request):
        filters = self.query(RecordingListQuerySerializer)
        filters.pop("media_ttl", None)
        qs = selectors.recording_list(project=self.project, **filters)
        return paginate(self, qs, RecordingOutputSerializer, context=recording_context(self))


class RecordingDetailApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_recordings_retrieve",
        summary="Get a recording (uri: signed download URL once completed)",
        parameters=[RECORDING_ID, MediaTtlQuerySerializer],
        responses={200: RecordingOutputSerializer, **error_responses(404, 422)},
        examples=[OpenApiExample("URI valid 10 minutes", value={"media_ttl": 600}, request_only=True)],
        tags=["room recordings"],
    )
    def get(self, request, recording_id: str):
        recording = selectors.recording_get(project=self.project, recording_id=recording_id)
        return Response(RecordingOutputSerializer(recording, context=recording_context(self)).data)

    @extend_schema(
        operation_id="room_recordings_destroy",
        summary="Delete a recording and its files (409 while it is still being written)",
        description="Removes the stored MP4, its poster and any working file a failed recording left, then the "
        "recording. 503 ``storage_unavailable`` when the storage refuses or cannot be reached: the recording "
        "stays, and the same request can be repeated.",
        parameters=[RECORDING_ID],
        request=None,
        responses={
            204: None,
            **error_responses(404, 409),
            503: OpenApiResponse(
                error_responses()[401].response, description="The storage is unavailable (storage_unavailable)."
            ),
        },
        examples=[OpenApiExample("No body", value=None, request_only=True)],
        tags=["room recordings"],
    )
    def delete(self, request, recording_id: str):
        recording = selectors.recording_get(project=self.project, recording_id=recording_id)
        room_recording_delete(actor=self.actor(), recording=recording)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RecordingEventListApi(ProjectAPIView):
    @extend_schema(
        operation_id="room_recordings_events_list",
        summary="List a recording's events",
        parameters=[RECORDING_ID],
        responses={200: page_serializer("RecordingEventPage", EventOutputSerializer), **error_responses(404, 422)},
        examples=[OpenApiExample("First page", value={"page_size": 50}, request_only=True)],
        tags=["room recordings"],
    )
    def get(self, request, recording_id: str):
        recording = selectors.recording_get(project=self.project, recording_id=recording_id)
        return paginate(self, selectors.recording_event_list(recording=recording), EventOutputSerializer)


class DownloadForbidden(ParleyError):
    code = "invalid_signature"
    http_status = 403
    default_message = "The download link has expired or is not valid."


class RecordingDownloadApi(APIView):
    """Follows a recording's signed ``uri``: no API key, only an unexpired, untampered signature."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="room_recordings_download",
        summary="Download a recording through its signed uri",
        auth=[],
        parameters=[
            RECORDING_ID,
            OpenApiParameter("expires", int, OpenApiParameter.QUERY, required=True, description="Unix seconds."),
            OpenApiParameter("signature", str, OpenApiParameter.QUERY, required=True),
        ],
        responses={
            (200, "video/mp4"): OpenApiResponse(OpenApiTypes.BINARY, description="The MP4 file."),
            403: OpenApiResponse(error_responses()[401].response, description="Expired or tampered link."),
            404: OpenApiResponse(error_responses()[401].response, description="No such recording file."),
        },
        examples=[OpenApiExample("Signed", value={"expires": 1767225600, "signature": "…"}, request_only=True)],
        tags=["room recordings"],
    )
    def get(self, request, recording_id: str):
        if not recording_download_check(
            recording_id, expires=request.query_params.get("expires"), signature=request.query_params.get("signature")
        ):
            raise DownloadForbidden()
        recording = Recording.objects.filter(pk=recording_id, status=Recording.Status.COMPLETED).first()
        if recording is None or not recording.storage_name or not default_storage.exists(recording.storage_name):
            raise NotFound("Recording file not found.")
        handle = default_storage.open(recording.storage_name, "rb")
        logger.info("recording download recording_id=%s", recording.id)
        return FileResponse(
            handle,
            content_type=recording.format or "video/mp4",
            as_attachment=True,
            filename=f"recording-{recording.id}.mp4",
        )
