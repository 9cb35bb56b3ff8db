"""drf-spectacular extensions: the API-key security schemes (Bearer key, or Basic ``project_id:key``)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "rooms.api.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "basicAuth"]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "pk_<prefix>_<secret>",
                "description": "A project API key: `Authorization: Bearer pk_…`.",
            },
            {
                "type": "http",
                "scheme": "basic",
                "description": "HTTP Basic with the project id as user name and the API key as password.",
            },
        ]
