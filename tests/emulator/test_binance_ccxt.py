"""Unmodified CCXT (sync and async_support) against the emulated Binance."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from emulator.accounts import DEMO_CREDENTIALS
from tests.emulator.clients import client, point_at

DEMO_KEY, DEMO_SECRET, _ = DEMO_CREDENTIALS["binance"]


def test_load_markets_with_credentials_serves_spot_futures_and_currencies(emulator):
    exchange = point_at(ccxt.binance({"apiKey": DEMO_KEY, "secret": DEMO_SECRET}), emulator)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC", "ETH/USD:ETH"} <= set(markets)
    dated = [s for s, m in markets.items() if m["future"]]
    assert len(dated) == 2 and all(
        m["expiry"] > time.time() * 1000 for s, m in markets.items() if m["future"]
    )
    assert exchange.currencies["BTC"]["networks"], "capital/config/getall was served"


def test_public_market_data_has_live_values(binance):
    ticker = binance.fetch_ticker("BTC/USDT")
    book = binance.fetch_order_book("BTC/USDT", 10)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert len(book["bids"]) == 10 and book["nonce"] > 0
    assert 30_000 < ticker["last"] < 150_000 and ticker["baseVolume"] > 0
    tickers = binance.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    trades = binance.fetch_trades("BTC/USDT", limit=5)
    assert trades and all(t["price"] > 0 for t in trades)


def test_ohlcv_has_history_for_a_chart(binance):
    hourly = binance.fetch_ohlcv("BTC/USDT", "1h", limit=500)
    assert len(hourly) == 500
    assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(hourly))
    since = hourly[10][0]
    assert binance.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=3)[0][0] == since
    assert len(binance.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=5)) == 5


def test_perpetual_funding_rate_and_futures_ticker(binance):
    funding = binance.fetch_funding_rate("BTC/USDT:USDT")
    assert abs(funding["fundingRate"]) < 0.01 and funding["fundingTimestamp"] > time.time() * 1000
    history = binance.fetch_funding_rate_history("BTC/USDT:USDT", limit=3)
    assert len(history) == 3
    assert binance.fetch_ticker("BTC/USD:BTC")["last"] > 0


def test_balance_starts_with_the_default_amounts(binance):
    balance = binance.fetch_balance()
    assert (
        balance["BTC"]["free"] == 10
        and balance["USDT"]["free"] == 1_000_000
        and balance["ETH"]["total"] == 100
    )


def test_limit_order_can_be_created_fetched_listed_and_cancelled(binance):
    order = binance.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    assert order["status"] == "open"
    assert binance.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in binance.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert binance.fetch_balance()["USDT"]["used"] == 200
    assert binance.cancel_order(order["id"], "BTC/USDT")["status"] == "canceled"
    assert binance.fetch_open_orders("BTC/USDT") == []
    assert binance.fetch_balance()["USDT"]["used"] == 0


def test_market_order_fills_at_once_and_appears_in_closed_orders_and_my_trades(binance):
    order = binance.create_order("ETH/USDT", "market", "buy", 2)
    assert order["status"] == "closed" and order["filled"] == 2 and order["average"] > 0
    closed = binance.fetch_closed_orders("ETH/USDT")
    assert [o["id"] for o in closed] == [order["id"]]
    trades = binance.fetch_my_trades("ETH/USDT")
    assert sum(t["amount"] for t in trades) == 2 and all(t["order"] == order["id"] for t in trades)
    balance = binance.fetch_balance()
    assert balance["ETH"]["free"] == pytest.approx(100 + 2 * 0.999)


def test_limit_order_rests_then_fills_when_the_price_crosses_it(binance, held_market):
    market = held_market("ETH/USDT", "3000")
    order = binance.create_order("ETH/USDT", "limit", "buy", 0.5, 2900)
    assert binance.fetch_order(order["id"], "ETH/USDT")["status"] == "open"
    market.set_price("2880", hold=True)
    filled = binance.fetch_order(order["id"], "ETH/USDT")
    assert filled["status"] == "closed" and filled["average"] == 2900
    trade = binance.fetch_my_trades("ETH/USDT")[-1]
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 2900


def test_limit_order_crossing_thin_liquidity_fills_partially_and_rests(binance, held_market):
    market = held_market("ETH/USDT", "3000")
    ask_price, ask_qty = market.best("sell")
    order = binance.create_order("ETH/USDT", "limit", "buy", float(ask_qty * 2), float(ask_price))
    assert order["status"] == "open"
    assert Decimal(str(order["filled"])) == ask_qty and Decimal(str(order["remaining"])) == ask_qty
    assert binance.fetch_order(order["id"], "ETH/USDT")["info"]["status"] == "PARTIALLY_FILLED"


def test_duplicate_client_order_id_of_an_open_order_is_rejected(binance):
    params = {"clientOrderId": "my-order-1"}
    binance.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, params)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        binance.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, params)


def test_wrong_key_or_secret_raises_authentication_error(emulator):
    for key, secret in (("no-such-key", "x"), (DEMO_KEY, "wrong-secret")):
        exchange = client(emulator, "binance", key, secret)
        with pytest.raises(ccxt.AuthenticationError):
            exchange.fetch_balance()


def test_stale_timestamp_raises_invalid_nonce(binance):
    binance.options["recvWindow"] = 1000
    binance.nonce = lambda: int(time.time() * 1000) - 5000
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        binance.fetch_balance()


def test_insufficient_funds_and_unknown_orders_raise_the_ccxt_errors(binance):
    with pytest.raises(ccxt.InsufficientFunds):
        binance.create_order("BTC/USDT", "limit", "buy", 100, 20_000)
    with pytest.raises(ccxt.InsufficientFunds):
        binance.create_order("BTC/USDT", "market", "sell", 11)
    with pytest.raises(ccxt.OrderNotFound):
        binance.fetch_order("123", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        binance.cancel_order("123", "BTC/USDT")


def _raw_order(exchange: Any, quantity: str, price: str) -> None:
    exchange.private_post_order(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": quantity,
            "price": price,
        }
    )


def test_filter_failures_are_rejected_with_binance_codes(binance):
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        _raw_order(binance, "0.000015", "20000")  # not a multiple of stepSize 0.00001
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        _raw_order(binance, "0.01", "20000.001")  # not a multiple of tickSize 0.01
    # -1013 "Filter failure: NOTIONAL": CCXT maps the code to BadRequest (no message rule), as in production.
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        _raw_order(binance, "0.0001", "20000")


def test_unknown_parameters_are_rejected_like_binance(binance):
    with pytest.raises(ccxt.BadRequest, match="-1104"):
        binance.public_get_depth({"symbol": "BTCUSDT", "foo": "1"})


def test_counters_count_requests_per_endpoint_and_orders_per_key(emulator, binance, credentials):
    before = emulator.stats.requests[("binance", "GET api.binance.com/api/v3/depth")]
    binance.fetch_order_book("BTC/USDT")
    binance.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    assert emulator.stats.requests[("binance", "GET api.binance.com/api/v3/depth")] == before + 1
    assert emulator.stats.orders_accepted_by_key()[credentials[0]] == 1
    assert emulator.stats.requests_by_key[credentials[0]] == 1


async def test_async_support_client_trades_like_the_sync_one(async_clients, credentials):
    exchange = async_clients("binance", *credentials, module=ccxt_async)
    assert (await exchange.fetch_ticker("ETH/USDT"))["last"] > 0
    assert len(await exchange.fetch_ohlcv("ETH/USDT", "5m", limit=10)) == 10
    order = await exchange.create_order("ETH/USDT", "limit", "sell", 1, 100_000)
    assert (await exchange.fetch_balance())["ETH"]["used"] == 1
    assert (await exchange.cancel_order(order["id"], "ETH/USDT"))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("42", "ETH/USDT")
