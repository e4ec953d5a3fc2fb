"""OpenAPI pieces every endpoint shares: the one error envelope and its responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

__all__ = ["ErrorDetailSerializer", "ErrorEnvelopeSerializer", "error_response"]


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. unknown_symbol, rate_limited, throttled")
    message = serializers.CharField(help_text="Human-readable; never holds a secret")
    field = serializers.CharField(allow_null=True, help_text="The input that was wrong, or null")

    class Meta:
        ref_name = "ErrorDetail"


class ErrorEnvelopeSerializer(serializers.Serializer):
    """``{"error": {"code", "message", "field"}}``: every failure of the API."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)
