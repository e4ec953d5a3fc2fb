"""Binance USDⓈ-M (``fapi``) and COIN-M (``dapi``) private REST: orders, account, positions, settings, income.

Quantities are contracts (USDⓈ-M: base units, contract size 1; COIN-M: contracts of 100/10 USD); the engine
keeps positions and margin (``emulator.positions``). Also ``/sapi/v1/account/apiRestrictions``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from emulator.catalogue import Instrument
from emulator.orders import Fill, Order, OrderRejected, Reject
from emulator.positions import Income, Position
from emulator.routing import Router
from emulator.venues.binance.instruments import COINM, SPOT, USDM, VENUE, Section
from emulator.venues.binance.protocol import (
    BinanceError,
    Params,
    fmt_price,
    fmt_qty,
    fmt_step,
    mandatory,
)

if TYPE_CHECKING:
    from emulator.venues.binance.rest import BinanceRest

Handler = Callable[[Section, Params, str | None], Any]
USDM_HOSTS = ("fapi.binance.com",)
COINM_HOSTS = ("dapi.binance.com",)

# Futures-specific codes for engine rejections (spot ones are in protocol.REJECTIONS).
FUTURES_REJECTIONS: dict[Reject, tuple[int, str]] = {
    Reject.INSUFFICIENT_FUNDS: (-2019, "Margin is insufficient."),
    Reject.REDUCE_ONLY_REJECTED: (-2022, "ReduceOnly Order is rejected."),
    Reject.POSITION_SIDE_INVALID: (-4061, "Order's position side does not match user's setting."),
    Reject.LEVERAGE_INVALID: (-4028, "Leverage is not valid"),
    Reject.NOT_ISOLATED: (-4049, "Add margin only support for isolated position."),
    Reject.NO_POSITION: (-4051, "Isolated balance insufficient."),
    Reject.MARGIN_TOO_LOW: (-4051, "Isolated balance insufficient."),
    Reject.NOT_TRADABLE: (-4140, "Invalid symbol status for opening position."),
}
MARGIN_TYPE_REJECTIONS = {
    Reject.NO_CHANGE: (-4046, "No need to change margin type."),
    Reject.ORDERS_OPEN: (-4047, "Margin type cannot be changed if there exists open orders."),
    Reject.POSITION_OPEN: (-4048, "Margin type cannot be changed if there exists position."),
}
POSITION_SIDE_REJECTIONS = {
    Reject.NO_CHANGE: (-4059, "No need to change position side."),
    Reject.ORDERS_OPEN: (-4067, "Position side cannot be changed if there exists open orders."),
    Reject.POSITION_OPEN: (-4068, "Position side cannot be changed if there exists position."),
}

ORDER_PARAMS = frozenset(
    {
        "symbol",
        "side",
        "positionSide",
        "type",
        "timeInForce",
        "quantity",
        "reduceOnly",
        "price",
        "newClientOrderId",
        "stopPrice",
        "closePosition",
        "activationPrice",
        "callbackRate",
        "workingType",
        "priceProtect",
        "newOrderRespType",
        "priceMatch",
        "selfTradePreventionMode",
        "goodTillDate",
    }
)
SUPPORTED_TYPES = frozenset({"LIMIT", "MARKET"})
CONDITIONAL_TYPES = frozenset(
    {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
)
BRACKETS = [  # BTCUSDT's first brackets (notional cap, max leverage, maintenance margin ratio, cum)
    (50_000, 125, "0.004", "0"),
    (600_000, 100, "0.005", "50"),
    (3_000_000, 75, "0.0065", "950"),
    (12_000_000, 50, "0.01", "11450"),
]


def futures_rejection(reason: Reject, table: dict[Reject, tuple[int, str]] | None = None) -> BinanceError:
    from emulator.venues.binance.protocol import REJECTIONS

    code, msg = (table or {}).get(reason) or FUTURES_REJECTIONS.get(reason) or REJECTIONS[reason]
    return BinanceError(code, msg)


def _bool(value: str | None) -> bool:
    return (value or "").lower() == "true"


class BinanceFutures:
    """Signed USDⓈ-M / COIN-M endpoints. Registered through :meth:`BinanceRest.add_route`."""

    def __init__(self, rest: BinanceRest) -> None:
        self.rest = rest
        self.engine = rest.engine

    def install(self, router: Router) -> None:
        add = functools.partial(self.rest.add_route, strict=False)
        for section, hosts, p in ((USDM, USDM_HOSTS, "/fapi"), (COINM, COINM_HOSTS, "/dapi")):
            add(router, hosts, "POST", f"{p}/v1/order", section, self.create_order, ORDER_PARAMS, True)
            ids = {"symbol", "orderId", "origClientOrderId"}
            add(router, hosts, "GET", f"{p}/v1/order", section, self.get_order, ids, True)
            add(router, hosts, "DELETE", f"{p}/v1/order", section, self.cancel_order, ids, True)
            add(router, hosts, "GET", f"{p}/v1/openOrder", section, self.get_open_order, ids, True)
            add(
                router,
                hosts,
                "GET",
                f"{p}/v1/openOrders",
                section,
                self.open_orders,
                {"symbol", "pair"},
                True,
            )
            add(router, hosts, "DELETE", f"{p}/v1/allOpenOrders", section, self.cancel_all, {"symbol"}, True)
            window = {"symbol", "pair", "orderId", "startTime", "endTime", "limit", "fromId"}
            add(router, hosts, "GET", f"{p}/v1/allOrders", section, self.all_orders, window, True)
            add(router, hosts, "GET", f"{p}/v1/userTrades", section, self.user_trades, window, True)
            for version in ("v1", "v2", "v3"):
                add(router, hosts, "GET", f"{p}/{version}/account", section, self.account, set(), True)
                add(router, hosts, "GET", f"{p}/{version}/balance", section, self.balance, set(), True)
                add(
                    router,
                    hosts,
                    "GET",
                    f"{p}/{version}/positionRisk",
                    section,
                    self.position_risk_v3 if version == "v3" else self.position_risk,
                    {"symbol", "pair", "marginAsset"},
                    True,
                )
            add(
                router,
                hosts,
                "POST",
                f"{p}/v1/leverage",
                section,
                self.leverage,
                {"symbol", "leverage"},
                True,
            )
            add(
                router,
                hosts,
                "POST",
                f"{p}/v1/marginType",
                section,
                self.margin_type,
                {"symbol", "marginType"},
                True,
            )
            add(router, hosts, "GET", f"{p}/v1/positionSide/dual", section, self.get_dual, set(), True)
            add(
                router,
                hosts,
                "POST",
                f"{p}/v1/positionSide/dual",
                section,
                self.set_dual,
                {"dualSidePosition"},
                True,
            )
            for version in ("v1", "v2"):
                add(
                    router,
                    hosts,
                    "GET",
                    f"{p}/{version}/leverageBracket",
                    section,
                    self.leverage_bracket,
                    {"symbol", "pair"},
                    True,
                )
            add(
                router,
                hosts,
                "GET",
                f"{p}/v1/income",
                section,
                self.income,
                {"symbol", "incomeType", "startTime", "endTime", "page", "limit"},
                True,
            )
            add(
                router,
                hosts,
                "POST",
                f"{p}/v1/positionMargin",
                section,
                self.position_margin,
                {"symbol", "positionSide", "amount", "type"},
                True,
            )
        add(
            router,
            ("api.binance.com",),
            "GET",
            "/sapi/v1/account/apiRestrictions",
            SPOT,
            self.restrictions,
            set(),
            True,
        )

    # --- helpers ------------------------------------------------------------------------------------------

    def instrument(self, section: Section, params: Params, required: bool = True) -> Instrument | None:
        return self.rest.instrument(section, params, required=required)

    def _instrument_of(self, order: Order) -> Instrument:
        instrument = self.engine.catalogue.get(VENUE, order.symbol)
        assert instrument is not None
        return instrument

    def _instruments(self, section: Section) -> set[str]:
        return {i.symbol for i in self.rest.instruments(section)}

    def _run(self, action: Callable[[], Any], table: dict[Reject, tuple[int, str]] | None = None) -> Any:
        try:
            return action()
        except OrderRejected as rejected:
            raise futures_rejection(rejected.reason, table) from None

    def _position_side(self, params: Params) -> str | None:
        raw = (params.text("positionSide") or "").upper()
        if raw and raw not in ("BOTH", "LONG", "SHORT"):
            raise BinanceError(-4006, "Invalid position side.")
        return raw.lower() or None

    # --- orders -------------------------------------------------------------------------------------------

    def create_order(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        side = (params.text("side", required=True) or "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = (params.text("type", required=True) or "").upper()
        if order_type in CONDITIONAL_TYPES:
            raise BinanceError(-4120, f"Order type {order_type} is not supported by the emulator.")
        if order_type not in SUPPORTED_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        quantity, price = params.decimal("quantity"), params.decimal("price")
        if quantity is None:
            raise mandatory("quantity")
        tif = (params.text("timeInForce") or "GTC").upper()
        if tif not in ("GTC", "IOC", "FOK", "GTX", "GTD"):
            raise BinanceError(-1115, "Invalid timeInForce.")
        if order_type == "LIMIT" and price is None:
            raise mandatory("price")
        if order_type == "MARKET" and price is not None:
            raise BinanceError(-1106, "Parameter 'price' sent when not required.")
        reduce_only = _bool(params.text("reduceOnly"))
        position_side = self._position_side(params)
        if reduce_only and position_side in ("long", "short"):
            raise BinanceError(-1106, "Parameter 'reduceonly' sent when not required.")
        order = self._run(
            lambda: self.engine.place_order(
                VENUE,
                key,
                instrument.symbol,
                "buy" if side == "BUY" else "sell",
                "market" if order_type == "MARKET" else "limit",
                amount=quantity,
                price=price,
                client_id=params.text("newClientOrderId"),
                time_in_force="GTC" if tif in ("GTX", "GTD") else tif,  # type: ignore[arg-type]
                post_only=tif == "GTX",
                extra={
                    "type": order_type,
                    "tif": tif,
                    "stp": params.text("selfTradePreventionMode") or "EXPIRE_MAKER",
                    "workingType": params.text("workingType") or "CONTRACT_PRICE",
                },
                reduce_only=reduce_only,
                position_side=position_side,  # type: ignore[arg-type]
            )
        )
        result = futures_order(order, instrument)
        result["cumQty"] = result["executedQty"]
        return result

    def get_order(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        order = self.rest.find(section, params, key)
        return futures_order(order, self._instrument_of(order))

    def get_open_order(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        order = self.rest.find(section, params, key)
        if not order.is_open:
            raise BinanceError(-2013, "Order does not exist.")
        return futures_order(order, self._instrument_of(order))

    def cancel_order(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        try:
            order = self.rest.find(section, params, key)
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        except (OrderRejected, BinanceError):
            raise BinanceError(-2011, "Unknown order sent.") from None
        return futures_order(order, self._instrument_of(order))

    def open_orders(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params, required=False)
        symbols = {instrument.symbol} if instrument else self._instruments(section)
        orders = [o for o in self.engine.ledger(VENUE, key).open_orders() if o.symbol in symbols]
        return [futures_order(o, self._instrument_of(o)) for o in orders]

    def cancel_all(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        for order in self.engine.ledger(VENUE, key).open_orders(instrument.symbol):
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def all_orders(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        return [futures_order(o, instrument) for o in self.rest.orders_window(params, key, instrument)]

    def user_trades(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        orders = self.engine.ledger(VENUE, key).orders
        fills = self.rest.fills_window(params, key, instrument)
        return [user_trade(instrument, f, orders.get(f.order_id)) for f in fills]

    # --- account and positions ----------------------------------------------------------------------------

    def _assets(self, section: Section) -> list[str]:
        return sorted({i.settle or i.quote for i in self.rest.instruments(section)})

    def _positions(self, section: Section, key: str, symbol: str | None = None) -> list[Position]:
        account = self.engine.derivatives(VENUE, key)
        symbols = self._instruments(section)
        return [p for p in account.open_positions(symbol) if p.symbol in symbols]

    def _asset_rows(self, section: Section, key: str) -> list[dict[str, Any]]:
        wallet = self.engine.wallet(VENUE, key)
        positions = self._positions(section, key)
        now = self.engine.clock.now_ms()
        rows = []
        for asset in self._assets(section):
            balance = wallet.get(asset)
            mine = [p for p in positions if p.settle == asset]
            unrealised = sum((p.unrealised_pnl(self._mark(p)) for p in mine), Decimal(0))
            position_margin = sum((p.margin for p in mine), Decimal(0))
            order_margin = max(Decimal(0), balance.locked - position_margin)
            maint = sum((p.maintenance_margin(self._mark(p)) for p in mine), Decimal(0))
            rows.append(
                {
                    "asset": asset,
                    "walletBalance": _money(balance.total),
                    "unrealizedProfit": _money(unrealised),
                    "marginBalance": _money(balance.total + unrealised),
                    "maintMargin": _money(maint),
                    "initialMargin": _money(balance.locked),
                    "positionInitialMargin": _money(position_margin),
                    "openOrderInitialMargin": _money(order_margin),
                    "crossWalletBalance": _money(balance.total),
                    "crossUnPnl": _money(unrealised),
                    "availableBalance": _money(balance.free),
                    "maxWithdrawAmount": _money(balance.free),
                    "marginAvailable": True,
                    "updateTime": now,
                }
            )
        return rows

    def _mark(self, position: Position) -> Decimal:
        return self.engine.market(VENUE, position.symbol).mark_price

    def account(self, section: Section, _params: Params, key: str | None) -> Any:
        assert key is not None
        assets = self._asset_rows(section, key)
        usdt = next((a for a in assets if a["asset"] == "USDT"), None)

        def total(field: str) -> str:
            return usdt[field] if usdt else "0.00000000"

        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": total("initialMargin"),
            "totalMaintMargin": total("maintMargin"),
            "totalWalletBalance": total("walletBalance"),
            "totalUnrealizedProfit": total("unrealizedProfit"),
            "totalMarginBalance": total("marginBalance"),
            "totalPositionInitialMargin": total("positionInitialMargin"),
            "totalOpenOrderInitialMargin": total("openOrderInitialMargin"),
            "totalCrossWalletBalance": total("crossWalletBalance"),
            "totalCrossUnPnl": total("crossUnPnl"),
            "availableBalance": total("availableBalance"),
            "maxWithdrawAmount": total("maxWithdrawAmount"),
            "assets": assets,
            "positions": [self._position_row(p, key, v3=False) for p in self._all_positions(section, key)],
        }

    def _all_positions(self, section: Section, key: str) -> list[Position]:
        """Every symbol of the section, flat ones included (as the account endpoints list them)."""
        account = self.engine.derivatives(VENUE, key)
        result = []
        for instrument in self.rest.instruments(section):
            legs = account.open_positions(instrument.symbol)
            result += legs or [
                Position(
                    VENUE,
                    key,
                    instrument.symbol,
                    "both",
                    instrument,
                    account.margin_mode_of(instrument.symbol),
                    account.leverage_of(instrument.symbol),
                )
            ]
        return result

    def balance(self, section: Section, _params: Params, key: str | None) -> Any:
        assert key is not None
        return [
            {
                "accountAlias": "SgsR",
                "asset": row["asset"],
                "balance": row["walletBalance"],
                "crossWalletBalance": row["crossWalletBalance"],
                "crossUnPnl": row["crossUnPnl"],
                "availableBalance": row["availableBalance"],
                "maxWithdrawAmount": row["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": row["updateTime"],
            }
            for row in self._asset_rows(section, key)
        ]

    def _position_row(self, position: Position, key: str, v3: bool = True) -> dict[str, Any]:
        instrument = position.instrument
        mark = self._mark(position)
        collateral = (
            position.margin
            if position.margin_mode == "isolated"
            else self.engine.wallet(VENUE, key).get(position.settle).total
        )
        isolated = position.margin_mode == "isolated"
        unrealised = position.unrealised_pnl(mark)
        row = {
            "symbol": instrument.id,
            "positionSide": position.side.upper(),
            "positionAmt": fmt_qty(instrument, position.size),
            "entryPrice": _price8(position.entry_price),
            "breakEvenPrice": _price8(position.entry_price),
            "markPrice": _price8(mark),
            "unRealizedProfit": _money(unrealised),
            "liquidationPrice": _price8(position.liquidation_price(collateral)),
            "isolatedMargin": _money(position.margin + unrealised if isolated else Decimal(0)),
            "notional": _money(position.notional(mark) * (1 if position.size > 0 else -1)),
            "marginAsset": position.settle,
            "isolatedWallet": _money(position.margin if isolated else Decimal(0)),
            "initialMargin": _money(position.initial_margin(mark)),
            "maintMargin": _money(position.maintenance_margin(mark)),
            "positionInitialMargin": _money(position.initial_margin(mark)),
            "openOrderInitialMargin": "0",
            "adl": 1,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": position.updated_ms,
        }
        if instrument.linear is False:
            row.update(
                notionalValue=row.pop("notional"),
                maxQty=str(BRACKETS[0][0] // 100),
                pair=instrument.raw.get("pair"),
            )
        if not v3:  # v2 and the account's positions also carry the settings
            row["unrealizedProfit"] = row["unRealizedProfit"]
            row.update(
                leverage=str(position.leverage.normalize()),
                marginType="isolated" if isolated else "cross",
                isolated=isolated,
                isAutoAddMargin="false",
                maxNotionalValue="50000",
            )
        return row

    def position_risk(self, section: Section, params: Params, key: str | None, v3: bool = False) -> Any:
        """v3: open positions only; v1/v2 list every symbol, flat ones with zeros (CCXT drops those)."""
        assert key is not None
        instrument = self.instrument(section, params, required=False)
        positions = (
            self._positions(section, key, instrument.symbol if instrument else None)
            if v3
            else [
                p
                for p in self._all_positions(section, key)
                if instrument is None or p.symbol == instrument.symbol
            ]
        )
        return [self._position_row(p, key, v3=v3) for p in positions]

    def position_risk_v3(self, section: Section, params: Params, key: str | None) -> Any:
        return self.position_risk(section, params, key, v3=True)

    # --- settings -----------------------------------------------------------------------------------------

    def leverage(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        value = params.integer("leverage", required=True)
        assert value is not None
        if not 1 <= value <= 125:
            raise BinanceError(-4028, f"Leverage {value} is not valid")
        self._run(lambda: self.engine.set_leverage(VENUE, key, instrument.symbol, Decimal(value)))
        cap = next(cap for cap, lev, _, _ in reversed(BRACKETS) if lev >= value)
        return {"leverage": value, "maxNotionalValue": str(cap), "symbol": instrument.id}

    def margin_type(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        mode = (params.text("marginType", required=True) or "").upper()
        if mode not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-4044, "The margin type is invalid.")
        self._run(
            lambda: self.engine.set_margin_mode(
                VENUE, key, instrument.symbol, "isolated" if mode == "ISOLATED" else "cross"
            ),
            MARGIN_TYPE_REJECTIONS,
        )
        return {"code": 200, "msg": "success"}

    def get_dual(self, _section: Section, _params: Params, key: str | None) -> Any:
        assert key is not None
        return {"dualSidePosition": self.engine.derivatives(VENUE, key).hedged}

    def set_dual(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        raw = (params.text("dualSidePosition", required=True) or "").lower()
        if raw not in ("true", "false"):
            raise BinanceError(-1100, "Illegal characters found in parameter 'dualSidePosition'.")
        self._run(lambda: self.engine.set_position_mode(VENUE, key, raw == "true"), POSITION_SIDE_REJECTIONS)
        return {"code": 200, "msg": "success"}

    def leverage_bracket(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params, required=False)
        instruments = [instrument] if instrument else self.rest.instruments(section)
        rows = []
        for i in instruments:
            brackets = [
                {
                    "bracket": n,
                    "initialLeverage": lev,
                    "notionalCap" if section is USDM else "qtyCap": cap,
                    "notionalFloor" if section is USDM else "qtyFloor": floor,
                    "maintMarginRatio": float(mmr),
                    "cum": float(cum),
                }
                for n, ((cap, lev, mmr, cum), floor) in enumerate(
                    zip(BRACKETS, [0] + [b[0] for b in BRACKETS[:-1]], strict=True), start=1
                )
            ]
            row: dict[str, Any] = {"symbol": i.id} if section is USDM else {"pair": i.raw.get("pair", i.id)}
            row.update(notionalCoef=1.0, brackets=brackets)
            rows.append(row)
        return rows[0] if instrument is not None and section is USDM else rows

    def income(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params, required=False)
        kind = params.text("incomeType")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = self.rest.limit(params, 100, 1000)
        symbols = self._instruments(section)
        lines = [
            line
            for line in self.engine.derivatives(VENUE, key).income
            if line.symbol in symbols
            and (instrument is None or line.symbol == instrument.symbol)
            and (kind is None or line.kind == kind)
            and (start is None or line.ts_ms >= start)
            and (end is None or line.ts_ms <= end)
        ]
        return [income_row(self.engine.catalogue.get(VENUE, line.symbol), line) for line in lines[-limit:]]

    def position_margin(self, section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(section, params)
        assert instrument is not None
        amount = params.decimal("amount", required=True)
        kind = params.integer("type", required=True)
        if kind not in (1, 2):
            raise BinanceError(-1130, "Data sent for parameter 'type' is not valid.")
        assert amount is not None
        side = self._position_side(params) or "both"
        self._run(
            lambda: self.engine.adjust_margin(
                VENUE,
                key,
                instrument.symbol,
                amount if kind == 1 else -amount,
                side,  # type: ignore[arg-type]
            )
        )
        return {
            "amount": float(amount),
            "code": 200,
            "msg": "Successfully modify position margin.",
            "type": kind,
        }

    def restrictions(self, _section: Section, _params: Params, key: str | None) -> Any:
        """``/sapi/v1/account/apiRestrictions``: what the key may do (its permissions; a read-only key may
        only read)."""
        assert key is not None
        account = self.engine.accounts[key]
        return {
            "ipRestrict": False,
            "createTime": self.engine.started_ms,
            "enableReading": True,
            "enableSpotAndMarginTrading": account.can_trade,
            "enableWithdrawals": account.can_withdraw,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableFutures": account.can_trade,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enablePortfolioMarginTrading": False,
        }


# --- serialisers ------------------------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    return f"{value:.8f}"


def _price8(value: Decimal) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") if value else "0.0"


def _quote(instrument: Instrument, order: Order) -> Decimal:
    """cumQuote (USDⓈ-M, quote) / cumBase (COIN-M, base) of an order's fills."""
    if instrument.linear is False:
        return sum((f.qty * instrument.contract_size / f.price for f in order.fills), Decimal(0))
    return order.cost * instrument.contract_size


