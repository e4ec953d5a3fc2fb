"""Unmodified CCXT (sync and async_support) against the emulated OKX (v5)."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from emulator.accounts import DEMO_CREDENTIALS
from tests.emulator.clients import client, point_at

OKX_KEY, OKX_SECRET, OKX_PASSPHRASE = DEMO_CREDENTIALS["okx"]


def test_load_markets_without_options_serves_every_type_with_dated_ones_in_the_future(emulator):
    markets = point_at(ccxt.okx(), emulator).load_markets()
    by_type = {
        kind: [m for m in markets.values() if m["type"] == kind]
        for kind in ("spot", "swap", "future", "option")
    }
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "BTC/USD:BTC", "SUSHI/USDT:USDT"} <= set(markets)
    assert len(by_type["spot"]) == 7 and len(by_type["swap"]) == 9
    now = time.time() * 1000
    futures = by_type["future"]
    assert len(futures) >= 12 and all(m["expiry"] > now for m in futures)
    assert {m["info"]["alias"] for m in futures} >= {"this_week", "next_week", "quarter"}
    options = by_type["option"]
    assert {m["base"] for m in options} == {"BTC", "ETH"} and all(m["expiry"] > now for m in options)
    assert {m["optionType"] for m in options} == {"call", "put"} and all(m["inverse"] for m in options)


def test_load_markets_with_credentials_serves_currencies(emulator, okx_credentials):
    key, secret, passphrase = okx_credentials
    exchange = point_at(ccxt.okx({"apiKey": key, "secret": secret, "password": passphrase}), emulator)
    exchange.load_markets()
    assert exchange.currencies["BTC"]["networks"]["BTC"]["id"] == "BTC-Bitcoin"
    assert "DOGE" in exchange.currencies  # listed but not recorded: synthesised chain


def test_public_market_data_has_live_values(okx):
    ticker = okx.fetch_ticker("BTC/USDT")
    assert 30_000 < ticker["last"] < 150_000 and ticker["baseVolume"] > 0 and ticker["bid"] < ticker["ask"]
    book = okx.fetch_order_book("BTC/USDT", 10)
    assert len(book["bids"]) == 10 and book["bids"][0][0] < book["asks"][0][0]
    assert set(okx.fetch_tickers(["BTC/USDT", "ETH/USDT"])) == {"BTC/USDT", "ETH/USDT"}
    swaps = okx.fetch_tickers(["BTC/USDT:USDT", "ETH/USDT:USDT"])
    assert swaps["BTC/USDT:USDT"]["last"] > 0
    trades = okx.fetch_trades("BTC/USDT", limit=5)
    assert len(trades) == 5 and all(t["price"] > 0 for t in trades)
    assert trades[0]["timestamp"] <= trades[-1]["timestamp"]
    assert abs(okx.fetch_time() - time.time() * 1000) < 5000
    assert okx.fetch_status()["status"] == "ok"


def test_ohlcv_history_paginates_like_okx(okx):
    hourly = okx.fetch_ohlcv("BTC/USDT", "1h", limit=300)
    assert len(hourly) == 300 and all(b[0] - a[0] == 3_600_000 for a, b in itertools.pairwise(hourly))
    since = hourly[10][0]
    page = okx.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=3)
    assert [c[0] for c in page] == [since, since + 3_600_000, since + 7_200_000]
    daily = okx.fetch_ohlcv("ETH/USDT", "1d", limit=5)
    assert len(daily) == 5 and daily[-1][0] % 86_400_000 == 0
    assert len(okx.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=5)) == 5
    assert len(okx.fetch_ohlcv("BTC/USDT", "1M", limit=3)) == 3


def test_perpetual_funding_rate_history_and_option_chain(okx):
    funding = okx.fetch_funding_rate("BTC/USDT:USDT")
    assert abs(funding["fundingRate"]) < 0.01 and funding["fundingTimestamp"] > time.time() * 1000
    assert funding["interval"] == "8h"
    assert len(okx.fetch_funding_rate_history("BTC/USDT:USDT", limit=3)) == 3
    assert "ETH/USDT:USDT" in okx.fetch_funding_rates(["BTC/USDT:USDT", "ETH/USDT:USDT"])
    chain = okx.fetch_option_chain("BTC")
    assert chain and all(s.startswith("BTC/USD:BTC-") for s in chain)
    call = next(o for s, o in chain.items() if s.endswith("-C"))
    assert 0 < call["lastPrice"] < 1  # premiums of inverse options are in BTC
    symbol = next(iter(chain))
    greeks = okx.fetch_greeks(symbol)
    assert -1 <= greeks["delta"] <= 1 and greeks["markImpliedVolatility"] == 0.6


def test_balance_starts_with_the_default_amounts(okx):
    balance = okx.fetch_balance()
    assert (
        balance["BTC"]["free"] == 10 and balance["USDT"]["total"] == 1_000_000 and balance["ETH"]["used"] == 0
    )


def test_account_config_reports_read_and_trade_permissions(okx):
    config = okx.private_get_account_config()["data"][0]
    assert config["perm"] == "read_only,trade" and config["posMode"] == "net_mode"
    assert okx.fetch_accounts()[0]["id"] == config["uid"]


def test_limit_order_can_be_created_fetched_listed_and_cancelled(okx):
    order = okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    fetched = okx.fetch_order(order["id"], "BTC/USDT")
    assert fetched["status"] == "open" and fetched["price"] == 20_000 and fetched["amount"] == 0.01
    assert [o["id"] for o in okx.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert okx.fetch_balance()["USDT"]["used"] == 200
    assert okx.cancel_order(order["id"], "BTC/USDT")["id"] == order["id"]
    assert okx.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"
    assert okx.fetch_open_orders("BTC/USDT") == []
    assert okx.fetch_balance()["USDT"]["used"] == 0


def test_order_can_be_fetched_by_client_order_id(okx):
    order = okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "myorder42"})
    assert order["clientOrderId"] == "myorder42"
    found = okx.fetch_order(None, "BTC/USDT", {"clientOrderId": "myorder42"})
    assert found["id"] == order["id"] and found["clientOrderId"] == "myorder42"
    okx.cancel_order(None, "BTC/USDT", {"clientOrderId": "myorder42"})
    assert okx.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"


def test_market_order_fills_at_once_and_appears_in_closed_orders_and_my_trades(okx):
    order = okx.create_order("ETH/USDT", "market", "buy", 2)
    fetched = okx.fetch_order(order["id"], "ETH/USDT")
    assert fetched["status"] == "closed" and fetched["filled"] == 2 and fetched["average"] > 0
    assert [o["id"] for o in okx.fetch_closed_orders("ETH/USDT")] == [order["id"]]
    trades = okx.fetch_my_trades("ETH/USDT")
    assert sum(t["amount"] for t in trades) == pytest.approx(2) and {t["order"] for t in trades} == {
        order["id"]
    }
    assert okx.fetch_balance()["ETH"]["free"] == pytest.approx(100 + 2 * (1 - 0.0015))


def test_market_buy_for_a_quote_amount(okx):
    order = okx.create_order("LTC/USDT", "market", "buy", 100, None, {"tgtCcy": "quote_ccy"})
    fetched = okx.fetch_order(order["id"], "LTC/USDT")
    assert fetched["status"] == "closed" and fetched["cost"] == pytest.approx(100, rel=0.01)


def test_limit_order_rests_then_fills_when_the_price_crosses_it(okx, held_okx):
    market = held_okx("ETH/USDT", "3000")
    order = okx.create_order("ETH/USDT", "limit", "buy", 0.5, 2900)
    assert okx.fetch_order(order["id"], "ETH/USDT")["status"] == "open"
    market.set_price("2880", hold=True)
    filled = okx.fetch_order(order["id"], "ETH/USDT")
    assert filled["status"] == "closed" and filled["average"] == 2900
    trade = okx.fetch_my_trades("ETH/USDT")[-1]
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 2900


def test_limit_order_crossing_thin_liquidity_fills_partially_and_rests(okx, held_okx):
    market = held_okx("ETH/USDT", "3000")
    ask_price, ask_qty = market.best("sell")
    order = okx.create_order("ETH/USDT", "limit", "buy", float(ask_qty * 2), float(ask_price))
    fetched = okx.fetch_order(order["id"], "ETH/USDT")
    assert fetched["status"] == "open" and fetched["info"]["state"] == "partially_filled"
    assert Decimal(str(fetched["filled"])) == ask_qty
    okx.cancel_order(order["id"], "ETH/USDT")


def test_duplicate_client_order_id_of_an_open_order_is_rejected(okx):
    okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "dup1"})
    with pytest.raises(ccxt.InvalidOrder, match="51016"):
        okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "dup1"})


def test_wrong_key_secret_or_passphrase_raises_authentication_error(emulator):
    for key, secret, passphrase, code in (
        ("no-such-key", "x", "y", "50111"),
        (OKX_KEY, "wrong-secret", OKX_PASSPHRASE, "50113"),
        (OKX_KEY, OKX_SECRET, "wrong-passphrase", "50105"),
    ):
        exchange = client(emulator, "okx", key, secret, passphrase)
        with pytest.raises(ccxt.AuthenticationError, match=code):
            exchange.fetch_balance()


def test_stale_timestamp_raises_invalid_nonce(okx):
    okx.options["timeDifference"] = 60_000  # the client clock runs a minute behind
    with pytest.raises(ccxt.InvalidNonce, match="50102"):
        okx.fetch_balance()


def test_insufficient_funds_unknown_orders_and_filters_raise_the_ccxt_errors(okx):
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):
        okx.create_order("BTC/USDT", "limit", "buy", 100, 20_000)
    with pytest.raises(ccxt.InsufficientFunds):
        okx.create_order("BTC/USDT", "market", "sell", 11)
    with pytest.raises(ccxt.OrderNotFound, match="51603"):
        okx.fetch_order("123", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound, match="51400"):
        okx.cancel_order("123", "BTC/USDT")
    raw = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "20000"}
    with pytest.raises(ccxt.InvalidOrder, match="51121"):
        okx.private_post_trade_order({**raw, "sz": "0.000000015"})
    with pytest.raises(ccxt.InvalidOrder, match="51020"):
        okx.private_post_trade_order({**raw, "sz": "0.000001"})
    with pytest.raises(ccxt.BadSymbol):
        okx.private_post_trade_order({**raw, "instId": "NOPE-USDT", "sz": "1"})


def test_counters_count_requests_per_endpoint_and_orders_per_key(emulator, okx, okx_credentials):
    endpoint = ("okx", "GET www.okx.com/api/v5/market/books")
    before = emulator.stats.requests[endpoint]
    okx.fetch_order_book("BTC/USDT")
    okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    assert emulator.stats.requests[endpoint] == before + 1
    assert emulator.stats.orders_accepted_by_key()[okx_credentials[0]] == 1
    assert emulator.stats.requests_by_key[okx_credentials[0]] == 1


async def test_async_support_client_trades_like_the_sync_one(async_clients, okx_credentials):
    exchange = async_clients("okx", *okx_credentials, module=ccxt_async)
    assert (await exchange.fetch_ticker("ETH/USDT"))["last"] > 0
    assert len(await exchange.fetch_ohlcv("ETH/USDT", "5m", limit=10)) == 10
    order = await exchange.create_order("ETH/USDT", "limit", "sell", 1, 100_000)
    assert (await exchange.fetch_balance())["ETH"]["used"] == 1
    await exchange.cancel_order(order["id"], "ETH/USDT")
    assert (await exchange.fetch_order(order["id"], "ETH/USDT"))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("42", "ETH/USDT")


def test_injected_faults_answer_with_okx_bodies_so_ccxt_raises_its_own_errors(emulator, okx):
    try:
        emulator.faults.set("rate_limit", venue="okx", endpoint="*/market/ticker", count=1, retry_after=3)
        with pytest.raises(ccxt.RateLimitExceeded, match="50011"):
            okx.fetch_ticker("BTC/USDT")
        emulator.faults.set("error", venue="okx", endpoint="*/market/ticker", count=1, status=503)
        with pytest.raises(ccxt.ExchangeNotAvailable, match="50001"):
            okx.fetch_ticker("BTC/USDT")
        emulator.faults.set("error_after_accept", venue="okx", endpoint="POST */trade/batch-orders", count=1)
        with pytest.raises(ccxt.RequestTimeout, match="50004"):
            okx.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000, {"clientOrderId": "lost1"})
        assert okx.fetch_order(None, "BTC/USDT", {"clientOrderId": "lost1"})["status"] == "open"
    finally:
        emulator.faults.clear(venue="okx")
