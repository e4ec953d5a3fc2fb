"""Bybit v5 derivatives endpoints of the unified trading account, wired to the engine's derivatives core.

* ``GET /v5/position/list``: positions of ``linear``/``inverse`` contracts. Given a ``symbol`` Bybit lists
  the symbol's position rows even when flat (``side ""``, ``size "0"``; two rows, ``positionIdx`` 1 and 2,
  in hedge mode); by ``settleCoin``/``baseCoin`` (or all inverse) only open positions.
* ``POST /v5/position/set-leverage``: ``buyLeverage`` = ``sellLeverage`` within the instrument's
  ``leverageFilter``; the unchanged value answers 110043 "Set leverage not modified" (CCXT: BadRequest).
* ``POST /v5/account/set-margin-mode``: the unified account's margin mode (``REGULAR_MARGIN`` = cross,
  ``ISOLATED_MARGIN``) for every contract at once, which is what CCXT's ``setMarginMode`` sends for a unified
  account; the current mode answers success, open contract positions or orders 3400045 with ``reasons``.
  ``POST /v5/position/switch-isolated`` (per-symbol, classic accounts only) answers 100028.
* ``POST /v5/position/switch-mode``: ``mode`` 0 (one-way) / 3 (hedge); applies to the whole account here.
* ``POST /v5/position/trading-stop``: full-position ``takeProfit``/``stopLoss`` (0 clears one), triggered by
  ``tpTriggerBy``/``slTriggerBy`` (default ``LastPrice``, as on Bybit); the engine closes the position with a
  reduce-only market order when the trigger price crosses. Partial mode, limit TP/SL and trailing stops are
  not emulated (110032).
* ``POST /v5/position/add-margin``: ``margin`` > 0 adds, < 0 removes isolated margin (110015 when cross).
* ``GET /v5/account/transaction-log``: contract fills (``TRADE``) and funding (``SETTLEMENT``).
* ``GET /v5/execution/list?execType=Funding`` rows come from :func:`funding_rows`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from emulator.catalogue import Instrument
from emulator.orders import OrderRejected, Reject
from emulator.positions import Income, Position, PositionSide
from emulator.venues.bybit.instruments import VENUE, Category, category_of
from emulator.venues.bybit.protocol import BybitError, fmt_plain, params_error, price, qty

if TYPE_CHECKING:
    from emulator.engine import Engine
    from emulator.venues.bybit.rest import BybitRest, Params

EMPTY = Decimal(0)
DAY_MS = 86_400_000
POSITION_SIDES: dict[int, PositionSide] = {0: "both", 1: "long", 2: "short"}
POSITION_IDX = {side: idx for idx, side in POSITION_SIDES.items()}
TRIGGERS = {"LastPrice": "last", "MarkPrice": "mark", "IndexPrice": "index"}
MARGIN_MODES = {"REGULAR_MARGIN": "cross", "ISOLATED_MARGIN": "isolated"}
# the engine's trading-stop orders: extra["trigger"] -> (stopOrderType, createType)
TRIGGER_NAMES = {
    "take_profit": ("TakeProfit", "CreateByTakeProfit"),
    "stop_loss": ("StopLoss", "CreateByStopLoss"),
}
MODE_REFUSALS = {
    Reject.NO_CHANGE: (110025, "Position mode is not modified"),
    Reject.POSITION_OPEN: (110024, "You have an existing position, so position mode cannot be switched"),
    Reject.ORDERS_OPEN: (110028, "Open orders exist, so you cannot change position mode"),
}


def _not_emulated(message: str) -> BybitError:
    return BybitError(110032, f"{message} is not emulated")


def position_side(params: Params) -> PositionSide:
    raw = params.integer("positionIdx") or 0
    if raw not in POSITION_SIDES:
        raise params_error("params error: positionIdx invalid")
    return POSITION_SIDES[raw]


def signed_decimal(params: Params, name: str) -> Decimal:
    raw = params.text(name, required=True) or ""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise params_error(f"params error: {name} invalid") from None
    if not value.is_finite():
        raise params_error(f"params error: {name} invalid")
    return value


class BybitDerivatives:
    """Position, leverage, margin and TP/SL handlers (``handler(params, key)`` like :class:`BybitRest`)."""

    def __init__(self, rest: BybitRest) -> None:
        self.rest = rest
        self.engine: Engine = rest.engine

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/v5/position/list", self.position_list),
            ("POST", "/v5/position/set-leverage", self.set_leverage),
            ("POST", "/v5/position/switch-isolated", self.switch_isolated),
            ("POST", "/v5/account/set-margin-mode", self.set_margin_mode),
            ("POST", "/v5/position/switch-mode", self.switch_mode),
            ("POST", "/v5/position/trading-stop", self.trading_stop),
            ("POST", "/v5/position/add-margin", self.add_margin),
            ("GET", "/v5/account/transaction-log", self.transaction_log),
        ]

    # --- lookups ------------------------------------------------------------------------------------------

    def contract(self, params: Params) -> tuple[Category, Instrument]:
        category = self.rest.category(params)
        if category not in ("linear", "inverse"):
            raise BybitError(10001, "Illegal category")
        instrument = self.rest.instrument(category, params)
        assert instrument is not None
        return category, instrument

    def contracts(self) -> list[Instrument]:
        return [i for c in ("linear", "inverse") for i in self.rest.instruments(c)]  # type: ignore[arg-type]

    def account_margin_mode(self, key: str) -> str:
        """The unified account's margin mode, as ``/v5/account/info`` reports it."""
        account = self.engine.derivatives(VENUE, key)
        modes = {account.margin_mode_of(i.symbol) for i in self.contracts()}
        return "ISOLATED_MARGIN" if modes == {"isolated"} else "REGULAR_MARGIN"

    # --- positions ----------------------------------------------------------------------------------------

    def position_list(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.rest.category(params)
        if category == "spot":
            raise BybitError(10001, "Illegal category")
        one = self.rest.instrument(category, params, required=False)
        base = (params.text("baseCoin") or "").upper()
        settle = (params.text("settleCoin") or "").upper()
        if category == "linear" and one is None and not (base or settle):
            raise params_error("Missing some parameters that must be filled in, symbol or settleCoin")
        rows: list[dict[str, Any]] = []
        if category == "option":
            pass  # options are not traded here, so there are no option positions
        elif one is not None:
            account = self.engine.derivatives(VENUE, key)
            sides: tuple[PositionSide, ...] = ("long", "short") if account.hedged else ("both",)
            rows = [self.position_json(key, one, self.position_or_flat(key, one, s)) for s in sides]
        else:
            for position in self.engine.positions(VENUE, key):
                i = position.instrument
                if category_of(i) != category or (base and i.base != base) or (settle and i.settle != settle):
                    continue
                rows.append(self.position_json(key, i, position))
        limit = self.rest.limit(params, 20, 200)
        start = self.rest.cursor(params)
        more = start + limit < len(rows)
        return {
            "list": rows[start : start + limit],
            "nextPageCursor": str(start + limit) if more else "",
            "category": category,
        }

    def position_or_flat(self, key: str, instrument: Instrument, side: PositionSide) -> Position:
        account = self.engine.derivatives(VENUE, key)
        found = account.positions.get((instrument.symbol, side))
        return found if found is not None else account.flat(VENUE, key, instrument, side)

    def position_json(self, key: str, instrument: Instrument, position: Position) -> dict[str, Any]:
        """One position as ``/v5/position/list`` and the ``position`` stream list it."""
        market = self.engine.market(VENUE, instrument.symbol)
        mark = market.mark_price
        p = lambda v: price(instrument, v)  # noqa: E731
        is_open = bool(position.size)
        settle = position.settle
        if position.margin_mode == "isolated":
            collateral = position.margin
        else:
            collateral = self.engine.wallet(VENUE, key).get(settle).total
        liquidation = position.liquidation_price(collateral) if is_open else EMPTY
        if instrument.linear is False:
            value = position.contracts * instrument.contract_size / position.entry_price if is_open else EMPTY
        else:
            value = position.contracts * instrument.contract_size * position.entry_price
        side = "" if not is_open else ("Buy" if position.size > 0 else "Sell")
        realised = position.realised_pnl + position.funding - self.fees(key, position)
        return {
            "positionIdx": POSITION_IDX[position.side],
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": instrument.id,
            "side": side,
            "size": qty(instrument, position.contracts),
            "avgPrice": p(position.entry_price) if is_open else "0",
            "positionValue": fmt_plain(value) if is_open else "",
            "tradeMode": 1 if position.margin_mode == "isolated" else 0,
            "autoAddMargin": 0,
            "positionStatus": "Normal",
            "leverage": fmt_plain(position.leverage),
            "markPrice": p(mark),
            "liqPrice": p(liquidation) if liquidation else "",
            "bustPrice": "",
            "positionIM": fmt_plain(position.margin),
            "positionMM": fmt_plain(position.maintenance_margin(mark)) if is_open else "0",
            "positionBalance": fmt_plain(position.margin),
            "takeProfit": p(position.take_profit) if position.take_profit else "",
            "stopLoss": p(position.stop_loss) if position.stop_loss else "",
            "trailingStop": "0",
            "tpslMode": "Full",
            "unrealisedPnl": fmt_plain(position.unrealised_pnl(mark)) if is_open else "",
            "curRealisedPnl": fmt_plain(realised),
            "cumRealisedPnl": fmt_plain(realised),
            "adlRankIndicator": 2 if is_open else 0,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "sessionAvgPrice": "",
            "seq": position.updated_ms,
            "createdTime": str(position.created_ms or self.engine.started_ms),
            "updatedTime": str(position.updated_ms or self.engine.started_ms),
        }

    def fees(self, key: str, position: Position) -> Decimal:
        """Trading fees paid on a position's fills (Bybit counts them in the realised PnL)."""
        ledger = self.engine.ledger(VENUE, key)
        return sum(
            (
                f.fee
                for f in ledger.fills
                if f.symbol == position.symbol
                and (order := ledger.orders.get(f.order_id)) is not None
                and order.position_side == position.side
            ),
            EMPTY,
        )

    # --- settings -----------------------------------------------------------------------------------------

    def set_leverage(self, params: Params, key: str | None) -> Any:
        assert key is not None
        _, instrument = self.contract(params)
        buy = self.rest_decimal(params, "buyLeverage")
        sell = self.rest_decimal(params, "sellLeverage")
        if buy != sell:
            raise params_error("buyLeverage must be equal to sellLeverage")
        bounds = instrument.raw.get("leverageFilter") or {}
        low, high = Decimal(bounds.get("minLeverage", "1")), Decimal(bounds.get("maxLeverage", "100"))
        step = Decimal(bounds.get("leverageStep", "0.01"))
        if buy < low or buy > high or buy % step:
            raise BybitError(10001, f"leverage invalid: allowed {fmt_plain(low)} to {fmt_plain(high)}")
        if self.engine.derivatives(VENUE, key).leverage_of(instrument.symbol) == buy:
            raise BybitError(110043, "Set leverage not modified")
        self.engine.set_leverage(VENUE, key, instrument.symbol, buy, maximum=high)
        return {}

    @staticmethod
    def rest_decimal(params: Params, name: str) -> Decimal:
        value = params.decimal(name, required=True)
        assert value is not None
        return value

    def switch_isolated(self, _params: Params, _key: str | None) -> Any:
        # Per-symbol cross/isolated is for classic accounts; a unified account sets it account-wide.
        raise BybitError(100028, "unified account is forbidden")

    def set_margin_mode(self, params: Params, key: str | None) -> Any:
        assert key is not None
        wanted = params.text("setMarginMode", required=True) or ""
        if wanted == "PORTFOLIO_MARGIN":
            raise self.margin_mode_failed("3400000", "PORTFOLIO_MARGIN is not emulated")
        mode = MARGIN_MODES.get(wanted)
        if mode is None:
            raise params_error("params error: setMarginMode invalid")
        account = self.engine.derivatives(VENUE, key)
        contracts = self.contracts()
        if all(account.margin_mode_of(i.symbol) == mode for i in contracts):
            return {"reasons": []}  # Bybit answers success when the account already is in that mode
        symbols = {i.symbol for i in contracts}
        reasons = []
        if any(p.symbol in symbols for p in account.open_positions()):
            reasons.append(("3400101", "Please ensure that there are no positions in your account"))
        if any(o.symbol in symbols for o in self.engine.ledger(VENUE, key).open_orders()):
            reasons.append(("3400102", "Please ensure that there are no active orders in your account"))
        if reasons:
            raise BybitError(
                3400045,
                "Set margin mode failed",
                result={"reasons": [{"reasonCode": c, "reasonMsg": m} for c, m in reasons]},
            )
        for instrument in contracts:
            try:
                self.engine.set_margin_mode(VENUE, key, instrument.symbol, mode)  # type: ignore[arg-type]
            except OrderRejected as rejected:
                if rejected.reason is not Reject.NO_CHANGE:
                    raise
        return {"reasons": []}

    @staticmethod
    def margin_mode_failed(code: str, message: str) -> BybitError:
        reasons = [{"reasonCode": code, "reasonMsg": message}]
        return BybitError(3400045, "Set margin mode failed", result={"reasons": reasons})

    def switch_mode(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.rest.category(params)
        if category not in ("linear", "inverse"):
            raise BybitError(10001, "Illegal category")
        if params.text("symbol") is None and params.text("coin") is None:
            raise params_error("params error: symbol or coin is required")
        if params.text("symbol") is not None:
            self.rest.instrument(category, params)
        mode = params.integer("mode")
        if mode not in (0, 3):
            raise params_error("params error: mode invalid")
        try:
            self.engine.set_position_mode(VENUE, key, hedged=mode == 3)
        except OrderRejected as rejected:
            code, msg = MODE_REFUSALS[rejected.reason]
            raise BybitError(code, msg) from None
        return {}

    # --- TP/SL and margin ---------------------------------------------------------------------------------

    def trading_stop(self, params: Params, key: str | None) -> Any:
        assert key is not None
        _, instrument = self.contract(params)
        side = position_side(params)
        if (params.text("tpslMode") or "Full") != "Full":
            raise _not_emulated("tpslMode Partial (TP/SL on part of the position)")
        for name in ("tpOrderType", "slOrderType"):
            if params.text(name) not in (None, "Market"):
                raise _not_emulated(f"{name} {params.text(name)}")
        if params.text("trailingStop") not in (None, "0"):
            raise _not_emulated("trailingStop")
        take_profit, stop_loss = params.decimal("takeProfit"), params.decimal("stopLoss")
        trigger_name = params.text("tpTriggerBy") or params.text("slTriggerBy") or "LastPrice"
        trigger_by = TRIGGERS.get(trigger_name)
        if trigger_by is None:
            raise params_error("params error: tpTriggerBy invalid")
        position = self.engine.derivatives(VENUE, key).positions.get((instrument.symbol, side))
        if position is None or not position.size:
            raise BybitError(10001, "can not set tp/sl/ts for zero position")
        market = self.engine.market(VENUE, instrument.symbol)
        base = {"last": market.last_price, "index": market.index_price}.get(trigger_by, market.mark_price)
        self.check_stop(instrument, position, take_profit, stop_loss, base, trigger_name)
        self.engine.set_trading_stop(
            VENUE,
            key,
            instrument.symbol,
            take_profit,
            stop_loss,
            side,
            trigger_by,  # type: ignore[arg-type]
        )
        return {}

    @staticmethod
    def check_stop(
        instrument: Instrument,
        position: Position,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        base: Decimal,
        trigger_name: str,
    ) -> None:
        """Bybit refuses a take-profit on the wrong side of the trigger price (and likewise a stop-loss)."""
        long = position.size > 0
        side = "Buy" if long else "Sell"
        for name, value, above in (("TakeProfit", take_profit, long), ("StopLoss", stop_loss, not long)):
            if not value:
                continue
            if value % instrument.price_tick:
                raise params_error(f"params error: {name} price invalid")
            if (value <= base) if above else (value >= base):
                where = "higher" if above else "lower"
                raise BybitError(
                    10001,
                    f"{name}:{price(instrument, value)} set for {side} position should be {where} than "
                    f"base_price:{price(instrument, base)}??{trigger_name}",
                )

    def add_margin(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category, instrument = self.contract(params)
        side = position_side(params)
        amount = signed_decimal(params, "margin")
        if not amount:
            raise params_error("params error: margin invalid")
        try:
            position = self.engine.adjust_margin(VENUE, key, instrument.symbol, amount, side)
        except OrderRejected as rejected:
            if rejected.reason is Reject.INSUFFICIENT_FUNDS:
                raise BybitError(110014, "Available balance not enough to add margin") from None
            raise
        row = self.position_json(key, instrument, position)
        return {"category": category} | {
            k: row[k]
            for k in (
                "symbol", "positionIdx", "riskId", "riskLimitValue", "size", "avgPrice", "liqPrice",
                "bustPrice", "markPrice", "positionValue", "leverage", "autoAddMargin", "positionStatus",
                "positionIM", "positionMM", "takeProfit", "stopLoss", "trailingStop", "unrealisedPnl",
                "cumRealisedPnl", "createdTime", "updatedTime",
            )
        }  # fmt: skip

    # --- history ------------------------------------------------------------------------------------------

    def transaction_log(self, params: Params, key: str | None) -> Any:
        """Contract fills (``TRADE``) and funding (``SETTLEMENT``), newest first. Spot trades, transfers and
        interest are not listed. ``cashBalance`` is the coin's wallet balance after the line, reconstructed
        backwards from the current balance through the listed lines."""
        assert key is not None
        account_type = params.text("accountType")
        if account_type not in (None, "UNIFIED"):
            raise BybitError(10001, "accountType only support UNIFIED.")
        now = self.engine.clock.now_ms()
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is None and end is None:
            start = now - DAY_MS
        category = params.text("category")
        currency = (params.text("currency") or "").upper()
        base = (params.text("baseCoin") or "").upper()
        kind = params.text("type")
        lines = [
            row
            for row in self.ledger_rows(key)
            if (category is None or row["category"] == category)
            and (not currency or row["currency"] == currency)
            and (not base or row["symbol"].startswith(base))
            and (kind is None or row["type"] == kind)
            and (start is None or int(row["transactionTime"]) >= start)
            and (end is None or int(row["transactionTime"]) <= end)
        ]
        limit = self.rest.limit(params, 20, 50)
        offset = self.rest.cursor(params)
        more = offset + limit < len(lines)
        return {"list": lines[offset : offset + limit], "nextPageCursor": str(offset + limit) if more else ""}

    def ledger_rows(self, key: str) -> list[dict[str, Any]]:
        ledger = self.engine.ledger(VENUE, key)
        entries: list[tuple[int, int, str, Decimal, dict[str, Any]]] = []
        for fill in ledger.fills:
            instrument = self.engine.catalogue.get(VENUE, fill.symbol)
            order = ledger.orders.get(fill.order_id)
            if instrument is None or order is None or not instrument.contract:
                continue
            change = fill.realised_pnl - fill.fee
            entries.append((fill.ts_ms, fill.trade_id, fill.fee_asset, change, {
                "symbol": instrument.id,
                "category": category_of(instrument),
                "side": "Buy" if fill.side == "buy" else "Sell",
                "transactionTime": str(fill.ts_ms),
                "type": "TRADE",
                "qty": qty(instrument, fill.qty),
                "size": qty(instrument, fill.qty),
                "currency": fill.fee_asset,
                "tradePrice": price(instrument, fill.price),
                "funding": "0",
                "fee": fmt_plain(fill.fee),
                "cashFlow": fmt_plain(fill.realised_pnl),
                "change": fmt_plain(change),
                "feeRate": fmt_plain(instrument.maker if fill.maker else instrument.taker),
                "bonusChange": "0",
                "tradeId": str(uuid.UUID(int=fill.trade_id)),
                "orderId": str(uuid.UUID(int=order.id)),
                "orderLinkId": order.extra.get("orderLinkId") or "",
                "id": f"{fill.trade_id}_{instrument.id}_{fill.ts_ms}",
            }))  # fmt: skip
        for line in self.engine.derivatives(VENUE, key).income:
            if line.kind != "FUNDING_FEE":
                continue
            instrument = self.engine.catalogue.get(VENUE, line.symbol)
            if instrument is None:
                continue
            row = funding_rows(self.engine, instrument, [line])[0]
            entries.append((line.ts_ms, line.id, line.asset, line.amount, {
                "symbol": instrument.id,
                "category": category_of(instrument),
                "side": row["side"],
                "transactionTime": str(line.ts_ms),
                "type": "SETTLEMENT",
                "qty": row["execQty"],
                "size": row["execQty"],
                "currency": line.asset,
                "tradePrice": row["execPrice"],
                "funding": fmt_plain(line.amount),
                "fee": "0",
                "cashFlow": "0",
                "change": fmt_plain(line.amount),
                "feeRate": row["feeRate"],
                "bonusChange": "0",
                "tradeId": row["execId"],
                "orderId": row["orderId"],
                "orderLinkId": "",
                "id": f"{line.id}_{instrument.id}_{line.ts_ms}",
            }))  # fmt: skip
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
        wallet = self.engine.wallet(VENUE, key)
        after: dict[str, Decimal] = {}
        rows = []
        for _, _, asset, change, row in entries:
            balance = after.get(asset, wallet.get(asset).total)
            row["cashBalance"] = fmt_plain(balance)
            after[asset] = balance - change
            rows.append(row)
        return rows


def funding_rows(engine: Engine, instrument: Instrument, lines: list[Income]) -> list[dict[str, Any]]:
    """Funding payments as ``/v5/execution/list?execType=Funding`` lists them (``execFee`` > 0: paid). The
    position's size and price at the payment are derived from the amount and rate at today's mark price."""
    mark = engine.market(VENUE, instrument.symbol).mark_price
    rows = []
    for line in lines:
        rate = line.rate or EMPTY
        value = abs(line.amount / rate) if rate else EMPTY
        long = (line.amount < 0) == (rate > 0)  # longs pay a positive rate
        if instrument.linear is False:
            contracts = value * mark / instrument.contract_size
        else:
            contracts = value / (mark * instrument.contract_size) if mark else EMPTY
        contracts = contracts.quantize(instrument.amount_step) if contracts else EMPTY
        rows.append(
            {
                "symbol": instrument.id,
                "orderType": "UNKNOWN",
                "underlyingPrice": "",
                "orderLinkId": "",
                "orderId": str(uuid.UUID(int=(1 << 120) + line.id)),
                "stopOrderType": "UNKNOWN",
                "execTime": str(line.ts_ms),
                "feeCurrency": "",
                "createType": "",
                "feeRate": f"{rate:f}",
                "tradeIv": "",
                "blockTradeId": "",
                "markPrice": price(instrument, mark),
                "execPrice": price(instrument, mark),
                "markIv": "",
                "orderQty": "0",
                "orderPrice": "0",
                "execValue": fmt_plain(value),
                "closedSize": "0",
                "execType": "Funding",
                "seq": line.id,
                "side": "Buy" if long else "Sell",
                "indexPrice": "",
                "leavesQty": "0",
                "isMaker": False,
                "execFee": fmt_plain(-line.amount),
                "execId": str(uuid.UUID(int=(1 << 121) + line.id)),
                "marketUnit": "",
                "execQty": qty(instrument, contracts),
            }
        )
    return rows