def futures_order(order: Order, instrument: Instrument) -> dict[str, Any]:
    """``GET /fapi/v1/order`` shape (also POST/DELETE order, openOrders, allOrders)."""
    price = (lambda v: fmt_price(instrument, v)) if instrument else str
    order_type = order.extra.get("type", order.type.upper())
    row: dict[str, Any] = {
        "orderId": order.id,
        "symbol": instrument.id,
        "status": str(order.status),
        "clientOrderId": order.client_id,
        "price": price(order.price or Decimal(0)),
        "avgPrice": fmt_step(order.average, Decimal("0.00001")) if order.filled else "0",
        "origQty": fmt_qty(instrument, order.amount or Decimal(0)),
        "executedQty": fmt_qty(instrument, order.filled),
    }
    if instrument.linear is False:
        row.update(
            cumBase=fmt_step(_quote(instrument, order), Decimal("0.00000001")),
            pair=instrument.raw.get("pair"),
        )
    else:
        row["cumQuote"] = fmt_step(_quote(instrument, order), Decimal("0.00001"))
    row.update(
        timeInForce=order.extra.get("tif", order.time_in_force),
        type=order_type,
        reduceOnly=order.reduce_only,
        closePosition=False,
        side=order.side.upper(),
        positionSide=order.position_side.upper(),
        stopPrice="0",
        workingType=order.extra.get("workingType", "CONTRACT_PRICE"),
        priceProtect=False,
        origType=order_type,
        priceMatch="NONE",
        selfTradePreventionMode=order.extra.get("stp", "EXPIRE_MAKER"),
        goodTillDate=0,
        time=order.created_ms,
        updateTime=order.updated_ms,
    )
    return row


