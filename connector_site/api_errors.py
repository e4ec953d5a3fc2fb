"""The one DRF exception handler: every failure becomes ``{"error": {"code", "message", "field"}}``.

Connector errors are mapped to HTTP here and nowhere else. The venue rejecting stored keys
is a 400 (``exchange_credentials_rejected``), never a 401, which tools read as "my token is
bad"; a valid key the venue refuses an action (a read-only key placing an order) is a 403
``exchange_permission_denied`` whose message names the permission the key lacks, told apart
from our own 403 (``permission_denied``: the token's scope or grant) by its code; an unknown
order outcome is a 202; the venue's rate limit is a 429 with Retry-After.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from connectors import errors as connector_errors

logger = logging.getLogger(__name__)

# Most specific first: the first isinstance match wins.
CONNECTOR_STATUS: list[tuple[type[Exception], int]] = [
    (connector_errors.OutcomeUnknown, status.HTTP_202_ACCEPTED),
    (connector_errors.RateLimited, status.HTTP_429_TOO_MANY_REQUESTS),
    (connector_errors.ExchangeUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (connector_errors.TemporaryError, status.HTTP_502_BAD_GATEWAY),
    (connector_errors.PermissionDenied, status.HTTP_403_FORBIDDEN),
    (connector_errors.NotSupported, status.HTTP_400_BAD_REQUEST),
    (connector_errors.ConnectorError, status.HTTP_400_BAD_REQUEST),
]


# Seconds a caller should wait after a venue 429/502/503 that came without a Retry-After.
VENUE_RETRY_AFTER_DEFAULT = 2
# After an outage of our own cache or database (B2 #15): a 503, never a 500 traceback.
OUTAGE_RETRY_AFTER = 1


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable; retry later"
    default_code = "service_unavailable"


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The project's error envelope (REST and WebSocket alike)."""
    return {"error": {"code": code, "message": message, "field": field}}


def _first_validation_error(detail: Any, field: str | None = None) -> tuple[str | None, str, str]:
    """Walk DRF's nested ValidationError detail down to its first message and field path."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        name = None if key == "non_field_errors" else str(key)
        path = f"{field}.{name}" if field and name else (name or field)
        return _first_validation_error(value, path)
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], field)
    code = getattr(detail, "code", "invalid") or "invalid"
    return field, str(code), str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RedisError):
        logger.warning("cache unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable("The cache is unavailable; retry later", code="cache_unavailable")
        exc.wait = OUTAGE_RETRY_AFTER  # type: ignore[attr-defined]
    elif isinstance(exc, OperationalError | InterfaceError):  # not IntegrityError: that is a bug or a 409
        logger.warning("database unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable("The database is unavailable; retry later", code="database_unavailable")
        exc.wait = OUTAGE_RETRY_AFTER  # type: ignore[attr-defined]
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, connector_errors.ConnectorError):
        return _connector_response(exc, context.get("request"))

    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handling logs it (redacted)

    headers: dict[str, str] = {}
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(math.ceil(exc.wait))  # type: ignore[attr-defined]
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError):
        field, code, message = _first_validation_error(exc.detail)
        if code == "invalid" and field:
            code = "invalid_input"
        return Response(error_body(code, message, field), status=exc.status_code, headers=headers)

    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return Response(error_body(str(code), str(exc.detail)), status=exc.status_code, headers=headers)


def connector_status(code: str) -> int:
    """The HTTP status of a connector error known only by its ``code`` (an order journaled
    as rejected keeps the code, not the exception)."""
    classes = [connector_errors.ConnectorError]
    while classes:
        cls = classes.pop()
        if cls.code == code:
            return next(http for known, http in CONNECTOR_STATUS if issubclass(cls, known))
        classes.extend(cls.__subclasses__())
    return status.HTTP_400_BAD_REQUEST


def permission_message(exc: connector_errors.PermissionDenied, request: Any = None) -> str:
    """Name what the key lacks: a write through this API (an order, a cancel, a derivatives
    setting) needs the key's trade permission, a read its read permission; the venue's own
    words follow (they also tell an IP whitelist or a suspended account apart)."""
    if getattr(request, "method", None) in SAFE_METHODS:
        needed, why = "read", "restricted by IP or account"
    else:
        needed, why = "trade", "a read-only key, or one restricted by IP or account"
    return (
        f"The account's API key lacks the {needed} permission on the exchange ({why}); "
        f"an operator must change the key's permissions: {exc}"
    )


def _connector_response(exc: connector_errors.ConnectorError, request: Any = None) -> Response:
    http_status = next(code for cls, code in CONNECTOR_STATUS if isinstance(exc, cls))
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, connector_errors.TemporaryError) and not retry_after:
        # Every venue 429/502/503 tells the caller when to come back, also when the venue
        # gave no time (a 5xx, a timeout, maintenance without a date).
        retry_after = VENUE_RETRY_AFTER_DEFAULT
    if retry_after:
        headers["Retry-After"] = str(math.ceil(retry_after))
    message = str(exc)
    if isinstance(exc, connector_errors.PermissionDenied):
        message = permission_message(exc, request)
    body = error_body(exc.code, message, getattr(exc, "field", None))
    client_order_id = getattr(exc, "client_order_id", None)
    if client_order_id:
        body["error"]["client_order_id"] = client_order_id
    return Response(body, status=http_status, headers=headers)
