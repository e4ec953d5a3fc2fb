"""Unmodified CCXT against the emulated OKX derivatives: leverage, margin mode, position mode and its posSide
rules, positions of linear/inverse swaps and delivery futures, reduce-only, margin adjustment, funding, the
option chain, and the private ``orders`` / ``positions`` / ``account`` streams."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import ccxt
import pytest

from tests.emulator.clients import funding_every, until, wait_for

PERP = "BTC/USDT:USDT"  # 0.01 BTC a contract, lots of 0.1
INVERSE = "BTC/USD:BTC"  # 100 USD a contract, settled in BTC


def only_position(exchange: Any, symbol: str) -> dict:
    found = exchange.fetch_positions([symbol])
    assert len(found) == 1, found
    return found[0]


def sent_code(error: ccxt.BaseError) -> str:
    """The sCode (or code) OKX answered, from CCXT's message ``okx {json}``."""
    import orjson

    body = orjson.loads(str(error).split(" ", 1)[1])
    items = body.get("data") or []
    return items[0]["sCode"] if items and "sCode" in items[0] else body["code"]


def test_leverage_and_margin_mode_are_set_together_and_read_back(okx):
    assert okx.set_leverage(7, PERP)["data"] == [
        {"instId": "BTC-USDT-SWAP", "lever": "7", "mgnMode": "cross", "posSide": "net"}
    ]
    leverage = okx.fetch_leverage(PERP)
    assert (leverage["marginMode"], leverage["longLeverage"], leverage["shortLeverage"]) == ("cross", 7, 7)
    # CCXT's setMarginMode posts set-leverage with mgnMode and the lever it requires.
    with pytest.raises(ccxt.BadRequest):
        okx.set_margin_mode("isolated", PERP)
    assert okx.set_margin_mode("isolated", PERP, {"lever": 5})["data"][0]["mgnMode"] == "isolated"
    leverage = okx.fetch_leverage(PERP, {"marginMode": "isolated"})
    assert (leverage["marginMode"], leverage["longLeverage"]) == ("isolated", 5)
    with pytest.raises(ccxt.ExchangeError) as refused:  # BTC-USDT-SWAP allows 100x
        okx.set_leverage(110, PERP)
    assert sent_code(refused.value) == "59102"
    with pytest.raises(ccxt.BadRequest):  # spot has no contract leverage here
        okx.set_leverage(3, "BTC/USDT")


def test_a_linear_swap_position_shows_pnl_and_margin_and_closes_reduce_only(okx, held_okx, emulator):
    market = held_okx(PERP, "60000")
    okx.set_leverage(10, PERP)
    okx.create_order(PERP, "market", "buy", 2)
    held = only_position(okx, PERP)
    assert (held["side"], held["contracts"], held["marginMode"], held["leverage"]) == ("long", 2, "cross", 10)
    assert held["hedged"] is False and held["info"]["posSide"] == "net" and held["info"]["pos"] == "2"
    assert 59_500 < held["entryPrice"] < 60_500
    assert held["liquidationPrice"] is None  # a million USDT of cross collateral: out of reach
    assert held["initialMargin"] == pytest.approx(held["notional"] / 10, rel=1e-6)
    market.set_price("61000", hold=True)
    moved = only_position(okx, PERP)
    expected = 2 * 0.01 * (moved["markPrice"] - moved["entryPrice"])
    assert moved["unrealizedPnl"] == pytest.approx(expected, abs=0.01) and moved["unrealizedPnl"] > 15
    balance = okx.fetch_balance()
    usdt = next(d for d in balance["info"]["data"][0]["details"] if d["ccy"] == "USDT")
    assert float(usdt["upl"]) == pytest.approx(moved["unrealizedPnl"], abs=0.01)
    assert float(usdt["frozenBal"]) == pytest.approx(held["initialMargin"], rel=1e-3)
    assert balance["USDT"]["used"] > 0 and float(balance["info"]["data"][0]["upl"]) > 15

    with pytest.raises(ccxt.ExchangeError) as refused:  # nothing to reduce on the short side
        okx.create_order(PERP, "market", "buy", 1, params={"reduceOnly": True})
    assert sent_code(refused.value) == "51169"
    closed = okx.create_order(PERP, "market", "sell", 2, params={"reduceOnly": True})
    assert okx.fetch_order(closed["id"], PERP)["reduceOnly"] is True
    assert okx.fetch_positions([PERP]) == []
    fills = okx.fetch_my_trades(PERP)
    assert float(fills[-1]["info"]["fillPnl"]) > 15


