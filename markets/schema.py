"""OpenAPI pieces the market-data endpoints share: the error envelope, tolerant output fields.

The output fields never raise on odd values: cached data is written by several processes
(stream manager, pollers, requests), and a value we cannot read as a number or a time is
shown as null rather than turning the answer into a 500.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from connector_site.api_schema import error_response

__all__ = ["ERROR_RESPONSES", "DecimalString", "Millis"]


ERROR_RESPONSES: dict[int, OpenApiResponse] = {
    400: error_response(
        "Invalid input; `field` names it (unknown_exchange, unknown_symbol, unknown_timeframe, "
        "min_value/max_value, invalid_input, ...), or a request the venue refused"
    ),
    401: error_response("No or an invalid/expired/revoked token (`WWW-Authenticate: Bearer`)"),
    403: error_response("The token lacks the `market:read` scope"),
    429: error_response(
        "Throttled (code `throttled`: our per-token limit) or rate-limited by the venue "
        "(code `rate_limited`, also while our circuit breaker holds off a venue that banned us) "
        "with no value held for the key within the stale horizon (else a 200 with `stale: true`); "
        "the `Retry-After` header says how many seconds to wait"
    ),
    502: error_response(
        "The venue answered with a temporary error (exchange_temporary_error) and no value is held "
        "within the stale horizon; `Retry-After` says when to retry"
    ),
    503: error_response(
        "The venue is unavailable or timed out (exchange_unavailable) and no value is held within "
        "the stale horizon (else a 200 with `stale: true`), or our cache is unavailable "
        "(cache_unavailable); `Retry-After` says when to retry"
    ),
}


class _OutputField(serializers.Field):
    # Output only, and null allowed: the cached values come from the venues, not from callers.
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


@extend_schema_field({"type": "string", "format": "decimal", "nullable": True, "example": "65000.1"})
class DecimalString(_OutputField):
    """A money or quantity value as a plain decimal string (never float, never exponent)."""

    def to_representation(self, value: Any) -> str | None:
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
        return f"{number:f}" if number.is_finite() else None


@extend_schema_field({"type": "integer", "format": "int64", "nullable": True, "example": 1764000000000})
class Millis(_OutputField):
    """Milliseconds since the Unix epoch (or a count), null when unknown."""

    def to_representation(self, value: Any) -> int | None:
        try:
            return int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError, OverflowError):
            return None


@extend_schema_field(OpenApiTypes.STR)
class Text(_OutputField):
    """A short text from the venue (ids, sides), null when absent."""

    def to_representation(self, value: Any) -> str | None:
        return str(value)[:200]
