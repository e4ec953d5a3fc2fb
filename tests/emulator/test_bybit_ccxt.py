"""Unmodified CCXT (sync and async_support) against the emulated Bybit (v5, unified trading account)."""

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

BYBIT_KEY, BYBIT_SECRET, _ = DEMO_CREDENTIALS["bybit"]


def test_load_markets_without_options_serves_every_category_and_the_currencies(emulator):
    exchange = point_at(
        ccxt.bybit({"apiKey": BYBIT_KEY, "secret": BYBIT_SECRET, "enableRateLimit": False}), emulator
    )
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC", "LTC/USD:LTC"} <= set(markets)
    now = time.time() * 1000
    futures = [m for m in markets.values() if m["future"]]
    assert {m["id"].split("-")[0] for m in futures} >= {"BTCUSDT", "ETHUSDT"}
    assert any(m["inverse"] for m in futures) and all(m["expiry"] > now for m in futures)
    options = [m for m in markets.values() if m["option"]]
    assert {m["base"] for m in options} == {"BTC", "ETH", "SOL"}
    assert all(m["expiry"] > now and m["strike"] > 0 for m in options)
    assert {m["optionType"] for m in options} == {"call", "put"}
    assert exchange.currencies["BTC"]["networks"], "/v5/asset/coin/query-info was served"


def test_instruments_info_pages_with_a_cursor(bybit):
    first = bybit.public_get_v5_market_instruments_info({"category": "option", "baseCoin": "ETH", "limit": 7})
    rows, cursor = first["result"]["list"], first["result"]["nextPageCursor"]
    second = bybit.public_get_v5_market_instruments_info(
        {"category": "option", "baseCoin": "ETH", "limit": 1000, "cursor": cursor}
    )
    rest = second["result"]["list"]
    assert len(rows) == 7 and cursor and rest and second["result"]["nextPageCursor"] == ""
    assert {r["symbol"] for r in rows}.isdisjoint(r["symbol"] for r in rest)
    assert all(r["baseCoin"] == "ETH" for r in rows + rest)


def test_public_market_data_has_live_values(bybit):
    for symbol in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"):
        ticker = bybit.fetch_ticker(symbol)
        book = bybit.fetch_order_book(symbol, 10)
        assert 30_000 < ticker["last"] < 150_000 and ticker["baseVolume"] > 0, symbol
        assert book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) == 10, symbol
        trades = bybit.fetch_trades(symbol, limit=5)
        assert len(trades) == 5 and all(t["price"] > 0 for t in trades), symbol
    assert bybit.fetch_ticker("BTC/USDT:USDT")["markPrice"] > 0
    tickers = bybit.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}


def test_ohlcv_has_history_for_a_chart(bybit):
    hourly = bybit.fetch_ohlcv("BTC/USDT", "1h", limit=500)
    assert len(hourly) == 500
    assert all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(hourly))
    since = hourly[10][0]
    assert bybit.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=3)[0][0] == since
    assert len(bybit.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=5)) == 5
    assert len(bybit.fetch_ohlcv("BTC/USD:BTC", "1d", limit=5)) == 5
    mark = bybit.fetch_ohlcv("BTC/USDT:USDT", "5m", limit=3, params={"price": "mark"})
    assert len(mark) == 3 and mark[-1][4] > 0


def test_perpetual_funding_rate_and_history(bybit):
    funding = bybit.fetch_funding_rate("BTC/USDT:USDT")
    assert abs(funding["fundingRate"]) < 0.01 and funding["fundingTimestamp"] > time.time() * 1000
    assert funding["interval"] == "8h"
    history = bybit.fetch_funding_rate_history("BTC/USDT:USDT", limit=3)
    assert len(history) == 3 and history[0]["timestamp"] < history[-1]["timestamp"]
    assert bybit.fetch_funding_rate("BTC/USD:BTC")["fundingRate"] is not None


def test_option_tickers_quote_a_premium_with_greeks(bybit):
    call = next(
        m["symbol"]
        for m in bybit.markets.values()
        if m["option"] and m["base"] == "BTC" and m["optionType"] == "call"
    )
    ticker = bybit.fetch_ticker(call)
    underlying = float(ticker["info"]["underlyingPrice"])
    assert 0 < ticker["last"] < underlying and 0 < float(ticker["info"]["delta"]) < 1
    chain = bybit.public_get_v5_market_tickers({"category": "option", "baseCoin": "SOL"})["result"]["list"]
    assert len(chain) == 20 and all(row["symbol"].startswith("SOL-") for row in chain)


def test_balance_starts_with_the_default_amounts(bybit):
    balance = bybit.fetch_balance()
    assert balance["BTC"]["free"] == 10 and balance["USDT"]["free"] == 1_000_000
    assert balance["ETH"]["total"] == 100 and "USD" not in balance


