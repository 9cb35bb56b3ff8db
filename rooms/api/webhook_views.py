"""REST resources for webhook endpoints and their delivery log (DESIGN §4, §7), under ``/api/video/``.

- ``webhooks`` GET (paginated) / POST (201; the only response besides ``rotate_secret`` that shows ``secret``)
- ``webhooks/{id}`` GET / PUT / PATCH / DELETE (204)
- ``webhooks/{id}/rotate_secret`` POST → the endpoint with its new ``secret``
- ``webhooks/{id}/deliveries`` GET (paginated log) · ``webhooks/{id}/deliveries/{delivery_id}`` GET
- ``webhooks/{id}/deliveries/{delivery_id}/resend`` POST → 202 with the delivery
- ``webhooks/{id}/test`` POST → 202 with the delivery of a ``webhook.test`` ping

Another project's endpoint or delivery is 404. Errors: ``{"errors": [{code, message, attribute}]}``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from rooms.api.base import PageQuerySerializer, ProjectAPIView, error_responses, page_serializer, paginate
from rooms.events import WEBHOOK_EVENTS
from rooms.models import WebhookDelivery, WebhookEndpoint
from rooms.services import webhooks as services

# --- representations ----------------------------------------------------------------------------------------------


class EndpointOut(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENTS))
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretOut(EndpointOut):
    secret = serializers.CharField(help_text="HMAC-SHA256 signing key; shown only on create and rotate_secret.")


class AttemptOut(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True, help_text="Null when no response arrived.")
    error = serializers.CharField(help_text="Timeout, refused connection, TLS error…; empty with a response.")
    duration_ms = serializers.IntegerField()
    response_excerpt = serializers.CharField(help_text="At most 1000 characters of the response body.")


class DeliveryOut(serializers.Serializer):
    id = serializers.UUIDField()
    webhook_id = serializers.UUIDField(source="endpoint_id")
    event_id = serializers.UUIDField(help_text="The event id: the idempotency key sent with every attempt.")
    event_type = serializers.CharField(source="event.name")
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.SerializerMethodField(help_text="When the next attempt is due; null unless pending.")
    last_status_code = serializers.IntegerField(allow_null=True)
    last_response_excerpt = serializers.CharField()
    last_error = serializers.CharField()
    attempt_log = AttemptOut(many=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)

    def get_next_attempt_at(self, delivery: WebhookDelivery) -> str | None:
        if delivery.status != WebhookDelivery.Status.PENDING:
            return None
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at)


class EndpointIn(serializers.Serializer):
    """Shape only; the URL (scheme, SSRF guard) and event names are checked by the service (422)."""

    url = serializers.CharField(max_length=1000)
    event_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Empty = every event. Names: {', '.join(WEBHOOK_EVENTS)}",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=300)
    enabled = serializers.BooleanField(required=False)


_ENDPOINT_EXAMPLE = {
    "id": "6f1c2a8e-2c1b-4a7e-9a53-0f4d1c7d9b10",
    "url": "https://hooks.example.com/parley",
    "description": "CRM sync",
    "event_types": ["room.started", "room.ended", "recording.ended"],
    "enabled": True,
    "created_at": "2026-01-05T10:00:00+00:00",
    "updated_at": "2026-01-05T10:00:00+00:00",
}
_DELIVERY_EXAMPLE = {
    "id": "0b8f9a1e-6d6a-4c1e-8f5e-3f1b2e4d5c6a",
    "webhook_id": _ENDPOINT_EXAMPLE["id"],
    "event_id": "9a7e5c3b-1d2f-4e6a-8b9c-0d1e2f3a4b5c",
    "event_type": "room.ended",
    "status": "delivered",
    "attempts": 2,
    "next_attempt_at": None,
    "last_status_code": 200,
    "last_response_excerpt": "ok",
    "last_error": "",
    "attempt_log": [
        {
            "at": "2026-01-05T10:01:00+00:00",
            "status_code": 500,
            "error": "",
            "duration_ms": 41,
            "response_excerpt": "upstream down",
        },
        {
            "at": "2026-01-05T10:01:05+00:00",
            "status_code": 200,
            "error": "",
            "duration_ms": 12,
            "response_excerpt": "ok",
        },
    ],
    "created_at": "2026-01-05T10:01:00+00:00",
    "delivered_at": "2026-01-05T10:01:05+00:00",
}


# --- views ------------------------------------------------------------------------------------------------------

WebhookEndpointPage = page_serializer("WebhookEndpointPage", EndpointOut)
WebhookDeliveryPage = page_serializer("WebhookDeliveryPage", DeliveryOut)


class _WebhookView(ProjectAPIView):
    def endpoint(self, webhook_id) -> WebhookEndpoint:
        return services.webhook_endpoint_get(project=self.project, endpoint_id=webhook_id)


class WebhookListView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_list",
        tags=["webhooks"],
        summary="List webhook endpoints",
        parameters=[PageQuerySerializer],
        responses={200: WebhookEndpointPage, **error_responses(422)},
        examples=[
            OpenApiExample(
                "page",
                response_only=True,
                value={
                    "data": [_ENDPOINT_EXAMPLE],
                    "links": {
                        "self": "http://127.0.0.1:8000/api/video/webhooks?page_size=50",
                        "first": "http://127.0.0.1:8000/api/video/webhooks?page_size=50",
                        "next": None,
                        "prev": None,
                    },
                },
            )
        ],
    )
    def get(self, request):
        return paginate(self, services.webhook_endpoint_list(project=self.project), EndpointOut)

    @extend_schema(
        operation_id="webhooks_create",
        tags=["webhooks"],
        summary="Register a webhook endpoint",
        description="`secret` is shown in this response (and by `rotate_secret`) only. `event_types` empty means "
        "every event. Private, loopback and link-local targets are refused unless the server allows them.",
        request=EndpointIn,
        responses={201: EndpointWithSecretOut, **error_responses(400, 422)},
        examples=[
            OpenApiExample(
                "create",
                value={"url": "https://hooks.example.com/parley", "event_types": ["room.started", "room.ended"]},
                request_only=True,
            ),
            OpenApiExample("created", value={**_ENDPOINT_EXAMPLE, "secret": "Jx3…"}, response_only=True),
        ],
    )
    def post(self, request):
        data = self.body(EndpointIn)
        endpoint = services.webhook_endpoint_create(project=self.project, actor=self.actor(), **data)
        return Response(EndpointWithSecretOut(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        tags=["webhooks"],
        responses={200: EndpointOut, **error_responses(404)},
        examples=[OpenApiExample("endpoint", value=_ENDPOINT_EXAMPLE, response_only=True)],
    )
    def get(self, request, webhook_id):
        return Response(EndpointOut(self.endpoint(webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        tags=["webhooks"],
        summary="Replace a webhook endpoint",
        description='Fields left out take their defaults (`event_types` [], `description` "", `enabled` true).',
        request=EndpointIn,
        responses={200: EndpointOut, **error_responses(400, 404, 422)},
        examples=[
            OpenApiExample(
                "replace",
                request_only=True,
                value={"url": "https://hooks.example.com/v2", "event_types": [], "description": "", "enabled": True},
            )
        ],
    )
    def put(self, request, webhook_id):
        endpoint = self.endpoint(webhook_id)
        data = {"event_types": [], "description": "", "enabled": True, **self.body(EndpointIn)}
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, data=data, actor=self.actor())
        return Response(EndpointOut(endpoint).data)

    @extend_schema(
        operation_id="webhooks_partial_update",
        tags=["webhooks"],
        summary="Change a webhook endpoint",
        request=EndpointIn,
        responses={200: EndpointOut, **error_responses(400, 404, 422)},
        examples=[OpenApiExample("disable", value={"enabled": False}, request_only=True)],
    )
    def patch(self, request, webhook_id):
        endpoint = self.endpoint(webhook_id)
        data = self.body(EndpointIn, partial=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, data=data, actor=self.actor())
        return Response(EndpointOut(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", tags=["webhooks"], responses={204: None, **error_responses(404)})
    def delete(self, request, webhook_id):
        services.webhook_endpoint_delete(endpoint=self.endpoint(webhook_id), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        tags=["webhooks"],
        request=None,
        summary="Replace the signing secret",
        responses={200: EndpointWithSecretOut, **error_responses(404)},
        examples=[OpenApiExample("rotated", value={**_ENDPOINT_EXAMPLE, "secret": "Qm9…"}, response_only=True)],
    )
    def post(self, request, webhook_id):
        endpoint = services.webhook_secret_rotate(endpoint=self.endpoint(webhook_id), actor=self.actor())
        return Response(EndpointWithSecretOut(endpoint).data)


class WebhookDeliveryListView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        tags=["webhooks"],
        summary="The delivery log, newest first",
        parameters=[PageQuerySerializer],
        responses={200: WebhookDeliveryPage, **error_responses(404, 422)},
        examples=[
            OpenApiExample(
                "log",
                response_only=True,
                value={"data": [_DELIVERY_EXAMPLE], "links": {"self": "…", "first": "…", "next": None, "prev": None}},
            )
        ],
    )
    def get(self, request, webhook_id):
        return paginate(self, services.webhook_delivery_list(endpoint=self.endpoint(webhook_id)), DeliveryOut)


class WebhookDeliveryDetailView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_retrieve",
        tags=["webhooks"],
        responses={200: DeliveryOut, **error_responses(404)},
        examples=[OpenApiExample("delivery", value=_DELIVERY_EXAMPLE, response_only=True)],
    )
    def get(self, request, webhook_id, delivery_id):
        delivery = services.webhook_delivery_get(endpoint=self.endpoint(webhook_id), delivery_id=delivery_id)
        return Response(DeliveryOut(delivery).data)


class WebhookDeliveryResendView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries_resend",
        tags=["webhooks"],
        request=None,
        summary="Re-send a delivery now (same event id)",
        description="Resets the delivery to `pending` and attempts it at once; the response shows its state "
        "after that attempt when Celery runs in-process. 409 when the endpoint is disabled.",
        responses={202: DeliveryOut, **error_responses(404, 409)},
        examples=[OpenApiExample("resent", value=_DELIVERY_EXAMPLE, response_only=True)],
    )
    def post(self, request, webhook_id, delivery_id):
        endpoint = self.endpoint(webhook_id)
        delivery = services.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        services.webhook_delivery_resend(endpoint=endpoint, delivery=delivery, actor=self.actor())
        delivery.refresh_from_db()
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookTestView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_test",
        tags=["webhooks"],
        request=None,
        summary="Send a webhook.test ping to this endpoint",
        description='The ping\'s params are `{"webhook": {"id", "url"}}`; it is signed and logged like any '
        "delivery. 409 when the endpoint is disabled.",
        responses={202: DeliveryOut, **error_responses(404, 409)},
        examples=[
            OpenApiExample(
                "ping",
                response_only=True,
                value={
                    **_DELIVERY_EXAMPLE,
                    "event_type": "webhook.test",
                    "attempts": 1,
                    "attempt_log": _DELIVERY_EXAMPLE["attempt_log"][1:],
                },
            )
        ],
    )
    def post(self, request, webhook_id):
        delivery = services.webhook_test_send(endpoint=self.endpoint(webhook_id), actor=self.actor())
        delivery.refresh_from_db()
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)
