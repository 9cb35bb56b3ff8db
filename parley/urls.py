"""URL configuration: front page (→ dashboard), health check, REST API, OpenAPI docs, participant pages, dashboard, admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from parley import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home", permanent=False), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/video/", include("rooms.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    path("dashboard/", include("dashboard.urls")),
    path("", include("rooms.urls")),
]
