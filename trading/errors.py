"""Trading's own refusals, as DRF exceptions so the one handler renders them in the envelope.

Venue errors stay connector errors (``connectors.errors``); these are ours: guards,
conflicts with an order's state, idempotency. A refusal that names a field is a
``ValidationError`` keyed by that field, with our code.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError


def invalid(field: str, message: str, code: str = "invalid_input") -> ValidationError:
    """A 400 naming ``field`` with our ``code`` (rendered as ``{"error": {code, message, field}}``)."""
    return ValidationError({field: [ErrorDetail(message, code=code)]})


class Conflict(APIException):
    """409: the request is valid but conflicts with the state of the account, order or key."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state"
    default_code = "conflict"

    def __init__(self, message: str, *, code: str, wait: float | None = None) -> None:
        super().__init__(message, code=code)
        # The handler turns ``wait`` into Retry-After (request_in_progress).
        self.wait = wait


class OrderFailed(Exception):
    """The order was journaled and the venue refused it (or did not process it). ``cause``
    is the connector error for the response; ``order`` already carries the final status."""

    def __init__(self, order: Any, cause: Exception) -> None:
        super().__init__(str(cause))
        self.order = order
        self.cause = cause


class IdempotentReplay(Exception):
    """The key was used before for this same request: answer with the stored response, or,
    when ``orphaned`` (the first request died after journaling its order and stored no
    response), with the order as it stands now."""

    def __init__(self, record: Any, *, orphaned: bool = False) -> None:
        super().__init__(record.key)
        self.record = record
        self.orphaned = orphaned
