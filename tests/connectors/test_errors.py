"""Every CCXT exception is translated at the boundary, once, into our tree."""

from __future__ import annotations

import traceback
from typing import Any

import ccxt
import pytest

import connectors
from connectors import errors

from .conftest import TEST_CREDENTIALS, inject


def _ccxt_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    pending: list[type[BaseException]] = [ccxt.BaseError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("ccxt"):
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


# What a read sees for each CCXT class (CCXT 4.5 hierarchy).
READ_EXPECTED: dict[str, type[errors.ConnectorError]] = {
    "BaseError": errors.ConnectorError,
    "ExchangeError": errors.ConnectorError,
    "AuthenticationError": errors.CredentialsRejected,
    "PermissionDenied": errors.PermissionDenied,
    "AccountNotEnabled": errors.PermissionDenied,
    "AccountSuspended": errors.PermissionDenied,
    "ArgumentsRequired": errors.InvalidInput,
    "BadRequest": errors.InvalidInput,
    "BadSymbol": errors.BadSymbol,
    "OperationRejected": errors.InvalidInput,
    "NoChange": errors.InvalidInput,
    "MarginModeAlreadySet": errors.InvalidInput,
    "MarketClosed": errors.InvalidInput,
    "ManualInteractionNeeded": errors.InvalidInput,
    "RestrictedLocation": errors.PermissionDenied,
    "InsufficientFunds": errors.InsufficientFunds,
    "InvalidAddress": errors.InvalidInput,
    "AddressPending": errors.InvalidInput,
    "InvalidOrder": errors.InvalidOrder,
    "OrderNotFound": errors.OrderNotFound,
    "OrderNotCached": errors.OrderNotFound,
    "OrderImmediatelyFillable": errors.InvalidOrder,
    "OrderNotFillable": errors.InvalidOrder,
    "DuplicateOrderId": errors.InvalidOrder,
    "ContractUnavailable": errors.InvalidOrder,
    "NotSupported": errors.NotSupported,
    "InvalidProxySettings": errors.ConnectorError,
    "ExchangeClosedByUser": errors.ConnectorError,
    "OperationFailed": errors.ExchangeUnavailable,
    "NetworkError": errors.ExchangeUnavailable,
    "DDoSProtection": errors.RateLimited,
    "RateLimitExceeded": errors.RateLimited,
    "ExchangeNotAvailable": errors.ExchangeUnavailable,
    "OnMaintenance": errors.ExchangeUnavailable,
    "InvalidNonce": errors.ExchangeUnavailable,
    "ChecksumError": errors.ExchangeUnavailable,
    "RequestTimeout": errors.ExchangeUnavailable,
    "BadResponse": errors.ExchangeUnavailable,
    "NullResponse": errors.ExchangeUnavailable,
    "CancelPending": errors.ExchangeUnavailable,
    "UnsubscribeError": errors.ConnectorError,
}

# Placing an order: a lost answer is "outcome unknown"; a rate limit was refused unprocessed;
# parameter errors are order errors.
PLACE_OVERRIDES: dict[str, type[errors.ConnectorError]] = {
    "OperationFailed": errors.OutcomeUnknown,
    "NetworkError": errors.OutcomeUnknown,
    "ExchangeNotAvailable": errors.OutcomeUnknown,
    "OnMaintenance": errors.OutcomeUnknown,
    "InvalidNonce": errors.OutcomeUnknown,
    "ChecksumError": errors.OutcomeUnknown,
    "RequestTimeout": errors.OutcomeUnknown,
    "BadResponse": errors.OutcomeUnknown,
    "NullResponse": errors.OutcomeUnknown,
    "CancelPending": errors.OutcomeUnknown,
    "ArgumentsRequired": errors.InvalidOrder,
    "BadRequest": errors.InvalidOrder,
    "OperationRejected": errors.InvalidOrder,
    "NoChange": errors.InvalidOrder,
    "MarginModeAlreadySet": errors.InvalidOrder,
    "MarketClosed": errors.InvalidOrder,
    "ManualInteractionNeeded": errors.InvalidOrder,
}


def test_the_table_covers_every_ccxt_exception_class() -> None:
    assert {c.__name__ for c in _ccxt_classes()} == set(READ_EXPECTED)


@pytest.mark.parametrize("ccxt_class", _ccxt_classes(), ids=lambda c: c.__name__)
def test_a_read_translates_each_ccxt_error(
    offline_connector: Any, no_sleep: list[float], ccxt_class: type
) -> None:
    connector = offline_connector()
    inject(connector, "fetch_ticker", ccxt_class('bybit {"retCode":10001}'))

    with pytest.raises(errors.ConnectorError) as caught:
        connector.fetch_ticker("BTC/USDT")

    assert type(caught.value) is READ_EXPECTED[ccxt_class.__name__]
    assert caught.value.code and caught.value.message.startswith(ccxt_class.__name__)


@pytest.mark.parametrize("ccxt_class", _ccxt_classes(), ids=lambda c: c.__name__)
def test_placing_an_order_translates_each_ccxt_error(offline_connector: Any, ccxt_class: type) -> None:
    connector = offline_connector()
    injected = inject(connector, "create_order", ccxt_class("bybit POST /v5/order/create failed"))

    with pytest.raises(errors.ConnectorError) as caught:
        connector.create_order("BTC/USDT", "limit", "buy", "0.01", "30000", client_order_id="abc123")

    expected = PLACE_OVERRIDES.get(ccxt_class.__name__, READ_EXPECTED[ccxt_class.__name__])
    assert type(caught.value) is expected
    assert len(injected.calls) == 1
    if expected is errors.OutcomeUnknown:
        assert caught.value.client_order_id == "abc123"  # type: ignore[attr-defined]


def test_an_unexpected_python_error_while_placing_is_an_unknown_outcome(offline_connector: Any) -> None:
    connector = offline_connector()
    inject(connector, "create_order", KeyError("status"))  # CCXT failed to parse an answer

    with pytest.raises(errors.OutcomeUnknown) as caught:
        connector.create_order("BTC/USDT", "limit", "buy", "0.01", "30000", client_order_id="k1")

    assert caught.value.client_order_id == "k1"


def test_outcome_unknown_is_not_a_temporary_error() -> None:
    assert not issubclass(errors.OutcomeUnknown, errors.TemporaryError)
    assert issubclass(errors.RateLimited, errors.TemporaryError)
    assert issubclass(errors.ExchangeUnavailable, errors.TemporaryError)


def test_every_error_has_a_stable_unique_code_and_says_what_to_do() -> None:
    classes = [getattr(connectors, name) for name in connectors.__all__]
    tree = [c for c in classes if isinstance(c, type) and issubclass(c, errors.ConnectorError)]
    assert len(tree) == 14
    codes = [c.code for c in tree]
    assert len(set(codes)) == len(codes)
    assert errors.CredentialsRejected.code == "exchange_credentials_rejected"
    assert errors.OutcomeUnknown.code == "outcome_unknown"
    assert errors.RateLimited.code == "rate_limited"
    assert errors.InvalidOrder.code == "invalid_order"
    for cls in tree:
        assert cls.__doc__ and len(cls.__doc__.split()) > 8, cls


def test_rate_limited_carries_the_venues_retry_after(offline_connector: Any, no_sleep: list[float]) -> None:
    connector = offline_connector()
    connector.retries = 0
    connector.exchange.last_response_headers = {"Retry-After": "7"}
    inject(connector, "fetch_ticker", ccxt.RateLimitExceeded("bybit 429"))

    with pytest.raises(errors.RateLimited) as caught:
        connector.fetch_ticker("BTC/USDT")

    assert caught.value.retry_after == 7.0


def test_retry_after_as_an_http_date_is_understood() -> None:
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert errors.parse_retry_after("soon") is None
    assert errors.parse_retry_after(None) is None


def test_errors_are_chained_to_a_scrubbed_copy_of_the_ccxt_error(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    connector.retries = 0
    echoed = (
        "bybit GET https://api.bybit.com/v5/market/tickers?symbol=BTCUSDT&signature=abcdef0123 "
        f"{{'X-BAPI-API-KEY': '{TEST_CREDENTIALS.api_key}', 'X-BAPI-SIGN': 'f00d'}} "
        f"secret={TEST_CREDENTIALS.secret}"
    )
    inject(connector, "fetch_ticker", ccxt.ExchangeNotAvailable(echoed))

    with pytest.raises(errors.ExchangeUnavailable) as caught:
        connector.fetch_ticker("BTC/USDT")

    rendered = "".join(traceback.format_exception(caught.value))
    for secret in (*TEST_CREDENTIALS.secret_values(), "abcdef0123", "f00d"):
        assert secret not in rendered
    assert isinstance(caught.value.__cause__, ccxt.ExchangeNotAvailable)
    assert "ExchangeNotAvailable" in rendered


def test_scrub_masks_signed_query_strings_and_key_headers() -> None:
    text = "GET /api/v3/account?timestamp=1&recvWindow=5000&signature=9f8e7d {'X-MBX-APIKEY': 'KEYVALUE'}"
    cleaned = errors.scrub(text)
    assert "9f8e7d" not in cleaned and "KEYVALUE" not in cleaned
    assert "recvWindow=5000" in cleaned


def test_ccxt_request_logging_is_scrubbed(offline_connector: Any, caplog: pytest.LogCaptureFixture) -> None:
    connector = offline_connector()
    caplog.set_level("DEBUG")

    # What CCXT's fetch() logs before every request.
    connector.exchange.logger.debug(
        "%s %s, Request: %s %s",
        "GET",
        "https://api.bybit.com/v5/account?x=1&sign=abc123def",
        {"X-BAPI-API-KEY": TEST_CREDENTIALS.api_key, "X-BAPI-SIGN": "c0ffee"},
        f"secret={TEST_CREDENTIALS.secret}",
    )

    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "Request" in logged and "api.bybit.com" in logged
    for secret in (*TEST_CREDENTIALS.secret_values(), "abc123def", "c0ffee"):
        assert secret not in logged