def test_limit_order_can_be_created_fetched_listed_and_cancelled(bybit):
    order = bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    fetched = bybit.fetch_order(order["id"], "BTC/USDT", {"acknowledged": True})
    assert fetched["status"] == "open" and fetched["amount"] == 0.01 and fetched["price"] == 20_000
    assert bybit.fetch_open_order(order["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in bybit.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert bybit.fetch_balance()["USDT"]["used"] == 200
    assert bybit.cancel_order(order["id"], "BTC/USDT")["id"] == order["id"]
    assert bybit.fetch_order(order["id"], "BTC/USDT", {"acknowledged": True})["status"] == "canceled"
    assert bybit.fetch_open_orders("BTC/USDT") == []
    assert bybit.fetch_balance()["USDT"]["used"] == 0
    assert [o["id"] for o in bybit.fetch_canceled_orders("BTC/USDT")] == [order["id"]]


def test_market_order_fills_at_once_and_appears_in_closed_orders_and_my_trades(bybit):
    order = bybit.create_order("ETH/USDT", "market", "buy", 2)  # UTA: marketUnit=baseCoin, qty 2 ETH
    closed = bybit.fetch_closed_orders("ETH/USDT")
    assert [o["id"] for o in closed] == [order["id"]]
    assert closed[0]["status"] == "closed" and closed[0]["filled"] == 2 and closed[0]["average"] > 0
    assert closed[0]["fee"]["currency"] == "ETH"
    trades = bybit.fetch_my_trades("ETH/USDT")
    assert sum(t["amount"] for t in trades) == 2 and all(t["order"] == order["id"] for t in trades)
    assert all(t["takerOrMaker"] == "taker" and t["fee"]["currency"] == "ETH" for t in trades)
    assert bybit.fetch_balance()["ETH"]["free"] == pytest.approx(100 + 2 * 0.999)


def test_market_buy_with_cost_spends_that_much_quote(bybit):
    order = bybit.create_market_buy_order_with_cost("LTC/USDT", 500)
    closed = bybit.fetch_order(order["id"], "LTC/USDT", {"acknowledged": True})
    assert closed["status"] == "closed" and closed["cost"] == pytest.approx(500, rel=0.01)
    assert closed["info"]["marketUnit"] == "quoteCoin"
    assert bybit.fetch_balance()["USDT"]["free"] == pytest.approx(1_000_000 - closed["cost"])


def test_limit_order_rests_then_fills_when_the_price_crosses_it(bybit, held_bybit):
    market = held_bybit("ETH/USDT", "3000")
    order = bybit.create_order("ETH/USDT", "limit", "buy", 0.5, 2900)
    assert bybit.fetch_open_orders("ETH/USDT")[0]["id"] == order["id"]
    market.set_price("2880", hold=True)
    filled = bybit.fetch_order(order["id"], "ETH/USDT", {"acknowledged": True})
    assert filled["status"] == "closed" and filled["average"] == 2900
    trade = bybit.fetch_my_trades("ETH/USDT")[-1]
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 2900


def test_limit_order_crossing_thin_liquidity_fills_partially_and_rests(bybit, held_bybit):
    market = held_bybit("ETH/USDT", "3000")
    ask_price, ask_qty = market.best("sell")
    order = bybit.create_order("ETH/USDT", "limit", "buy", float(ask_qty * 2), float(ask_price))
    fetched = bybit.fetch_order(order["id"], "ETH/USDT", {"acknowledged": True})
    assert fetched["status"] == "open" and fetched["info"]["orderStatus"] == "PartiallyFilled"
    assert Decimal(str(fetched["filled"])) == ask_qty and Decimal(str(fetched["remaining"])) == ask_qty


def test_orders_are_found_by_client_order_id(bybit):
    order = bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "my-link-1"})
    assert order["clientOrderId"] == "my-link-1"
    params = {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "my-link-1"}
    found = bybit.private_get_v5_order_realtime(params)["result"]["list"]
    assert [row["orderId"] for row in found] == [order["id"]]
    bybit.cancel_order(None, "BTC/USDT", {"orderLinkId": "my-link-1"})
    history = bybit.private_get_v5_order_history(params)["result"]["list"]
    assert [row["orderStatus"] for row in history] == ["Cancelled"]


def test_duplicate_client_order_id_of_an_open_order_is_rejected(bybit):
    params = {"clientOrderId": "dup-1"}
    bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, params)
    with pytest.raises(ccxt.InvalidOrder, match="170141"):
        bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, params)


def test_wrong_key_or_secret_raises_authentication_error(emulator):
    for key, secret, code in (("no-such-key", "x", "10003"), (BYBIT_KEY, "wrong-secret", "10004")):
        exchange = client(emulator, "bybit", key, secret)
        with pytest.raises(ccxt.AuthenticationError, match=code):
            exchange.fetch_balance()


def test_stale_timestamp_raises_invalid_nonce(bybit):
    bybit.options["recvWindow"] = 1000
    bybit.options.update(enableUnifiedMargin=False, enableUnifiedAccount=True)  # skip the account probes
    bybit.nonce = lambda: int(time.time() * 1000) - 5000
    with pytest.raises(ccxt.InvalidNonce, match="10002"):
        bybit.fetch_balance()


