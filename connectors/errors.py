"""The one error tree of the connectors, and the translation of CCXT's errors into it.

Every call into CCXT goes through :func:`translate` (via the connector's ``_call``), so no
CCXT exception crosses the package boundary. Each class says what a caller should do; the
REST layer maps them to HTTP in one handler and puts :attr:`ConnectorError.code` into the
error envelope.

Messages are scrubbed: CCXT messages echo request URLs (with signatures), bodies and
sometimes headers, so both the credential values and secret-shaped fragments are masked
before a message is kept. The CCXT exception we chain from is a scrubbed copy too, so a
logged traceback (``raise ... from``) shows the venue's error class but no secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from time import time
from typing import Any

import ccxt

__all__ = [
    "BadSymbol",
    "CircuitOpen",
    "ConnectorError",
    "CredentialsRejected",
    "ExchangeUnavailable",
    "InsufficientFunds",
    "InvalidInput",
    "InvalidOrder",
    "NoOpenPosition",
    "NotSupported",
    "OrderNotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "RateLimited",
    "TemporaryError",
    "parse_retry_after",
    "scrub",
    "translate",
]

MASK = "********"


class ConnectorError(Exception):
    """Base of every connector error. Not retryable unless it is a :class:`TemporaryError`.

    A bare ``ConnectorError`` (code ``exchange_error``) is a venue error we could not
    classify: show the message, do not retry automatically.
    """

    code = "exchange_error"
    default_field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field if field is not None else self.default_field


class TemporaryError(ConnectorError):
    """The venue could not answer now. Reads may be retried with backoff (the connector
    already did, a bounded number of times); writes are never retried blindly."""

    code = "exchange_temporary_error"


class RateLimited(TemporaryError):
    """The venue (or our own budget) refused the request for rate reasons; nothing was done.

    Wait at least ``retry_after`` seconds (when known) before calling this venue again, and
    slow down: repeated 429s on Binance escalate to IP bans (418).
    """

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class CircuitOpen(RateLimited):
    """Refused here, before anything was sent: the venue's circuit is open for this
    environment (it answered 429/418 with ``Retry-After``, or keeps failing; see
    :mod:`connectors.circuit`). Nothing was done, exactly as for a venue 429: wait
    ``retry_after`` seconds. ``reason`` is ``"rate_limited"`` or ``"failure"``."""

    def __init__(
        self, message: str, *, retry_after: float, exchange_id: str, environment: str, reason: str
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.exchange_id = exchange_id
        self.environment = environment
        self.reason = reason


class ExchangeUnavailable(TemporaryError):
    """The venue is down, in maintenance, timed out or answered garbage. Try again later;
    show the data you have as stale."""

    code = "exchange_unavailable"


class OutcomeUnknown(ConnectorError):
    """An order was sent and we do not know whether the venue accepted it (timeout, dropped
    connection, 5xx, unreadable answer).

    Never retry it and never treat it as a failure: keep the order as ``unknown`` and
    reconcile by :attr:`client_order_id` (``fetch_order_by_client_id``). Deliberately not a
    :class:`TemporaryError`, so no retry loop can send the order twice.
    """

    code = "outcome_unknown"

    def __init__(self, message: str, *, client_order_id: str | None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.client_order_id = client_order_id


class CredentialsRejected(ConnectorError):
    """The venue rejected the stored API key (unknown key, bad signature, expired, wrong
    passphrase). Ask an operator to check or replace the keys; do not retry."""

    code = "exchange_credentials_rejected"


class PermissionDenied(ConnectorError):
    """The keys are valid but may not do this (read-only key, IP not whitelisted, account
    suspended or restricted). Ask an operator to change the key's permissions; do not retry."""

    code = "exchange_permission_denied"


class InsufficientFunds(ConnectorError):
    """The account lacks the balance or margin for this. Tell the user; do not retry."""

    code = "insufficient_funds"


class InvalidOrder(ConnectorError):
    """The venue rejected the order's parameters (filters, price bands, duplicate client id,
    post-only would take). Fix the order; do not resend it unchanged."""

    code = "invalid_order"


class OrderNotFound(ConnectorError):
    """The venue does not know this order (wrong id, too old, or not visible yet right after
    placing). Reconciliation may ask again a few times before calling the order lost."""

    code = "order_not_found"


class BadSymbol(ConnectorError):
    """The symbol is not a market of this venue (or not one we loaded). Fix the input."""

    code = "bad_symbol"
    default_field = "symbol"


class NotSupported(ConnectorError):
    """This exchange, environment or operation is not supported here (an id outside the
    allow-list, no sandbox, a method the venue lacks). Do not retry; check capabilities."""

    code = "not_supported"


class InvalidInput(ConnectorError):
    """An argument is invalid: our own validation before anything is sent (``field`` names
    it: amount below the market minimum, wrong precision, ...) or the venue rejecting a
    request parameter. Fix the input; do not retry."""

    code = "invalid_input"


class NoOpenPosition(InvalidInput):
    """The operation needs an open position on this contract market and there is none
    (Bybit TP/SL on a flat position). Open a position first; do not retry unchanged."""

    code = "no_open_position"
    default_field = "symbol"


# --------------------------------------------------------------------------- scrubbing

