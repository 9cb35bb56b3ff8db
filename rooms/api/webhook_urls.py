"""Webhook endpoint routes (``webhooks``, deliveries, re-send), included at the ``/api/video/`` root.

Ids are matched as plain path segments and parsed by the service, so a malformed id is the same JSON 404 as an
unknown one.
"""

from __future__ import annotations

from django.urls import path

from rooms.api import webhook_views as views

urlpatterns: list = [
    path("webhooks", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", views.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<str:webhook_id>/rotate_secret", views.WebhookRotateSecretView.as_view(), name="webhook-rotate"),
    path("webhooks/<str:webhook_id>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<str:webhook_id>/deliveries", views.WebhookDeliveryListView.as_view(), name="webhook-deliveries"),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>",
        views.WebhookDeliveryDetailView.as_view(),
        name="webhook-delivery",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/resend",
        views.WebhookDeliveryResendView.as_view(),
        name="webhook-delivery-resend",
    ),
]