def user_trade(instrument: Instrument, fill: Fill, order: Order | None) -> dict[str, Any]:
    quote = (
        fill.qty * instrument.contract_size / fill.price
        if instrument.linear is False
        else fill.qty * instrument.contract_size * fill.price
    )
    return {
        "buyer": fill.side == "buy",
        "commission": _money(fill.fee),
        "commissionAsset": fill.fee_asset,
        "id": fill.trade_id,
        "maker": fill.maker,
        "orderId": fill.order_id,
        "price": fmt_price(instrument, fill.price),
        "qty": fmt_qty(instrument, fill.qty),
        "quoteQty" if instrument.linear is not False else "baseQty": _money(quote),
        "marginAsset": fill.fee_asset,
        "realizedPnl": _money(fill.realised_pnl),
        "side": fill.side.upper(),
        "positionSide": (order.position_side if order else "both").upper(),
        "symbol": instrument.id,
        "time": fill.ts_ms,
    }


def income_row(instrument: Instrument | None, line: Income) -> dict[str, Any]:
    return {
        "symbol": instrument.id if instrument else "",
        "incomeType": line.kind,
        "income": _money(line.amount),
        "asset": line.asset,
        "info": line.kind,
        "time": line.ts_ms,
        "tranId": line.id,
        "tradeId": str(line.trade_id or ""),
    }


def position_update(position: Position, mark: Decimal) -> dict[str, Any]:
    """One ``P`` entry of an ``ACCOUNT_UPDATE`` event."""
    return {
        "s": position.instrument.id,
        "pa": fmt_qty(position.instrument, position.size),
        "ep": _price8(position.entry_price),
        "bep": _price8(position.entry_price),
        "cr": _money(position.realised_pnl),
        "up": _money(position.unrealised_pnl(mark)),
        "mt": "isolated" if position.margin_mode == "isolated" else "cross",
        "iw": _money(position.margin if position.margin_mode == "isolated" else Decimal(0)),
        "ps": position.side.upper(),
    }