_SECRET_SHAPES = re.compile(
    r"(?i)"
    r"(?P<query>\b(?:signature|sign|apikey|api_key|api-key|secret|passphrase|password|token|x-bapi-sign)=)"
    r"[^&\s'\"]+"
    r"|(?P<header>\b(?:authorization|x-mbx-apikey|ok-access-(?:key|sign|passphrase)|"
    r"x-bapi-(?:api-key|sign)|apikey|api-key|signature|passphrase|secret)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:bearer\s+)?[^\s'\",}&]+"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask the given secret values and any secret-shaped fragment (signed query strings,
    key and signature headers) in ``text``."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, MASK)

    def _mask(match: re.Match[str]) -> str:
        return (match.group("query") or match.group("header") or "") + MASK

    return _SECRET_SHAPES.sub(_mask, text)


def parse_retry_after(value: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (delta-seconds or HTTP date)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time() if now is None else now))


# --------------------------------------------------------------------------- translation

# Most specific first: the first isinstance match wins (CCXT 4: RateLimitExceeded is a
# sibling of DDoSProtection, OnMaintenance is an ExchangeNotAvailable, PermissionDenied an
# AuthenticationError).
_READ_MAP: list[tuple[type[BaseException], type[ConnectorError]]] = [
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.NetworkError, ExchangeUnavailable),  # timeouts, 5xx, maintenance, nonce, checksum
    (ccxt.BadResponse, ExchangeUnavailable),
    (ccxt.CancelPending, ExchangeUnavailable),
    (ccxt.OperationFailed, ExchangeUnavailable),  # Binance -1006: "unexpected response"
    (ccxt.PermissionDenied, PermissionDenied),
    (ccxt.AccountSuspended, PermissionDenied),
    (ccxt.RestrictedLocation, PermissionDenied),
    (ccxt.AuthenticationError, CredentialsRejected),
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.OrderNotCached, OrderNotFound),
    (ccxt.InvalidOrder, InvalidOrder),
    (ccxt.BadSymbol, BadSymbol),
    (ccxt.NotSupported, NotSupported),
    (ccxt.ArgumentsRequired, InvalidInput),
    (ccxt.BadRequest, InvalidInput),
    (ccxt.InvalidAddress, InvalidInput),
    (ccxt.OperationRejected, InvalidInput),
]

# While placing an order, these mean "sent, answer lost": the order may exist.
_UNKNOWN_OUTCOME_ON_PLACE = (ccxt.NetworkError, ccxt.BadResponse, ccxt.OperationFailed)
# ...except these, which the venue sends *instead of* processing the request.
_REJECTED_BEFORE_PROCESSING = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)


def translate(
    exc: BaseException,
    *,
    secrets: Iterable[str] = (),
    order_operation: bool = False,
    placing_client_order_id: str | None = None,
    placing: bool = False,
    retry_after: float | None = None,
) -> ConnectorError:
    """Return the connector error for a CCXT exception (or any exception raised by CCXT).

    ``order_operation``: venue "bad request" errors become :class:`InvalidOrder` instead
    of :class:`InvalidInput` (Binance sends order filter failures as -1013 BadRequest).
    ``placing``: the call was an order placement, so anything that leaves the venue's
    answer unknown becomes :class:`OutcomeUnknown` carrying ``placing_client_order_id``.
    """
    if isinstance(exc, ConnectorError):
        return exc
    name = type(exc).__name__
    message = scrub(f"{name}: {exc}", secrets)
    answer_lost = isinstance(exc, _UNKNOWN_OUTCOME_ON_PLACE) or not isinstance(exc, ccxt.BaseError)
    if placing and answer_lost and not isinstance(exc, _REJECTED_BEFORE_PROCESSING):
        return OutcomeUnknown(
            f"The order may or may not have been placed ({message}); "
            f"reconcile by client order id {placing_client_order_id}",
            client_order_id=placing_client_order_id,
        )
    if not isinstance(exc, ccxt.BaseError):
        return ConnectorError(f"Unexpected error from the exchange library ({message})")
    rejected_parameters = isinstance(exc, ccxt.BadRequest | ccxt.OperationRejected | ccxt.ArgumentsRequired)
    if (
        order_operation
        and rejected_parameters
        and not isinstance(exc, ccxt.BadSymbol | ccxt.RestrictedLocation)
    ):
        return InvalidOrder(message)
    for ccxt_class, ours in _READ_MAP:
        if isinstance(exc, ccxt_class):
            if ours is RateLimited:
                return RateLimited(message, retry_after=retry_after)
            return ours(message)
    return ConnectorError(message)


def scrubbed_copy(exc: BaseException, secrets: Iterable[str] = ()) -> BaseException:
    """A copy of ``exc`` (same class, same traceback) whose message is scrubbed and whose own
    chain is cut, to chain our error from without carrying secrets into tracebacks."""
    text = scrub(str(exc), secrets)
    try:
        copy = type(exc)(text)
    except Exception:  # an exception class with a different constructor
        copy = RuntimeError(f"{type(exc).__name__}: {text}")
    copy.__traceback__ = exc.__traceback__
    copy.__cause__ = None
    copy.__suppress_context__ = True
    return copy
