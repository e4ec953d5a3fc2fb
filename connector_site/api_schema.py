"""OpenAPI pieces every endpoint shares: the one error envelope and its responses."""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

__all__ = ["ErrorDetailSerializer", "ErrorEnvelopeSerializer", "error_envelope", "error_response"]


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


def error_envelope(name: str, *, detail: dict[str, Any] | None = None, **fields: Any) -> Any:
    """The error envelope as a component of its own ``name`` (and ``<name>Detail``): for
    endpoints that publish their errors under their own name, or whose error body carries
    more. ``detail`` adds to ``error``; ``fields`` sit beside it (a placement's errors carry
    the order)."""
    error: dict[str, serializers.Field] = {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "field": serializers.CharField(allow_null=True),
    }
    # DRF orders declared fields by when they were created, and the caller made its fields
    # before ours: copies (a field's deepcopy is a new instance) put them after ours.
    error.update(copy.deepcopy(detail or {}))
    envelope: dict[str, serializers.Field] = {"error": inline_serializer(f"{name}Detail", fields=error)}
    envelope.update(copy.deepcopy(fields))
    return inline_serializer(name, fields=envelope)
