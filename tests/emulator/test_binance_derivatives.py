"""Unmodified CCXT against the emulated Binance USDⓈ-M / COIN-M derivatives: settings, positions, funding."""

from __future__ import annotations

import ccxt
import pytest

from tests.emulator.clients import funding_every, wait_for

PERP = "BTC/USDT:USDT"
INVERSE = "BTC/USD:BTC"

# CCXT picks Binance's per-API error maps by URL prefix (``https://fapi.binance.com/``); behind the emulator's
# URL only the common map applies, so some futures codes surface as a broader class than in production
# (-2019 ExchangeError, not InsufficientFunds). The tests assert the code and what CCXT raises here.


@pytest.fixture
def futures(binance) -> ccxt.binance:
    return binance


def position(exchange: ccxt.binance, symbol: str = PERP) -> dict:
    found = exchange.fetch_positions([symbol], {"subType": "inverse"} if symbol == INVERSE else {})
    assert len(found) == 1, found
    return found[0]


def test_leverage_margin_mode_and_the_no_need_to_change_answer(futures):
    assert futures.set_leverage(7, PERP) == {
        "leverage": 7,
        "maxNotionalValue": "12000000",
        "symbol": "BTCUSDT",
    }
    assert futures.set_margin_mode("isolated", PERP) == {"code": 200, "msg": "success"}
    # Binance answers -4046 "No need to change margin type."; CCXT 4.5.90 raises MarginModeAlreadySet
    # (a NoChange) by default, or returns that answer with throwMarginModeAlreadySet=False.
    with pytest.raises(ccxt.MarginModeAlreadySet):
        futures.set_margin_mode("isolated", PERP)
    futures.options["setMarginMode"] = {"throwMarginModeAlreadySet": False}
    assert futures.set_margin_mode("isolated", PERP)["code"] == -4046
    with pytest.raises(ccxt.BadRequest):
        futures.set_leverage(200, PERP)
    assert futures.fetch_leverage_tiers([PERP])[PERP][0]["maxLeverage"] == 125


def test_a_linear_position_opens_shows_pnl_and_closes_with_reduce_only(futures, held_market, emulator):
    held_market(PERP, "60000")
    futures.set_leverage(10, PERP)
    opened = futures.create_order(PERP, "market", "buy", 0.05)
    assert opened["status"] == "closed" and opened["filled"] == 0.05
    held = position(futures)
    assert held["side"] == "long" and held["contracts"] == 0.05 and held["marginMode"] == "cross"
    assert 59_000 < held["entryPrice"] < 61_000
    emulator.market("binance", PERP).set_price("61000", hold=True)
    moved = position(futures)
    expected = 0.05 * (moved["markPrice"] - moved["entryPrice"])
    assert moved["unrealizedPnl"] == pytest.approx(expected, abs=0.01) and moved["unrealizedPnl"] > 40
    assert futures.fetch_balance({"type": "future"})["USDT"]["used"] > 0  # initial margin locked

    with pytest.raises(ccxt.ExchangeError, match="-2022"):  # more than the position: ReduceOnly rejected
        futures.create_order(PERP, "market", "sell", 0.1, params={"reduceOnly": True})
    closed = futures.create_order(PERP, "market", "sell", 0.05, params={"reduceOnly": True})
    assert closed["reduceOnly"] is True and futures.fetch_positions([PERP]) == []
    trades = futures.fetch_my_trades(PERP)
    assert float(trades[-1]["info"]["realizedPnl"]) > 40


def test_isolated_margin_can_be_added_and_removed(futures, held_market):
    held_market(PERP, "60000")
    futures.set_margin_mode("isolated", PERP)
    futures.set_leverage(5, PERP)
    futures.create_order(PERP, "market", "sell", 0.02)
    before = position(futures)
    assert before["side"] == "short" and before["marginMode"] == "isolated"
    futures.add_margin(PERP, 100)
    assert position(futures)["collateral"] == pytest.approx(before["collateral"] + 100, abs=1)
    futures.reduce_margin(PERP, 50)
    assert position(futures)["collateral"] == pytest.approx(before["collateral"] + 50, abs=1)
    with pytest.raises(ccxt.ExchangeError):  # below the initial margin
        futures.reduce_margin(PERP, 10_000)
    with pytest.raises(ccxt.ExchangeError):  # -4048: not with an open position
        futures.set_margin_mode("cross", PERP)


