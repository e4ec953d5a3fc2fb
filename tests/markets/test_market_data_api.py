"""The market-data endpoints against the emulator (real CCXT): shapes, cache-first reads,
validation and the venue's failures, each asserted on status, body and emulator counters."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from markets.cache import market_data_put, now_ms

from .conftest import SPOT, SPOT2, SWAP, Fault, require_venue, url

pytestmark = pytest.mark.django_db

META_FIELDS = {
    "exchange",
    "environment",
    "channel",
    "symbol",
    "source",
    "age_ms",
    "stale",
    "venue_time_ms",
    "venue_time",
    "received_time_ms",
    "received_at",
    "sequence",
    "data",
}


def assert_decimal_string(value: Any) -> Decimal:
    assert isinstance(value, str), value
    number = Decimal(value)
    assert number.is_finite() and "E" not in value.upper()
    return number


# ------------------------------------------------------------------ ticker and the cache


def test_a_ticker_comes_from_the_venue_with_its_source_age_and_decimal_strings(api, venue, venue_calls):
    before = venue_calls(venue, "ticker")
    response = api.get(url(venue, "ticker", symbol=SPOT))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == META_FIELDS
    assert (body["exchange"], body["environment"], body["channel"], body["symbol"]) == (
        venue,
        "emulator",
        "ticker",
        SPOT,
    )
    assert body["source"] == "request"
    assert 0 <= body["age_ms"] < 2_000
    assert body["sequence"] >= 1
    assert isinstance(body["received_time_ms"], int) and body["received_at"].endswith("Z")
    assert assert_decimal_string(body["data"]["last"]) > 0
    bid, ask = assert_decimal_string(body["data"]["bid"]), assert_decimal_string(body["data"]["ask"])
    assert bid <= ask
    assert "info" not in body["data"]
    assert venue_calls(venue, "ticker") == before + 1


def test_a_second_ticker_request_within_its_freshness_makes_no_exchange_call(api, venue, venue_calls):
    first = api.get(url(venue, "ticker", symbol=SPOT)).json()
    calls = venue_calls(venue)
    second = api.get(url(venue, "ticker", symbol=SPOT))
    assert second.status_code == 200
    assert venue_calls(venue) == calls
    assert second.json()["sequence"] == first["sequence"]
    assert second.json()["data"] == first["data"]
    assert second.json()["age_ms"] >= first["age_ms"]


def test_a_ticker_written_by_the_stream_manager_is_served_with_its_source_and_no_exchange_call(
    api, emulator, venue_calls
):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))  # markets loaded, so the count below is the ticker alone
    market_data_put(
        exchange="binance",
        environment="emulator",
        channel="ticker",
        symbol=SPOT,
        data={"symbol": SPOT, "last": Decimal("12345.67"), "bid": None},
        source="stream",
        venue_time_ms=now_ms() - 5,
    )
    calls = venue_calls("binance")
    body = api.get(url("binance", "ticker", symbol=SPOT)).json()
    assert (body["source"], body["data"]["last"], body["data"]["bid"]) == ("stream", "12345.67", None)
    assert body["venue_time_ms"] is not None and body["venue_time"].endswith("Z")
    assert venue_calls("binance") == calls


def test_a_ticker_older_than_two_seconds_is_fetched_again(api, emulator, venue_calls):
    require_venue(emulator, "binance")
    market_data_put(
        exchange="binance",
        environment="emulator",
        channel="ticker",
        symbol=SPOT,
        data={"symbol": SPOT, "last": "1"},
        source="poll",
        received_time_ms=now_ms() - 2_500,
    )
    api.get(url("binance", "ticker", symbol=SPOT2))
    calls = venue_calls("binance", "ticker")
    body = api.get(url("binance", "ticker", symbol=SPOT)).json()
    assert body["source"] == "request"
    assert body["data"]["last"] != "1"
    assert body["sequence"] == 2
    assert venue_calls("binance", "ticker") == calls + 1


def test_concurrent_identical_ticker_misses_make_one_exchange_call(emulator, venue_calls):
    from markets.selectors import market_ticker_get

    require_venue(emulator, "binance")
    from markets.venues import public_connector

    public_connector(exchange="binance").load_markets()
    calls = venue_calls("binance", "ticker")
    results: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(market_ticker_get(exchange="binance", symbol=SPOT))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(results) == 8
    assert {entry.sequence for entry in results} == {1}
    assert venue_calls("binance", "ticker") == calls + 1


# ------------------------------------------------------------------ tickers


def test_tickers_come_in_the_order_asked_with_one_exchange_call_for_the_misses(api, venue, venue_calls):
    api.get(url(venue, "ticker", symbol=SPOT))  # BTC cached; ETH is the only miss
    calls = venue_calls(venue)
    response = api.get(url(venue, "tickers", symbols=f"{SPOT2},{SPOT}"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [r["symbol"] for r in body["results"]] == [SPOT2, SPOT]
    assert [r["data"]["symbol"] for r in body["results"]] == [SPOT2, SPOT]
    assert body["results"][1]["sequence"] == 1  # the cached one, not refetched
    assert all(assert_decimal_string(r["data"]["last"]) > 0 for r in body["results"])
    assert venue_calls(venue) == calls + 1
    again = api.get(url(venue, "tickers", symbols=f"{SPOT},{SPOT2}"))
    assert again.status_code == 200
    assert venue_calls(venue) == calls + 1


def test_tickers_refuse_more_than_fifty_symbols_without_calling_the_venue(api, emulator, venue_calls):
    require_venue(emulator, "binance")
    calls = venue_calls("binance")
    response = api.get(url("binance", "tickers", symbols=",".join(f"C{i}/USDT" for i in range(51))))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "symbols"
    assert venue_calls("binance") == calls


def test_tickers_name_the_unknown_symbol(api, emulator):
    require_venue(emulator, "binance")
    response = api.get(url("binance", "tickers", symbols=f"{SPOT},NOPE/USDT"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_symbol"
    assert response.json()["error"]["field"] == "symbols"


# ------------------------------------------------------------------ order book


def test_an_order_book_has_at_most_limit_levels_per_side_best_first(api, venue):
    response = api.get(url(venue, "orderbook", symbol=SPOT, limit=3))
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    bids = [[assert_decimal_string(p), assert_decimal_string(a)] for p, a in data["bids"]]
    asks = [[assert_decimal_string(p), assert_decimal_string(a)] for p, a in data["asks"]]
    assert 1 <= len(bids) <= 3 and 1 <= len(asks) <= 3
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]


def test_a_shallower_book_is_sliced_from_the_cached_one_and_a_deeper_one_is_fetched(
    api, emulator, venue_calls
):
    require_venue(emulator, "binance")
    api.get(url("binance", "orderbook", symbol=SPOT, limit=50))
    calls = venue_calls("binance", "depth")
    shallow = api.get(url("binance", "orderbook", symbol=SPOT, limit=5)).json()
    assert len(shallow["data"]["bids"]) == 5
    assert venue_calls("binance", "depth") == calls
    deep = api.get(url("binance", "orderbook", symbol=SPOT, limit=100)).json()
    assert deep["source"] == "request"
    assert len(deep["data"]["bids"]) > 5
    assert venue_calls("binance", "depth") == calls + 1


# ------------------------------------------------------------------ trades, candles, funding


def test_recent_trades_come_oldest_first_with_at_most_limit_rows(api, venue):
    response = api.get(url(venue, "trades", symbol=SPOT, limit=5))
    assert response.status_code == 200, response.json()
    trades = response.json()["data"]
    assert 1 <= len(trades) <= 5
    assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
    for trade in trades:
        assert trade["side"] in ("buy", "sell")
        assert assert_decimal_string(trade["price"]) > 0
        assert assert_decimal_string(trade["amount"]) > 0


def test_candles_come_as_objects_oldest_first_and_repeat_from_the_cache(api, venue, venue_calls):
    response = api.get(url(venue, "ohlcv", symbol=SPOT, timeframe="1m", limit=3))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["timeframe"] == "1m"
    candles = body["data"]
    assert 1 <= len(candles) <= 3
    assert [c["timestamp"] for c in candles] == sorted(c["timestamp"] for c in candles)
    for candle in candles:
        low, high = assert_decimal_string(candle["low"]), assert_decimal_string(candle["high"])
        assert low <= assert_decimal_string(candle["open"]) <= high
        assert low <= assert_decimal_string(candle["close"]) <= high
    calls = venue_calls(venue)
    assert api.get(url(venue, "ohlcv", symbol=SPOT, timeframe="1m", limit=2)).status_code == 200
    assert venue_calls(venue) == calls


def test_candles_since_a_time_are_fetched_for_the_request_and_not_cached(api, emulator, venue_calls):
    require_venue(emulator, "binance")
    since = now_ms() - 5 * 60_000
    api.get(url("binance", "ohlcv", symbol=SPOT, timeframe="1m", since=since, limit=2))
    calls = venue_calls("binance", "klines")
    body = api.get(url("binance", "ohlcv", symbol=SPOT, timeframe="1m", since=since, limit=2)).json()
    assert (body["source"], body["sequence"]) == ("request", 0)
    assert all(c["timestamp"] >= since - 60_000 for c in body["data"])
    assert venue_calls("binance", "klines") == calls + 1


def test_a_timeframe_the_venue_lacks_is_refused_naming_the_field(api, emulator, venue_calls):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT))
    calls = venue_calls("binance")
    response = api.get(url("binance", "ohlcv", symbol=SPOT, timeframe="7m"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_timeframe"
    assert response.json()["error"]["field"] == "timeframe"
    assert venue_calls("binance") == calls


def test_a_swap_has_a_funding_rate(api, venue):
    response = api.get(url(venue, "funding-rate", symbol=SWAP))
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["symbol"] == SWAP
    assert abs(assert_decimal_string(data["fundingRate"])) < 1
    assert isinstance(data["fundingTimestamp"], int) or data["fundingTimestamp"] is None


def test_a_spot_market_has_no_funding_rate(api, emulator):
    require_venue(emulator, "binance")
    response = api.get(url("binance", "funding-rate", symbol=SPOT))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "symbol"


def test_the_okx_option_chain_lists_options_on_the_currency(api, emulator):
    require_venue(emulator, "okx")
    response = api.get("/api/v1/markets/okx/option-chain/?currency=btc")
    assert response.status_code == 200, response.json()
    options = response.json()["data"]
    assert options and all(o["symbol"].startswith("BTC/USD") for o in options)
    assert response.json()["symbol"] == "BTC"


def test_the_okx_option_chain_is_refused_where_the_environment_does_not_serve_okx(api, settings):
    from emulator.testing import running_emulator
    from markets.venues import clear_served_cache

    # An emulator without OKX: the chain's fixed venue goes through the same served check.
    with running_emulator(seed=1, venues=("binance",)) as binance_only:
        settings.EMULATOR_URL = binance_only.url
        clear_served_cache()
        response = api.get("/api/v1/markets/okx/option-chain/?currency=BTC")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_exchange"
        assert response.json()["error"]["field"] == "exchange"
        assert "served: binance" in response.json()["error"]["message"]
        assert not binance_only.stats.requests  # refused before any venue call
    clear_served_cache()


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"symbol": "NOPE/USDT"}, "symbol", "unknown_symbol"),
        ({"symbol": "BTCUSDT"}, "symbol", "invalid_input"),
        ({"symbol": "x" * 101 + "/USDT"}, "symbol", "max_length"),
        ({}, "symbol", "required"),
        ({"symbol": SPOT, "limit": "0"}, "limit", "min_value"),
        ({"symbol": SPOT, "limit": "101"}, "limit", "max_value"),
        ({"symbol": SPOT, "limit": "ten"}, "limit", "invalid_input"),
        ({"symbol": SPOT, "limit": "1e3"}, "limit", "invalid_input"),
    ],
)
def test_invalid_order_book_input_is_a_400_naming_the_field_without_a_venue_call(
    api, emulator, venue_calls, query, field, code
):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))  # markets loaded
    calls = venue_calls("binance")
    response = api.get(url("binance", "orderbook", **query))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["code"] == code
    assert venue_calls("binance") == calls


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "-1"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "301"}, "limit"),
        ({"timeframe": "1minute"}, "timeframe"),
    ],
)
def test_invalid_candle_input_is_a_400_naming_the_field(api, emulator, query, field):
    require_venue(emulator, "binance")
    response = api.get(url("binance", "ohlcv", symbol=SPOT, **query))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("exchange", ["nope", "169.254.169.254", "kraken"])
def test_an_exchange_off_the_list_or_not_served_here_is_a_400_unknown_exchange(api, emulator, exchange):
    response = api.get(f"/api/v1/markets/{exchange}/ticker/?symbol=BTC%2FUSDT")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "unknown_exchange",
        "message": response.json()["error"]["message"],
        "field": "exchange",
    }


def test_an_exchange_alias_resolves_to_its_ccxt_id(api, emulator):
    require_venue(emulator, "binance")
    response = api.get("/api/v1/markets/BINANCE/ticker/?symbol=BTC%2FUSDT")
    assert response.status_code == 200
    assert response.json()["exchange"] == "binance"


# ------------------------------------------------------------------ venue trouble


def test_the_venues_rate_limit_is_a_429_with_its_retry_after(api, emulator, remove_faults, venue_calls):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))  # markets loaded
    fault = Fault("ticker/24hr", 429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": "30"})
    emulator.middlewares.append(fault)
    response = api.get(url("binance", "ticker", symbol=SPOT))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response["Retry-After"] == "30"
    assert fault.hits == 1  # a Retry-After beyond a web request's budget is never slept on


def test_a_venue_429_without_retry_after_still_tells_the_caller_when_to_come_back(
    api, emulator, remove_faults
):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))
    fault = Fault("/klines", 429, {"code": -1003, "msg": "Too many requests"}, times=5)
    emulator.middlewares.append(fault)
    response = api.get(url("binance", "ohlcv", symbol=SPOT, timeframe="1h"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert fault.hits == 2  # one quick retry, then the answer


def test_an_unavailable_venue_is_a_503_after_one_quick_retry(api, emulator, remove_faults):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))
    fault = Fault(
        "/depth", 503, {"code": -1001, "msg": "Internal error; unable to process your request."}, times=5
    )
    emulator.middlewares.append(fault)
    started = time.monotonic()
    response = api.get(url("binance", "orderbook", symbol=SPOT))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "exchange_unavailable"
    assert int(response["Retry-After"]) >= 1  # nothing held for the key: the caller is told when to retry
    assert fault.hits == 2
    assert time.monotonic() - started < 2


def test_a_hanging_venue_is_a_503_within_the_request_budget(api, emulator, remove_faults, monkeypatch):
    import dataclasses

    import markets.venues

    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))
    monkeypatch.setattr(
        markets.venues, "INTERACTIVE", dataclasses.replace(markets.venues.INTERACTIVE, timeout=0.3)
    )
    # The venue holds the request for 30 s; our budget (two 0.3 s timeouts and one short
    # backoff) answers long before that, with a generous margin for a loaded machine.
    with emulator.faults.active("hang", venue="binance", endpoint="*/ticker/24hr", max_s=30):
        started = time.monotonic()
        response = api.get(url("binance", "ticker", symbol=SPOT))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "exchange_unavailable"
    assert elapsed < 10


def test_a_venue_blip_is_retried_once_and_answered(api, emulator, remove_faults):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT2))
    # CCXT's binance fetch_trades reads /aggTrades.
    fault = Fault("/aggTrades", 503, {"code": -1001, "msg": "Internal error"}, times=1)
    emulator.middlewares.append(fault)
    response = api.get(url("binance", "trades", symbol=SPOT, limit=3))
    assert response.status_code == 200
    assert fault.hits == 1


def test_a_dead_cache_is_a_503_not_a_500(api, emulator, settings):
    require_venue(emulator, "binance")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = api.get(url("binance", "ticker", symbol=SPOT))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cache_unavailable"
    assert "Traceback" not in response.content.decode()