def test_isolated_inverse_position_settles_in_coin_and_takes_margin_adjustments(okx, held_okx):
    held_okx(INVERSE, "60000")
    okx.set_margin_mode("isolated", INVERSE, {"lever": 10})
    before = okx.fetch_balance()["BTC"]
    okx.create_order(INVERSE, "market", "sell", 30, params={"marginMode": "isolated"})
    held = only_position(okx, INVERSE)
    assert (held["side"], held["contracts"], held["marginMode"]) == ("short", 30, "isolated")
    assert (
        held["info"]["ccy"] == "BTC"
        and held["info"]["pos"] == "-30"
        and held["info"]["notionalUsd"] == "3000"
    )
    assert held["positionMargin"] == pytest.approx(3000 / 60000 / 10, rel=0.02)  # BTC, not USD
    assert okx.fetch_balance()["BTC"]["used"] == pytest.approx(held["positionMargin"], rel=1e-3)
    assert okx.fetch_balance()["BTC"]["total"] < before["total"]  # the taker fee, in BTC

    # CCXT 4.5.90's addMargin/reduceMargin send the request and then fail parsing any answer (TypeError in
    # parse_margin_modification: ``type['type']`` on a string), so the implicit method is used.
    adjust = okx.private_post_account_position_margin_balance
    added = adjust({"instId": "BTC-USD-SWAP", "posSide": "net", "type": "add", "amt": "0.001"})
    assert added["data"][0]["ccy"] == "BTC" and added["data"][0]["type"] == "add"
    assert only_position(okx, INVERSE)["positionMargin"] == pytest.approx(held["positionMargin"] + 0.001)
    adjust({"instId": "BTC-USD-SWAP", "posSide": "net", "type": "reduce", "amt": "0.001"})
    with pytest.raises(ccxt.ExchangeError) as refused:  # below the initial margin
        adjust({"instId": "BTC-USD-SWAP", "posSide": "net", "type": "reduce", "amt": "0.004"})
    assert sent_code(refused.value) == "59301"
    # OKX would open a second (cross) position; the emulator keeps one margin mode per instrument.
    with pytest.raises(ccxt.BadRequest, match="tdMode"):
        okx.create_order(INVERSE, "market", "sell", 1)
    okx.close_position(INVERSE, None, {"marginMode": "isolated"})
    assert okx.fetch_positions([INVERSE]) == []
    with pytest.raises(ccxt.ExchangeError) as refused:
        adjust({"instId": "BTC-USD-SWAP", "posSide": "net", "type": "add", "amt": "0.001"})
    assert sent_code(refused.value) == "59300"


def test_a_delivery_future_position_is_listed_under_futures(okx, okx_markets):
    future = next(
        m["symbol"] for m in okx_markets.values() if m["future"] and m["linear"] and m["base"] == "ETH"
    )
    okx.create_order(future, "market", "sell", 1)
    held = okx.fetch_positions(None, {"instType": "FUTURES"})
    assert [(p["symbol"], p["side"], p["contracts"]) for p in held] == [(future, "short", 1)]
    assert held[0]["info"]["instType"] == "FUTURES" and okx.fetch_positions(None, {"instType": "SWAP"}) == []
    assert okx.fetch_position(future)["contracts"] == 1


def test_position_mode_switches_posside_rules_and_is_refused_with_a_position_open(okx):
    assert okx.fetch_position_mode()["hedged"] is False
    with pytest.raises(ccxt.BadRequest, match="posSide"):  # net mode takes "net" or nothing
        okx.create_order(PERP, "market", "buy", 1, params={"posSide": "long"})
    okx.create_order(PERP, "market", "buy", 1, params={"posSide": "net"})
    with pytest.raises(ccxt.ExchangeError) as refused:
        okx.set_position_mode(True)
    assert sent_code(refused.value) == "59000"
    okx.create_order(PERP, "market", "sell", 1, params={"reduceOnly": True})

    assert okx.set_position_mode(True)["data"] == [{"posMode": "long_short_mode"}]
    assert okx.set_position_mode(True)["code"] == "0"  # OKX answers success when nothing changes
    assert okx.fetch_position_mode()["hedged"] is True
    for pos_side in (None, "net"):  # long/short mode needs long or short
        with pytest.raises(ccxt.BadRequest, match="posSide"):
            okx.create_order(PERP, "market", "buy", 1, params={"posSide": pos_side} if pos_side else {})
    okx.create_order(PERP, "market", "buy", 2, params={"posSide": "long"})
    okx.create_order(PERP, "market", "sell", 1, params={"posSide": "short"})
    legs = {p["side"]: p for p in okx.fetch_positions([PERP])}
    assert {s: (p["contracts"], p["hedged"], p["info"]["pos"]) for s, p in legs.items()} == {
        "long": (2, True, "2"),
        "short": (1, True, "1"),
    }
    with pytest.raises(ccxt.ExchangeError) as refused:  # closing more short than held
        okx.create_order(PERP, "market", "buy", 3, params={"posSide": "short"})
    assert sent_code(refused.value) == "51169"
    okx.create_order(PERP, "market", "sell", 2, params={"posSide": "long"})  # closes the long leg
    okx.create_order(PERP, "limit", "buy", 1, 1000, params={"posSide": "short"})  # a resting close order
    assert [p["side"] for p in okx.fetch_positions([PERP])] == ["short"]
    for order in okx.fetch_open_orders(PERP):
        okx.cancel_order(order["id"], PERP)
    okx.close_position(PERP, "sell")
    assert okx.fetch_positions() == []
    okx.create_order(PERP, "limit", "buy", 1, 1000, params={"posSide": "long"})
    with pytest.raises(ccxt.ExchangeError) as refused:  # an open order also blocks the switch
        okx.set_position_mode(False)
    assert sent_code(refused.value) == "59000"