def test_hedge_mode_keeps_long_and_short_legs(futures, held_market):
    held_market(PERP, "60000")
    assert futures.fetch_position_mode(PERP)["hedged"] is False
    futures.set_position_mode(True, PERP)
    assert futures.fetch_position_mode(PERP)["hedged"] is True
    with pytest.raises(ccxt.OperationRejected, match="-4059"):  # No need to change position side.
        futures.set_position_mode(True, PERP)
    with pytest.raises(ccxt.OperationRejected, match="-4061"):  # hedge mode needs positionSide
        futures.create_order(PERP, "market", "buy", 0.01)
    futures.create_order(PERP, "market", "buy", 0.01, params={"positionSide": "LONG"})
    futures.create_order(PERP, "market", "sell", 0.02, params={"positionSide": "SHORT"})
    legs = {p["side"]: p["contracts"] for p in futures.fetch_positions([PERP])}
    assert legs == {"long": 0.01, "short": 0.02}
    with pytest.raises(ccxt.ExchangeError):  # -4068: not with open positions
        futures.set_position_mode(False, PERP)
    futures.create_order(PERP, "market", "sell", 0.01, params={"positionSide": "LONG"})
    futures.create_order(PERP, "market", "buy", 0.02, params={"positionSide": "SHORT"})
    futures.set_position_mode(False, PERP)


def test_funding_is_applied_to_open_positions_and_listed(futures, emulator, credentials):
    # only apply_funding pays until the compressed part (no 8-hourly payment of the engine's own clock)
    with funding_every(emulator, 0):
        futures.create_order(PERP, "market", "buy", 0.1)
        assert abs(futures.fetch_funding_rate(PERP)["fundingRate"]) < 0.01
        wallet_before = float(futures.fetch_balance({"type": "future"})["info"]["totalWalletBalance"])
        assert emulator.apply_funding("binance") >= 1
        history = futures.fetch_funding_history(PERP)
        assert len(history) == 1 and history[0]["code"] == "USDT"
        line = emulator.engine.derivatives("binance", credentials[0]).income[-1]  # the rate applied
        mark = position(futures)["markPrice"]
        assert history[0]["amount"] == pytest.approx(-0.1 * mark * float(line.rate), rel=0.02)  # longs pay
        wallet_after = float(futures.fetch_balance({"type": "future"})["info"]["totalWalletBalance"])
        assert wallet_after == pytest.approx(wallet_before + history[0]["amount"], abs=1e-6)

        with funding_every(emulator, 500):  # compressed funding for tests: every 0.5 s
            wait_for(lambda: len(futures.fetch_funding_history(PERP)), lambda n: n >= 3)
        futures.create_order(PERP, "market", "sell", 0.1, params={"reduceOnly": True})


def test_an_inverse_perpetual_position_settles_in_the_coin(futures, held_market):
    held_market(INVERSE, "60000")
    btc_before = futures.fetch_balance({"subType": "inverse"})["BTC"]["total"]
    futures.create_order(INVERSE, "market", "sell", 3)  # 3 contracts of 100 USD
    held = position(futures, INVERSE)
    assert held["side"] == "short" and held["contracts"] == 3 and held["contractSize"] == 100
    futures.create_order(INVERSE, "market", "buy", 3, params={"reduceOnly": True})
    assert futures.fetch_positions([INVERSE], {"subType": "inverse"}) == []
    btc_after = futures.fetch_balance({"subType": "inverse"})["BTC"]["total"]
    assert 0 < btc_before - btc_after < 0.0001  # fees and the spread, in BTC


def test_futures_orders_rest_fill_and_cancel(futures, emulator):
    price = float(futures.price_to_precision(PERP, float(emulator.market("binance", PERP).price()) * 0.8))
    placed = futures.create_order(PERP, "limit", "buy", 0.01, price, {"clientOrderId": "futlimit1"})
    assert placed["status"] == "open"
    assert futures.fetch_order(placed["id"], PERP)["clientOrderId"] == "futlimit1"
    assert [o["id"] for o in futures.fetch_open_orders(PERP)] == [placed["id"]]
    assert futures.cancel_order(placed["id"], PERP)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        futures.fetch_order("123", PERP)
    with pytest.raises(ccxt.ExchangeError, match="-2019"):  # Margin is insufficient.
        futures.create_order(PERP, "limit", "buy", 500, price)


def test_take_profit_on_a_position_closes_it_when_the_mark_crosses(emulator, credentials, held_market):
    key, _ = credentials
    held_market(PERP, "60000")
    from decimal import Decimal

    engine = emulator.engine
    emulator.call(lambda: engine.place_order("binance", key, PERP, "buy", "market", amount=Decimal("0.01")))
    emulator.call(
        lambda: engine.set_trading_stop(
            "binance", key, PERP, take_profit=Decimal(61000), stop_loss=Decimal(50000)
        )
    )
    assert emulator.positions("binance", key)[0].take_profit == 61000
    emulator.market("binance", PERP).set_price("61500", hold=True)
    assert emulator.positions("binance", key) == []
    closing = [o for o in engine.ledger("binance", key).orders.values() if o.extra.get("trigger")]
    assert closing[0].extra["trigger"] == "take_profit" and closing[0].reduce_only


def test_binance_reports_key_restrictions(futures):
    restrictions = futures.sapi_get_account_apirestrictions()
    assert restrictions["enableWithdrawals"] is False and restrictions["enableFutures"] is True
    assert restrictions["enableSpotAndMarginTrading"] is True