def test_insufficient_funds_and_unknown_orders_raise_the_ccxt_errors(bybit):
    with pytest.raises(ccxt.InsufficientFunds, match="170131"):
        bybit.create_order("BTC/USDT", "limit", "buy", 60, 20_000)
    with pytest.raises(ccxt.InsufficientFunds):
        bybit.create_order("BTC/USDT", "market", "sell", 11)
    with pytest.raises(ccxt.OrderNotFound):
        bybit.fetch_order("123", "BTC/USDT", {"acknowledged": True})
    with pytest.raises(ccxt.OrderNotFound, match="170213"):
        bybit.cancel_order("123", "BTC/USDT")


def _raw_order(exchange: Any, qty: str, price: str) -> None:
    request = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
    exchange.private_post_v5_order_create(request | {"qty": qty, "price": price})


@pytest.mark.parametrize(
    ("qty", "price", "code"),
    [
        ("0.0000015", "20000", "170137"),  # more decimals than basePrecision 0.000001
        ("0.01", "20000.05", "170134"),  # not on the 0.1 tick
        ("0.00001", "60000", "170136"),  # below minOrderQty 0.000011
        ("0.0002", "20000", "170140"),  # 4 USDT, below minOrderAmt 5
        ("100", "20000", "170135"),  # above maxOrderQty 83
    ],
)
def test_filter_failures_are_rejected_with_bybit_codes(bybit, qty, price, code):
    with pytest.raises(ccxt.InvalidOrder, match=code):
        _raw_order(bybit, qty, price)


def test_unserved_features_say_so_in_the_error(bybit):
    with pytest.raises(ccxt.BadRequest, match="is not emulated"):
        bybit.private_post_v5_order_create_batch({"category": "linear", "request": []})
    with pytest.raises(ccxt.InvalidOrder, match="is not emulated"):
        bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"triggerPrice": 21_000})
    with pytest.raises(ccxt.BadSymbol):
        bybit.public_get_v5_market_tickers({"category": "spot", "symbol": "NOPEUSDT"})


def test_key_permissions_come_from_query_api(emulator, bybit):
    info = bybit.private_get_v5_user_query_api()["result"]
    assert info["readOnly"] == 0 and info["permissions"]["Spot"] == ["SpotTrade"]
    assert "Withdraw" not in info["permissions"]["Wallet"] and info["uta"] == 1
    emulator.add_account("bybit-reading-key", "s", permissions=("read",))
    read_only = client(emulator, "bybit", "bybit-reading-key", "s").private_get_v5_user_query_api()["result"]
    assert read_only["readOnly"] == 1 and read_only["permissions"]["Spot"] == []


def test_counters_count_requests_per_endpoint_and_orders_per_key(emulator, bybit, bybit_credentials):
    endpoint = ("bybit", "GET api.bybit.com/v5/market/orderbook")
    before = emulator.stats.requests[endpoint]
    bybit.fetch_order_book("BTC/USDT")
    bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    assert emulator.stats.requests[endpoint] == before + 1
    assert emulator.stats.orders_accepted_by_key()[bybit_credentials[0]] == 1
    # create_order: /v5/user/query-api and /v5/account/info (account probe), /v5/order/create
    assert emulator.stats.requests_by_key[bybit_credentials[0]] == 3


async def test_async_support_client_trades_like_the_sync_one(async_clients, bybit_credentials):
    exchange = async_clients("bybit", *bybit_credentials, module=ccxt_async)
    assert (await exchange.fetch_ticker("ETH/USDT"))["last"] > 0
    assert len(await exchange.fetch_ohlcv("ETH/USDT", "5m", limit=10)) == 10
    order = await exchange.create_order("ETH/USDT", "limit", "sell", 1, 100_000)
    assert (await exchange.fetch_balance())["ETH"]["used"] == 1
    assert (await exchange.cancel_order(order["id"], "ETH/USDT"))["id"] == order["id"]
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("42", "ETH/USDT", {"acknowledged": True})


def test_injected_faults_answer_with_bybit_bodies_so_ccxt_raises_its_own_errors(emulator, bybit):
    try:
        emulator.faults.set("rate_limit", venue="bybit", endpoint="*/market/tickers", count=1, retry_after=3)
        with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
            bybit.fetch_ticker("BTC/USDT")
        emulator.faults.set("error", venue="bybit", endpoint="*/market/tickers", count=1, status=503)
        with pytest.raises(ccxt.ExchangeNotAvailable, match="503"):
            bybit.fetch_ticker("BTC/USDT")
        emulator.faults.set("error_after_accept", venue="bybit", endpoint="POST */order/create", count=1)
        with pytest.raises(ccxt.ExchangeNotAvailable, match="502"):
            bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "lost-1"})
        params = {"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "lost-1"}
        assert bybit.private_get_v5_order_realtime(params)["result"]["list"][0]["orderStatus"] == "New"
    finally:
        emulator.faults.clear(venue="bybit")