def test_funding_is_applied_to_an_open_perpetual_position(okx, emulator):
    okx.create_order(PERP, "market", "buy", 5)
    with funding_every(emulator, 500):
        history = wait_for(lambda: okx.fetch_funding_history(PERP), bool)
    payment = history[0]
    assert payment["symbol"] == PERP and payment["code"] == "USDT" and payment["info"]["type"] == "8"
    held = only_position(okx, PERP)
    paid = sum(h["amount"] for h in okx.fetch_funding_history(PERP))
    assert float(held["info"]["fundingFee"]) == pytest.approx(paid)
    assert okx.fetch_ledger("USDT", None, None, {"type": "swap"})[0]["info"]["type"] == "8"


def test_the_option_chain_lists_every_option_of_an_underlying(okx, okx_markets):
    chain = okx.fetch_option_chain("BTC")
    listed = {m["symbol"] for m in okx_markets.values() if m["option"] and m["base"] == "BTC"}
    assert set(chain) == listed and len(listed) >= 20
    quote = next(iter(chain.values()))
    assert quote["bidPrice"] is not None and quote["askPrice"] > quote["bidPrice"]
    with pytest.raises(ccxt.ExchangeError) as refused:  # options trading is not emulated
        okx.create_order(next(iter(sorted(listed))), "limit", "buy", 1, quote["bidPrice"])
    assert sent_code(refused.value) == "51010"


@pytest.fixture
async def pro(async_clients, okx_credentials):
    return async_clients("okx", *okx_credentials)


async def test_private_streams_push_the_order_its_fill_the_position_and_funding(pro, emulator):
    market = emulator.market("okx", PERP)
    market.set_price("60000", hold=True)
    try:
        positions = await pro.watch_positions()  # the initial snapshot: no position yet
        assert positions == []
        balance = await pro.watch_balance()
        orders_seen = asyncio.ensure_future(pro.watch_orders(PERP))
        await asyncio.sleep(0.3)
        placed = await pro.create_order(PERP, "limit", "buy", 3, 59_000)
        async with asyncio.timeout(10):
            orders = await orders_seen
        assert orders[-1]["id"] == placed["id"] and orders[-1]["status"] == "open"
        assert orders[-1]["info"]["instType"] == "SWAP" and "emitUs" in orders[-1]["info"]

        # Watch before the fill: a push nobody awaits only updates CCXT's cache.
        opening = asyncio.ensure_future(
            until(pro.watch_positions, lambda ps: any(p["contracts"] for p in ps))
        )
        margin_taken = asyncio.ensure_future(
            until(pro.watch_balance, lambda b: b["USDT"]["used"] > balance["USDT"]["used"])
        )
        await asyncio.sleep(0.2)
        market.set_price("58900", hold=True)  # the book crosses the resting buy: it fills
        filled = await until(lambda: pro.watch_orders(PERP), lambda o: o[-1]["status"] == "closed")
        assert filled[-1]["id"] == placed["id"] and filled[-1]["filled"] == 3
        opened = await opening
        position = next(p for p in opened if p["contracts"])
        assert (position["symbol"], position["side"], position["contracts"]) == (PERP, "long", 3)
        assert position["entryPrice"] == 59_000 and "emitUs" in position["info"]
        margin = await margin_taken  # the position's initial margin is locked in USDT
        assert margin["USDT"]["used"] > 0

        await asyncio.to_thread(emulator.call, functools.partial(emulator.engine.apply_funding, None, "okx"))
        funded = await until(
            pro.watch_positions, lambda ps: any(p["info"]["fundingFee"] != "0" for p in ps if p["contracts"])
        )
        assert next(p for p in funded if p["contracts"])["symbol"] == PERP

        await pro.create_order(PERP, "market", "sell", 3, params={"reduceOnly": True})
        closed = await until(pro.watch_positions, lambda ps: any(p["contracts"] == 0 for p in ps))
        assert closed[0]["symbol"] == PERP
    finally:
        market.release()
