"""Reads retry temporary errors with bounded backoff; order placement never retries."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from connectors import errors

from .conftest import inject

TICKER = {"symbol": "BTC/USDT", "last": 65000.5, "timestamp": 1700000000000}


def test_a_read_retries_a_temporary_error_then_succeeds(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    injected = inject(
        connector, "fetch_ticker", ccxt.RequestTimeout("timeout"), ccxt.ExchangeNotAvailable("502"), TICKER
    )

    ticker = connector.fetch_ticker("BTC/USDT")

    assert str(ticker["last"]) == "65000.5"
    assert len(injected.calls) == 3
    assert no_sleep == [0.5, 1.0]


def test_a_read_gives_up_after_the_bounded_number_of_retries(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    injected = inject(connector, "fetch_ticker", ccxt.ExchangeNotAvailable("503"))

    with pytest.raises(errors.ExchangeUnavailable):
        connector.fetch_ticker("BTC/USDT")

    assert len(injected.calls) == connector.retries + 1 == 4
    assert no_sleep == [0.5, 1.0, 2.0]


def test_backoff_is_capped(offline_connector: Any, no_sleep: list[float]) -> None:
    connector = offline_connector()
    connector.retries, connector.backoff_cap = 6, 3.0
    inject(connector, "fetch_ticker", ccxt.RequestTimeout("timeout"))

    with pytest.raises(errors.ExchangeUnavailable):
        connector.fetch_ticker("BTC/USDT")

    assert no_sleep == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_rate_limit_waits_at_least_the_venues_retry_after(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    connector.exchange.last_response_headers = {"Retry-After": "4"}
    injected = inject(connector, "fetch_ticker", ccxt.RateLimitExceeded("429"), TICKER)

    connector.fetch_ticker("BTC/USDT")

    assert no_sleep == [4.0]
    assert len(injected.calls) == 2


def test_a_retry_after_beyond_the_budget_is_raised_at_once(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    connector.exchange.last_response_headers = {"Retry-After": "120"}  # a Binance 418 ban
    injected = inject(connector, "fetch_ticker", ccxt.DDoSProtection("418"))

    with pytest.raises(errors.RateLimited) as caught:
        connector.fetch_ticker("BTC/USDT")

    assert caught.value.retry_after == 120.0
    assert len(injected.calls) == 1 and no_sleep == []


@pytest.mark.parametrize(
    "ccxt_error",
    [
        ccxt.AuthenticationError("bad key"),
        ccxt.BadSymbol("nope"),
        ccxt.InsufficientFunds("poor"),
        ccxt.NotSupported("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_are_not_retried(
    offline_connector: Any, no_sleep: list[float], ccxt_error: Exception
) -> None:
    connector = offline_connector()
    injected = inject(connector, "fetch_balance", ccxt_error)

    with pytest.raises(errors.ConnectorError):
        connector.fetch_balance()

    assert len(injected.calls) == 1 and no_sleep == []


@pytest.mark.parametrize(
    "ccxt_error",
    [
        ccxt.RequestTimeout("t"),
        ccxt.ExchangeNotAvailable("502"),
        ccxt.NetworkError("reset"),
        ccxt.OnMaintenance("m"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_create_order_is_never_retried_and_reports_an_unknown_outcome(
    offline_connector: Any, no_sleep: list[float], ccxt_error: Exception
) -> None:
    connector = offline_connector()
    injected = inject(connector, "create_order", ccxt_error, {"id": "1"})

    with pytest.raises(errors.OutcomeUnknown) as caught:
        connector.create_order("BTC/USDT", "limit", "buy", "0.01", "30000")

    assert len(injected.calls) == 1 and no_sleep == []
    sent_params = injected.calls[0][5]
    assert caught.value.client_order_id == sent_params["clientOrderId"]
    assert caught.value.client_order_id and len(caught.value.client_order_id) == 32


def test_a_rate_limited_order_is_reported_as_refused_and_not_retried(
    offline_connector: Any, no_sleep: list[float]
) -> None:
    connector = offline_connector()
    injected = inject(connector, "create_order", ccxt.RateLimitExceeded("429"), {"id": "1"})

    with pytest.raises(errors.RateLimited):
        connector.create_order("BTC/USDT", "limit", "buy", "0.01", "30000")

    assert len(injected.calls) == 1 and no_sleep == []


def test_cancel_is_not_retried_either(offline_connector: Any, no_sleep: list[float]) -> None:
    connector = offline_connector()
    injected = inject(connector, "cancel_order", ccxt.RequestTimeout("t"))

    with pytest.raises(errors.ExchangeUnavailable):
        connector.cancel_order("123", "BTC/USDT")

    assert len(injected.calls) == 1
