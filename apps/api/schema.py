"""OpenAPI pieces drf-spectacular cannot infer: the token authentication and the error body."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema_field, inline_serializer
from rest_framework import serializers


class PersonalAccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.PersonalAccessTokenAuthentication"
    name = "personalAccessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gap_…",
            "description": (
                "A personal access token created on your profile page, sent as "
                "`Authorization: Bearer gap_…`. Read-only tokens answer 403 to writes."
            ),
        }


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(help_text="What went wrong, in the user's language."),
        "code": serializers.CharField(help_text="A stable machine-readable code."),
    },
)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {
                    "type": "object",
                    "description": "Messages of a list's or an object's items, by index or key.",
                },
            ]
        },
    }
)
class _ErrorsField(serializers.DictField):
    """Messages per field: a list of strings, or (for a list or nested field) the same by index."""


ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "errors": _ErrorsField(help_text="Messages per field (non_field_errors for the request as a whole)."),
    },
)

AUTH_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Missing, invalid, revoked or expired token."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests (API_RATE_LIMIT per user)."),
}
READ_ERRORS = {
    **AUTH_ERRORS,
    404: OpenApiResponse(ErrorSerializer, description="Not found, or not one of your organizations."),
}
LIST_ERRORS = {
    **READ_ERRORS,
    400: OpenApiResponse(ValidationErrorSerializer, description="A filter value is not valid."),
}
WRITE_ERRORS = {
    **READ_ERRORS,
    400: OpenApiResponse(
        ValidationErrorSerializer, description="Invalid input, or refused (e.g. the round is not open)."
    ),
    403: OpenApiResponse(
        ErrorSerializer, description="Read-only token, or you are not an owner or administrator."
    ),
}
