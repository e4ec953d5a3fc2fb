"""Unmodified CCXT (sync and ccxt.pro) against the emulated Bybit derivatives (unified trading account):
leverage, margin mode, position mode, positions on linear and inverse contracts, reduce-only, trading-stop
TP/SL, isolated margin, funding, and the private order / position / wallet pushes."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from tests.emulator.clients import client, funding_every, wait_for

PERP = "BTC/USDT:USDT"
INVERSE = "BTC/USD:BTC"


def position(exchange: ccxt.bybit, symbol: str = PERP) -> dict[str, Any]:
    found = exchange.fetch_positions([symbol])
    assert len(found) == 1, found
    return found[0]


def raw_position(exchange: ccxt.bybit, symbol: str = PERP) -> dict[str, Any]:
    market = exchange.market(symbol)
    category = "linear" if market["linear"] else "inverse"
    answer = exchange.private_get_v5_position_list({"category": category, "symbol": market["id"]})
    return answer["result"]["list"][0]


def trading_stop(exchange: ccxt.bybit, symbol: str = PERP, **fields: Any) -> dict[str, Any]:
    market = exchange.market(symbol)
    request = {"category": "linear" if market["linear"] else "inverse", "symbol": market["id"]}
    request |= {"tpslMode": "Full", "positionIdx": 0} | {k: str(v) for k, v in fields.items()}
    return exchange.private_post_v5_position_trading_stop(request)


def add_margin(exchange: ccxt.bybit, margin: str, symbol: str = PERP) -> dict[str, Any]:
    market = exchange.market(symbol)
    request = {"category": "linear", "symbol": market["id"], "margin": margin, "positionIdx": 0}
    return exchange.private_post_v5_position_add_margin(request)


def test_leverage_and_the_not_modified_answer(bybit):
    assert bybit.set_leverage(7, PERP)["retCode"] == 0
    assert raw_position(bybit)["leverage"] == "7" and raw_position(bybit)["side"] == ""
    # Bybit answers 110043 "Set leverage not modified"; CCXT 4.5.90 maps it to BadRequest (not NoChange).
    with pytest.raises(ccxt.BadRequest, match="110043"):
        bybit.set_leverage(7, PERP)
    with pytest.raises(ccxt.BadRequest, match="leverage invalid"):  # above leverageFilter.maxLeverage 100
        bybit.set_leverage(150, PERP)
    assert bybit.set_leverage(3, INVERSE)["retCode"] == 0
    assert bybit.fetch_leverage(INVERSE)["longLeverage"] == 3


def test_margin_mode_is_account_wide_on_a_unified_account(bybit):
    # CCXT sees a unified account (query-api uta=1) and sends /v5/account/set-margin-mode.
    assert bybit.set_margin_mode("isolated", PERP)["result"] == {"reasons": []}
    assert bybit.private_get_v5_account_info()["result"]["marginMode"] == "ISOLATED_MARGIN"
    assert raw_position(bybit, INVERSE)["tradeMode"] == 1
    assert bybit.set_margin_mode("isolated", PERP)["retCode"] == 0  # already so: success, as on Bybit
    bybit.create_order(PERP, "market", "buy", 0.001)
    with pytest.raises(ccxt.ExchangeError, match="3400045") as refused:  # not with an open position
        bybit.set_margin_mode("cross", PERP)
    assert "3400101" in str(refused.value)
    bybit.create_order(PERP, "market", "sell", 0.001, params={"reduceOnly": True})
    assert bybit.set_margin_mode("cross", PERP)["retCode"] == 0
    assert bybit.private_get_v5_account_info()["result"]["marginMode"] == "REGULAR_MARGIN"
    with pytest.raises(ccxt.PermissionDenied):  # per-symbol switching is for classic accounts only
        bybit.private_post_v5_position_switch_isolated(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "tradeMode": 1,
                "buyLeverage": "5",
                "sellLeverage": "5",
            }
        )


def test_a_linear_position_shows_entry_and_pnl_and_closes_reduce_only(bybit, held_bybit, emulator):
    held_bybit(PERP, "60000")
    bybit.set_leverage(10, PERP)
    opened = bybit.create_order(PERP, "market", "buy", 0.05, params={"clientOrderId": "lin-open"})
    assert bybit.fetch_closed_order(opened["id"], PERP)["status"] == "closed"
    held = position(bybit)
    assert held["side"] == "long" and held["contracts"] == 0.05 and held["leverage"] == 10
    assert 59_000 < held["entryPrice"] < 61_000 and held["initialMargin"] == pytest.approx(300, rel=0.02)
    emulator.market("bybit", PERP).set_price("61000", hold=True)
    moved = position(bybit)
    expected = 0.05 * (moved["markPrice"] - moved["entryPrice"])
    assert moved["unrealizedPnl"] == pytest.approx(expected, abs=0.01) and moved["unrealizedPnl"] > 40
    balance = bybit.fetch_balance()
    usdt = next(c for c in balance["info"]["result"]["list"][0]["coin"] if c["coin"] == "USDT")
    assert float(usdt["totalPositionIM"]) == pytest.approx(held["initialMargin"], rel=1e-6)
    assert float(usdt["unrealisedPnl"]) == pytest.approx(moved["unrealizedPnl"], abs=0.01)
    assert balance["USDT"]["used"] == pytest.approx(held["initialMargin"], rel=1e-6)

    with pytest.raises(ccxt.InvalidOrder, match="110017"):  # more than the position
        bybit.create_order(PERP, "market", "sell", 0.1, params={"reduceOnly": True})
    closed = bybit.create_order(PERP, "market", "sell", 0.05, params={"reduceOnly": True})
    assert bybit.fetch_closed_order(closed["id"], PERP)["reduceOnly"] is True
    assert position(bybit)["contracts"] == 0 and bybit.fetch_positions() == []
    trades = bybit.fetch_my_trades(PERP)
    assert {t["order"] for t in trades} == {opened["id"], closed["id"]}
    assert float(next(t for t in trades if t["order"] == closed["id"])["info"]["closedSize"]) == 0.05
    assert float(position(bybit)["info"]["curRealisedPnl"]) > 40


def test_an_inverse_position_settles_in_the_coin(bybit, held_bybit, emulator):
    held_bybit(INVERSE, "60000")
    btc_before = bybit.fetch_balance()["BTC"]["total"]
    bybit.create_order(INVERSE, "market", "sell", 600)  # 600 contracts of 1 USD
    held = position(bybit, INVERSE)
    assert held["side"] == "short" and held["contracts"] == 600 and held["contractSize"] == 1
    assert float(held["info"]["positionValue"]) == pytest.approx(0.01, rel=0.01)  # 600 USD in BTC
    emulator.market("bybit", INVERSE).set_price("57000", hold=True)
    assert position(bybit, INVERSE)["unrealizedPnl"] == pytest.approx(600 / 57000 - 600 / 60000, rel=0.05)
    assert bybit.fetch_positions(None, {"subType": "inverse"})[0]["symbol"] == INVERSE
    bybit.create_order(INVERSE, "market", "buy", 600, params={"reduceOnly": True})
    assert bybit.fetch_positions(None, {"subType": "inverse"}) == []
    assert bybit.fetch_balance()["BTC"]["total"] - btc_before == pytest.approx(0.00053, rel=0.1)


def test_trading_stop_take_profit_closes_the_position_when_the_price_crosses(bybit, held_bybit, emulator):
    held_bybit(PERP, "60000")
    bybit.create_order(PERP, "market", "buy", 0.01)
    # CCXT sends takeProfitPrice + stopLossPrice together to /v5/position/trading-stop (tpslMode Full)
    bybit.create_order(PERP, "market", "sell", 0, None, {"takeProfitPrice": 61000, "stopLossPrice": 55000})
    held = position(bybit)
    assert held["takeProfitPrice"] == 61000 and held["stopLossPrice"] == 55000
    with pytest.raises(ccxt.BadRequest, match="should be higher"):  # a TP below the price of a long
        trading_stop(bybit, takeProfit=59000)
    # LastPrice is Bybit's default trigger; MarkPrice is deterministic with a held price
    trading_stop(bybit, takeProfit=61000, tpTriggerBy="MarkPrice")
    emulator.market("bybit", PERP).set_price("61500", hold=True)
    assert position(bybit)["contracts"] == 0
    closing = bybit.fetch_closed_orders(PERP)[-1]
    assert closing["reduceOnly"] is True and closing["info"]["stopOrderType"] == "TakeProfit"
    assert closing["info"]["createType"] == "CreateByTakeProfit" and closing["side"] == "sell"
    with pytest.raises(ccxt.BadRequest, match="zero position"):
        trading_stop(bybit, takeProfit=70000)


def test_trading_stop_stop_loss_closes_a_short(bybit, held_bybit, emulator):
    held_bybit(PERP, "60000")
    bybit.create_order(PERP, "market", "sell", 0.02)
    trading_stop(bybit, stopLoss=60500, slTriggerBy="MarkPrice")
    assert position(bybit)["stopLossPrice"] == 60500
    emulator.market("bybit", PERP).set_price("60200", hold=True)
    assert position(bybit)["contracts"] == 0.02  # not crossed yet
    emulator.market("bybit", PERP).set_price("60600", hold=True)
    assert position(bybit)["contracts"] == 0
    closing = bybit.fetch_closed_orders(PERP)[-1]
    assert closing["info"]["stopOrderType"] == "StopLoss" and closing["side"] == "buy"


def test_isolated_margin_can_be_added_and_removed_but_not_on_cross(bybit, held_bybit):
    held_bybit(PERP, "60000")
    bybit.create_order(PERP, "market", "sell", 0.02)
    with pytest.raises(ccxt.BadRequest, match="110015"):  # cross margin
        add_margin(bybit, "10")
    bybit.create_order(PERP, "market", "buy", 0.02, params={"reduceOnly": True})
    with pytest.raises(ccxt.InvalidOrder, match="110033"):  # no position
        add_margin(bybit, "10")

    bybit.set_margin_mode("isolated", PERP)
    bybit.set_leverage(5, PERP)
    bybit.create_order(PERP, "market", "sell", 0.02)
    before = float(raw_position(bybit)["positionIM"])
    assert before == pytest.approx(240, rel=0.02)
    answer = add_margin(bybit, "100")["result"]
    assert float(answer["positionIM"]) == pytest.approx(before + 100)
    add_margin(bybit, "-50")
    assert position(bybit)["initialMargin"] == pytest.approx(before + 50)
    assert float(raw_position(bybit)["liqPrice"]) > 60000  # a short's liquidation is above the entry
    with pytest.raises(ccxt.InvalidOrder, match="110011"):  # below the initial margin
        add_margin(bybit, "-1000")
    with pytest.raises(ccxt.InsufficientFunds, match="110014"):
        add_margin(bybit, "99000000")
    bybit.create_order(PERP, "market", "buy", 0.02, params={"reduceOnly": True})
    bybit.set_margin_mode("cross", PERP)


def usdt_wallet(exchange: ccxt.bybit) -> float:
    """The USDT coin's wallet balance. Not ``totalWalletBalance``: that is every coin of the account (10 BTC,
    100 ETH, ...) valued in USD at live prices, so it moves with the market between two reads."""
    coins = exchange.fetch_balance()["info"]["result"]["list"][0]["coin"]
    return float(next(c for c in coins if c["coin"] == "USDT")["walletBalance"])


def test_funding_is_applied_listed_and_moves_the_wallet(bybit, held_bybit, emulator):
    held_bybit(PERP, "60000")
    # Only apply_funding pays until the compressed part: no 8-hourly payment of the engine's own funding
    # clock can slip in between the reads below.
    with funding_every(emulator, 0):
        opened = bybit.create_order(PERP, "market", "buy", 0.1)
        # A market order may take several book levels: one fill, and one fee, per level.
        fills = [t for t in bybit.fetch_my_trades(PERP) if t["order"] == opened["id"]]
        assert sum(t["amount"] for t in fills) == pytest.approx(0.1)
        fee = sum(t["fee"]["cost"] for t in fills)
        assert fee > 0
        assert float(position(bybit)["info"]["cumRealisedPnl"]) == pytest.approx(-fee, abs=1e-6)
        wallet_before = usdt_wallet(bybit)
        assert emulator.apply_funding("bybit") >= 1  # every open Bybit position, not only this key's
        history = bybit.fetch_funding_history(PERP)
        assert len(history) == 1 and history[0]["code"] == "USDT"
        rate = float(history[0]["info"]["feeRate"])
        mark = position(bybit)["markPrice"]
        paid = float(history[0]["info"]["execFee"])
        # execFee > 0 is paid (longs pay a positive rate); CCXT reports it as the amount
        assert paid == pytest.approx(0.1 * mark * rate, rel=1e-6)
        assert history[0]["info"]["side"] == "Buy" and float(history[0]["info"]["execQty"]) == 0.1
        ledger = bybit.fetch_ledger("USDT")
        assert {e["info"]["type"] for e in ledger} == {"SETTLEMENT", "TRADE"}
        settlements = [e for e in ledger if e["info"]["type"] == "SETTLEMENT"]
        assert len(settlements) == 1 and settlements[0]["amount"] == pytest.approx(abs(paid))
        # the wallet is debited by the funding fee, once; cumRealisedPnl counts the fees and the funding
        assert usdt_wallet(bybit) == pytest.approx(wallet_before - paid, abs=1e-6)
        assert float(position(bybit)["info"]["cumRealisedPnl"]) == pytest.approx(-fee - paid, abs=1e-6)

        with funding_every(emulator, 400):  # compressed funding for tests
            wait_for(lambda: len(bybit.fetch_funding_history(PERP)), lambda n: n >= 3)
        history = bybit.fetch_funding_history(PERP)  # settled: no automatic funding any more
        paid = sum(float(h["info"]["execFee"]) for h in history)
        assert usdt_wallet(bybit) == pytest.approx(wallet_before - paid, abs=1e-6)
        assert float(position(bybit)["info"]["cumRealisedPnl"]) == pytest.approx(-fee - paid, abs=1e-6)
        bybit.create_order(PERP, "market", "sell", 0.1, params={"reduceOnly": True})


def test_hedge_mode_keeps_two_legs(bybit, held_bybit):
    held_bybit(PERP, "60000")
    assert bybit.set_position_mode(True, PERP)["retCode"] == 0
    with pytest.raises(ccxt.NoChange, match="110025"):
        bybit.set_position_mode(True, PERP)
    with pytest.raises(ccxt.BadRequest, match="position idx not match"):  # positionIdx 0 in hedge mode
        bybit.create_order(PERP, "market", "buy", 0.01)
    bybit.create_order(PERP, "market", "buy", 0.01, params={"hedged": True})  # positionIdx 1
    bybit.create_order(PERP, "market", "sell", 0.02, params={"hedged": True})  # positionIdx 2
    legs = {p["side"]: p["contracts"] for p in bybit.fetch_positions([PERP])}
    assert legs == {"long": 0.01, "short": 0.02}
    with pytest.raises(ccxt.BadRequest, match="110024"):
        bybit.set_position_mode(False, PERP)
    bybit.create_order(PERP, "market", "sell", 0.01, params={"hedged": True, "reduceOnly": True})
    bybit.create_order(PERP, "market", "buy", 0.02, params={"hedged": True, "reduceOnly": True})
    assert bybit.fetch_positions() == []
    bybit.set_position_mode(False, PERP)


def test_linear_orders_rest_are_listed_and_cancelled(bybit, emulator):
    mark = float(emulator.market("bybit", PERP).price())
    low = float(bybit.price_to_precision(PERP, mark * 0.8))
    placed = bybit.create_order(PERP, "limit", "buy", 0.01, low, {"clientOrderId": "lin-rest-1"})
    assert [o["id"] for o in bybit.fetch_open_orders(PERP)] == [placed["id"]]
    found = bybit.fetch_open_order(placed["id"], PERP)
    assert found["clientOrderId"] == "lin-rest-1" and found["status"] == "open" and found["price"] == low
    balance = bybit.fetch_balance()["info"]["result"]["list"][0]["coin"]
    assert float(next(c for c in balance if c["coin"] == "USDT")["totalOrderIM"]) > 0
    bybit.cancel_order(placed["id"], PERP)
    assert bybit.fetch_canceled_and_closed_orders(PERP)[-1]["status"] == "canceled"
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        bybit.create_order(PERP, "limit", "buy", 500, low)


async def test_private_streams_push_the_order_its_fill_the_position_and_the_wallet(
    emulator, async_clients, bybit_credentials, held_bybit
):
    held_bybit(PERP, "60000")
    key, secret = bybit_credentials
    pro = async_clients("bybit", key, secret)
    assert await pro.watch_positions() == []  # the REST snapshot (linear and inverse)
    orders = asyncio.ensure_future(pro.watch_orders(PERP))
    await asyncio.sleep(0.3)
    placed = await pro.create_order(PERP, "limit", "buy", 0.01, 59_000, {"clientOrderId": "ws-lin-1"})
    async with asyncio.timeout(10):
        pushed = (await orders)[-1]
    assert pushed["id"] == placed["id"] and pushed["status"] == "open"
    assert pushed["clientOrderId"] == "ws-lin-1"

    positions = asyncio.ensure_future(pro.watch_positions([PERP]))
    balance = asyncio.ensure_future(pro.watch_balance())
    await asyncio.sleep(0.3)
    emulator.market("bybit", PERP).set_price("58900", hold=True)  # the book crosses the resting buy
    async with asyncio.timeout(10):
        filled = await pro.watch_orders(PERP)
        while filled[-1]["status"] != "closed":
            filled = await pro.watch_orders(PERP)
        moved = (await positions)[-1]
        wallet = await balance
    assert filled[-1]["id"] == placed["id"] and filled[-1]["filled"] == 0.01
    assert moved["symbol"] == PERP and moved["side"] == "long" and moved["contracts"] == 0.01
    assert moved["entryPrice"] == 59_000
    # ccxt.pro takes "used" from "locked" (spot orders) when present; the margin is in totalPositionIM
    usdt = next(c for c in wallet["info"][0]["coin"] if c["coin"] == "USDT")
    assert float(usdt["totalPositionIM"]) == pytest.approx(59_000 * 0.01 / 20)  # default leverage 20

    async def pushed_when(change, condition) -> dict[str, Any]:
        watching = asyncio.ensure_future(pro.watch_positions([PERP]))
        await asyncio.sleep(0.2)
        change()
        async with asyncio.timeout(10):
            pushed = (await watching)[-1]
            while not condition(pushed):
                pushed = (await pro.watch_positions([PERP]))[-1]
        return pushed

    paid = moved["info"]["cumRealisedPnl"]
    await pushed_when(  # funding moves the position's realised PnL
        lambda: emulator.apply_funding("bybit"), lambda p: p["info"]["cumRealisedPnl"] != paid
    )
    rest = client(emulator, "bybit", key, secret)
    await pushed_when(  # TP/SL changes are pushed too
        lambda: trading_stop(rest, takeProfit=70000), lambda p: p["takeProfitPrice"] == 70000
    )
