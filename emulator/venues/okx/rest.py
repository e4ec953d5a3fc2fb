"""OKX REST v5 (``www.okx.com/api/v5``): public market data, account, spot and derivatives trading (positions
and settings in :mod:`emulator.venues.okx.derivatives`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from emulator.accounts import Account
from emulator.catalogue import Instrument, Kind, load_json
from emulator.engine import Engine
from emulator.market import Market
from emulator.orders import Order, OrderRejected, Reject, Status
from emulator.routing import Router, VenueRequest
from emulator.venues.okx import shapes
from emulator.venues.okx.derivatives import OkxDerivatives
from emulator.venues.okx.instruments import INST_TYPES, VENUE
from emulator.venues.okx.protocol import (
    REJECTIONS,
    TIMESTAMP_TOLERANCE_MS,
    OkxError,
    empty,
    json_response,
    no_instrument,
    num,
    ok,
    param_error,
    parse_iso_ms,
    signature_matches,
)

REST_HOSTS = ("www.okx.com", "aws.okx.com", "my.okx.com")
ALL_KINDS: tuple[Kind, ...] = ("spot", "swap", "future", "option")
CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
ORDER_TYPES = {"market", "limit", "post_only", "fok", "ioc", "optimal_limit_ioc"}
TD_MODES = {"cash", "cross", "isolated", "spot_isolated"}
MAX_BATCH = 20
STABLE = {"USDT", "USDC", "USD"}


@dataclass
class Call:
    """One parsed request: query parameters, JSON body (object or array), authenticated key."""

    request: VenueRequest
    params: dict[str, str]
    body: Any
    key: str | None


Handler = Callable[[Call], Any]


class OkxRest:
    """Route table and handlers. Handlers return the ``data`` list (or a full response) or raise
    :class:`OkxError` / :class:`OrderRejected`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.derivatives = OkxDerivatives(self)

    # --- plumbing -----------------------------------------------------------------------------------------

    def install(self, router: Router) -> None:
        public: list[tuple[str, Handler]] = [
            ("/public/time", self.time),
            ("/system/status", self.system_status),
            ("/public/instruments", self.instruments),
            ("/market/ticker", self.ticker),
            ("/market/tickers", self.tickers),
            ("/market/books", self.books),
            ("/market/books-full", self.books),
            ("/market/trades", self.trades),
            ("/market/history-trades", self.history_trades),
            ("/public/option-trades", self.option_trades),
            ("/market/candles", self.candles),
            ("/market/history-candles", self.candles),
            ("/public/funding-rate", self.funding_rate),
            ("/public/funding-rate-history", self.funding_rate_history),
            ("/public/mark-price", self.mark_price),
            ("/public/opt-summary", self.opt_summary),
        ]
        for path, handler in public:
            self._add(router, "GET", path, handler, signed=False)
        private: list[tuple[str, str, Handler]] = [
            ("GET", "/account/balance", self.balance),
            ("GET", "/account/config", self.config),
            ("GET", "/account/trade-fee", self.trade_fee),
            ("GET", "/asset/currencies", self.currencies),
            ("GET", "/asset/balances", self.funding_balances),
            ("POST", "/trade/order", self.place_order),
            ("POST", "/trade/batch-orders", self.place_batch),
            ("GET", "/trade/order", self.get_order),
            ("POST", "/trade/cancel-order", self.cancel_order),
            ("POST", "/trade/cancel-batch-orders", self.cancel_batch),
            ("GET", "/trade/orders-pending", self.orders_pending),
            ("GET", "/trade/orders-history", self.orders_history),
            ("GET", "/trade/orders-history-archive", self.orders_history),
            ("GET", "/trade/fills", self.fills),
            ("GET", "/trade/fills-history", self.fills),
        ]
        private += self.derivatives.routes()
        for method, path, handler in private:
            self._add(router, method, path, handler, signed=True)

    def _add(self, router: Router, method: str, path: str, handler: Handler, signed: bool) -> None:
        async def endpoint(request: VenueRequest) -> web.StreamResponse:
            try:
                key = self.authenticate(request) if signed else None
                if key is not None and method == "POST" and not self.engine.accounts[key].can_trade:
                    # Every POST is a write; what OKX answers a read-only key.
                    raise OkxError("50120", "API key doesn't have permission", status=401)
                body: Any = None
                if request.body:
                    try:
                        body = orjson.loads(request.body)
                    except orjson.JSONDecodeError:
                        raise OkxError("50002", "JSON syntax error", status=400) from None
                result = handler(Call(request, dict(request.query()), body, key))
                return result if isinstance(result, web.StreamResponse) else ok(result)
            except OrderRejected as rejected:
                code, msg = REJECTIONS[rejected.reason]
                return OkxError(code, msg).response()
            except OkxError as error:
                return error.response()

        router.add(VENUE, REST_HOSTS, method, "/api/v5" + path, endpoint, signed=signed)

    def authenticate(self, request: VenueRequest) -> str:
        """OK-ACCESS-KEY / -PASSPHRASE / -TIMESTAMP / -SIGN, checked in OKX's order; returns the key."""
        headers = request.headers
        key = headers.get("OK-ACCESS-KEY", "")
        if not key:
            raise OkxError("50103", "Request header OK-ACCESS-KEY can not be empty.", status=401)
        request.api_key = key
        signature = headers.get("OK-ACCESS-SIGN", "")
        timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
        passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
        if not signature:
            raise OkxError("50106", "Request header OK-ACCESS-SIGN can not be empty.", status=401)
        if not timestamp:
            raise OkxError("50107", "Request header OK-ACCESS-TIMESTAMP can not be empty.", status=401)
        if not passphrase:
            raise OkxError("50104", "Request header OK-ACCESS-PASSPHRASE can not be empty.", status=401)
        sent_ms = parse_iso_ms(timestamp)
        if sent_ms is None:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", status=401)
        if abs(self.engine.clock.now_ms() - sent_ms) > TIMESTAMP_TOLERANCE_MS:
            raise OkxError("50102", "Timestamp request expired", status=401)
        account = self.engine.accounts.get(key)
        if account is None:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY", status=401)
        if account.passphrase is not None and passphrase != account.passphrase:
            raise OkxError("50105", "OK-ACCESS-PASSPHRASE incorrect", status=401)
        query = request.raw_query_string or request.query_string
        prehash = timestamp + request.method + request.path + (f"?{query}" if query else "") + request.body
        if not signature_matches(account.secret, prehash, signature):
            raise OkxError("50113", "Invalid Sign", status=401)
        return key

    # --- helpers ------------------------------------------------------------------------------------------

    def instrument(self, inst_id: str | None, name: str = "instId") -> Instrument:
        if not inst_id:
            raise empty(name)
        found = self.engine.catalogue.by_id(VENUE, inst_id, ALL_KINDS)
        if found is None:
            raise no_instrument()
        return found

    def market(self, instrument: Instrument) -> Market:
        return self.engine.market(VENUE, instrument.symbol)

    def now(self) -> int:
        return self.engine.clock.now_ms()

    def listed(self, params: dict[str, str], required: bool = True) -> list[Instrument]:
        """Instruments selected by instType (+ uly / instFamily / instId)."""
        type_name = params.get("instType", "")
        if not type_name:
            if required:
                raise empty("instType")
            kinds: tuple[Kind, ...] = ALL_KINDS
        elif type_name not in INST_TYPES:
            raise param_error("instType")
        else:
            kinds = (INST_TYPES[type_name],)
        family = params.get("instFamily") or params.get("uly")
        if kinds == ("option",) and not family and not params.get("instId"):
            raise empty("instFamily")
        result = []
        for instrument in self.engine.catalogue.of(VENUE, *kinds):
            if family and instrument.raw.get("instFamily") != family:
                continue
            if params.get("instId") and instrument.id != params["instId"]:
                continue
            result.append(instrument)
        return result

    @staticmethod
    def limit(params: dict[str, str], default: int, maximum: int) -> int:
        raw = params.get("limit", "")
        if not raw:
            return default
        if not raw.isdigit() or int(raw) <= 0:
            raise param_error("limit")
        return min(int(raw), maximum)

    @staticmethod
    def integer(params: dict[str, str], name: str) -> int | None:
        raw = params.get(name, "")
        if not raw:
            return None
        if not raw.lstrip("-").isdigit():
            raise param_error(name)
        return int(raw)

    # --- public -------------------------------------------------------------------------------------------

    def time(self, _call: Call) -> Any:
        return [{"ts": str(self.now())}]

    def system_status(self, _call: Call) -> Any:
        return []  # no maintenance scheduled

    def instruments(self, call: Call) -> Any:
        return [i.raw for i in self.listed(call.params)]

    def ticker(self, call: Call) -> Any:
        instrument = self.instrument(call.params.get("instId"))
        return [shapes.ticker(instrument, self.market(instrument), self.now())]

    def tickers(self, call: Call) -> Any:
        now = self.now()
        return [shapes.ticker(i, self.market(i), now) for i in self.listed(call.params)]

    def books(self, call: Call) -> Any:
        instrument = self.instrument(call.params.get("instId"))
        full = call.request.path.endswith("books-full")
        depth = self.integer(call.params, "sz") or (5000 if full else 1)
        if depth <= 0:
            raise param_error("sz")
        depth = min(depth, 5000 if full else 400)
        book = self.market(instrument).book
        return [
            {
                "asks": shapes.book_rows(instrument, book.levels("sell", depth)),
                "bids": shapes.book_rows(instrument, book.levels("buy", depth)),
                "ts": str(book.ts_ms or self.now()),
            }
        ]

    def trades(self, call: Call) -> Any:
        instrument = self.instrument(call.params.get("instId"))
        limit = self.limit(call.params, 100, 500)
        recent = list(self.market(instrument).trades)[-limit:]
        return [shapes.trade(instrument, t) for t in reversed(recent)]

    def history_trades(self, call: Call) -> Any:
        """Pagination by tradeId (``type=1``, default) or timestamp (``type=2``): ``after`` older, ``before``
        newer than the given value."""
        instrument = self.instrument(call.params.get("instId"))
        limit = self.limit(call.params, 100, 100)
        after, before = self.integer(call.params, "after"), self.integer(call.params, "before")
        by_time = call.params.get("type") == "2"
        trades = list(self.market(instrument).trades)
        value = (lambda t: t.ts_ms) if by_time else (lambda t: t.id)
        trades = [
            t for t in trades if (after is None or value(t) < after) and (before is None or value(t) > before)
        ]
        return [shapes.trade(instrument, t) for t in reversed(trades[-limit:])]

    def option_trades(self, call: Call) -> Any:
        instrument = self.instrument(call.params.get("instId") or None)
        if instrument.kind != "option":
            raise no_instrument()
        market = self.market(instrument)
        return [
            {
                "fillVol": "0.6",
                "fwdPx": shapes.px(instrument, market.index_price),
                "idxPx": shapes.px(instrument, market.index_price),
                "instFamily": instrument.raw.get("instFamily", ""),
                "instId": instrument.id,
                "markPx": shapes.px(instrument, market.mark_price),
                "optType": instrument.option_type,
                "px": shapes.px(instrument, t.price),
                "side": t.taker_side,
                "sz": shapes.sz(instrument, t.qty),
                "tradeId": str(t.id),
                "ts": str(t.ts_ms),
            }
            for t in reversed(list(market.trades)[-100:])
        ]

    def candles(self, call: Call) -> Any:
        """Newest first; ``after``: older than, ``before``: newer than (OKX's pagination). The newest bucket
        is the live one (``confirm`` "0")."""
        instrument = self.instrument(call.params.get("instId"))
        bar = call.params.get("bar") or "1m"
        limit = self.limit(call.params, 100, 300)
        after, before = self.integer(call.params, "after"), self.integer(call.params, "before")
        market, now = self.market(instrument), self.now()
        if bar in shapes.MONTH_BARS:
            rows = shapes.month_candles(market, shapes.MONTH_BARS[bar], now, 1000)
            live = rows[-1][0] if rows else None
            picked = [
                (ts, c) for ts, c in rows if (after is None or ts < after) and (before is None or ts > before)
            ][-limit:]
            return [shapes.candle_row(instrument, c, ts != live) for ts, c in reversed(picked)]
        tf_ms = shapes.BARS.get(bar)
        if tf_ms is None:
            raise param_error("bar")
        end = after - 1 if after is not None else None
        candles = market.candles(tf_ms, now, end_ms=end, limit=limit)
        if before is not None:
            candles = [c for c in candles if c.open_ms > before]
        live = shapes.bucket_start(now, tf_ms)
        return [shapes.candle_row(instrument, c, c.open_ms != live) for c in reversed(candles)]

    def funding_rate(self, call: Call) -> Any:
        inst_id = call.params.get("instId", "")
        now = self.now()
        if inst_id == "ANY":
            swaps = self.engine.catalogue.of(VENUE, "swap")
            return [shapes.funding_rate(i, self.market(i), now) for i in swaps]
        instrument = self.instrument(inst_id)
        if instrument.kind != "swap":
            raise OkxError("51000", "Parameter instId error", status=400)
        return [shapes.funding_rate(instrument, self.market(instrument), now)]

    def funding_rate_history(self, call: Call) -> Any:
        instrument = self.instrument(call.params.get("instId"))
        if instrument.kind != "swap":
            raise OkxError("51000", "Parameter instId error", status=400)
        limit = self.limit(call.params, 100, 400)
        after, before = self.integer(call.params, "after"), self.integer(call.params, "before")
        history = self.market(instrument).funding_history(self.now(), 400)
        picked = [
            (ts, rate)
            for ts, rate in history
            if (after is None or ts < after) and (before is None or ts > before)
        ]
        picked = picked[:limit] if before is not None and after is None else picked[-limit:]
        return [
            {
                "formulaType": "withRate",
                "fundingRate": num(rate),
                "fundingTime": str(ts),
                "instId": instrument.id,
                "instType": "SWAP",
                "method": "current_period",
                "realizedRate": num(rate),
            }
            for ts, rate in reversed(picked)
        ]

    def mark_price(self, call: Call) -> Any:
        params = dict(call.params)
        if params.get("instType") in ("SPOT", "MARGIN"):
            raise param_error("instType")
        now = self.now()
        return [
            {
                "instType": shapes.inst_type(i),
                "instId": i.id,
                "markPx": shapes.px(i, self.market(i).mark_price),
                "ts": str(now),
            }
            for i in self.listed(params, required=not params.get("instId"))
            if i.kind != "spot"
        ]

    def opt_summary(self, call: Call) -> Any:
        params = call.params
        family = params.get("instFamily") or params.get("uly")
        if not family:
            raise empty("instFamily")
        expiry = params.get("expTime", "")
        now = self.now()
        return [
            shapes.greeks(i, self.market(i), now)
            for i in self.engine.catalogue.of(VENUE, "option")
            if i.raw.get("instFamily") == family and (not expiry or i.id.split("-")[2] == expiry)
        ]

    # --- account ------------------------------------------------------------------------------------------

    def usd_price(self, ccy: str) -> Decimal:
        if ccy in STABLE:
            return Decimal(1)
        instrument = self.engine.catalogue.get(VENUE, f"{ccy}/USDT")
        return self.market(instrument).last_price if instrument else Decimal(0)

    def balance(self, call: Call) -> Any:
        assert call.key is not None
        return self.balance_data(call.key, {c for c in call.params.get("ccy", "").split(",") if c})

    def balance_data(self, key: str, wanted: set[str]) -> list[dict[str, Any]]:
        """``account/balance`` data (also the ``account`` channel): non-zero currencies, or ``wanted``.

        Derivatives count in their settle currency: ``cashBal`` holds the margin locked for positions
        and orders (``frozenBal``, of which ``ordFrozen`` for orders), ``upl`` the positions' unrealised
        PnL at the mark price, ``eq`` = ``cashBal`` + ``upl``; ``imr``/``mmr`` cross margin, ``isoEq``
        isolated equity."""
        now = self.now()
        eight = Decimal("0.00000001")
        figures: dict[str, dict[str, Decimal]] = {}
        for position in self.engine.positions(VENUE, key):
            mark = self.engine.market(VENUE, position.symbol).mark_price
            row = figures.setdefault(position.settle, dict.fromkeys(shapes.DERIVATIVE_FIGURES, Decimal(0)))
            upl = position.unrealised_pnl(mark)
            row["upl"] += upl
            row["mmr"] += position.maintenance_margin(mark)
            row["notional"] += position.notional(mark)
            if position.margin_mode == "isolated":
                row["isoEq"] += position.margin + upl
                row["isoUpl"] += upl
            else:
                row["imr"] += position.initial_margin(mark)
        for order in self.engine.ledger(VENUE, key).open_orders():
            if order.locked > 0 and order.locked_asset:
                row = figures.setdefault(
                    order.locked_asset, dict.fromkeys(shapes.DERIVATIVE_FIGURES, Decimal(0))
                )
                row["ordFrozen"] += order.locked
        balances = self.engine.wallet(VENUE, key).balances
        details = [
            shapes.balance_detail(ccy, b.free, b.locked, self.usd_price(ccy), now, figures.get(ccy))
            for ccy, b in sorted(balances.items())
            if (b.total > 0 or ccy in wanted or ccy in figures) and (not wanted or ccy in wanted)
        ]
        total_usd = sum((Decimal(d["eqUsd"]) for d in details), Decimal(0))
        frozen_usd = sum(
            (Decimal(d["frozenBal"]) * self.usd_price(d["ccy"]) for d in details), Decimal(0)
        ).quantize(eight)

        def usd(name: str) -> str:
            value = sum((row[name] * self.usd_price(ccy) for ccy, row in figures.items()), Decimal(0))
            return num(value.quantize(eight))

        derivatives = bool(figures) and any(row["notional"] for row in figures.values())
        return [
            {
                "adjEq": "",
                "availEq": "",
                "borrowFroz": "",
                "details": details,
                "imr": usd("imr") if derivatives else "",
                "isoEq": usd("isoEq"),
                "mgnRatio": "",
                "mmr": usd("mmr") if derivatives else "",
                "notionalUsd": usd("notional") if derivatives else "",
                "notionalUsdForBorrow": "",
                "notionalUsdForFutures": "",
                "notionalUsdForOption": "",
                "notionalUsdForSwap": "",
                "ordFroz": num(frozen_usd),
                "totalEq": num(total_usd),
                "uTime": str(now),
                "upl": usd("upl"),
            }
        ]

    def funding_balances(self, _call: Call) -> Any:
        return []  # everything sits in the trading account; the funding account is empty

    @staticmethod
    def uid(key: str) -> str:
        return str(int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "big"))

    def config(self, call: Call) -> Any:
        assert call.key is not None
        uid = self.uid(call.key)
        return [
            {
                "acctLv": "2",
                "acctStpMode": "cancel_maker",
                "autoLoan": False,
                "ctIsoMode": "automatic",
                "enableSpotBorrow": False,
                "greeksType": "PA",
                "feeType": "0",
                "ip": "",
                "type": "0",
                "kycLv": "2",
                "label": "emulator",
                "level": "Lv1",
                "levelTmp": "",
                "liquidationGear": "-1",
                "mainUid": uid,
                "mgnIsoMode": "automatic",
                "opAuth": "0",
                "perm": perm(self.engine.accounts[call.key]),
                "posMode": "long_short_mode"
                if self.engine.derivatives(VENUE, call.key).hedged
                else "net_mode",
                "roleType": "0",
                "spotBorrowAutoRepay": False,
                "spotOffsetType": "",
                "spotRoleType": "0",
                "spotTraderInsts": [],
                "traderInsts": [],
                "uid": uid,
                "settleCcy": "USDT",
                "settleCcyList": ["USD", "USDC", "USDG"],
            }
        ]

    def trade_fee(self, call: Call) -> Any:
        type_name = call.params.get("instType", "")
        if not type_name:
            raise empty("instType")
        if type_name not in INST_TYPES and type_name != "MARGIN":
            raise param_error("instType")
        maker, taker = ("-0.0008", "-0.001") if type_name in ("SPOT", "MARGIN") else ("-0.0002", "-0.0005")
        return [
            {
                "category": "1",
                "delivery": "",
                "exercise": "",
                "fiat": [],
                "instType": type_name,
                "level": "Lv1",
                "maker": maker,
                "makerU": maker if type_name != "SPOT" else "",
                "makerUSDC": maker,
                "taker": taker,
                "takerU": taker if type_name != "SPOT" else "",
                "takerUSDC": taker,
                "ts": str(self.now()),
            }
        ]

    def currencies(self, call: Call) -> Any:
        wanted = {c for c in call.params.get("ccy", "").split(",") if c}
        return [chain for ccy, chain in currency_chains(self.engine) if not wanted or ccy in wanted]

    # --- orders -------------------------------------------------------------------------------------------

    def _trade_response(self, items: list[dict[str, Any]]) -> web.Response:
        failed = sum(1 for item in items if item["sCode"] != "0")
        if not failed:
            code, msg = "0", ""
        elif failed == len(items):
            code, msg = "1", "All operations failed"
        else:
            code, msg = "2", "Batch operation partially succeeded"
        now_us = str(self.engine.clock.now_us())
        return json_response({"code": code, "data": items, "inTime": now_us, "msg": msg, "outTime": now_us})

    def _place(self, key: str, item: Any) -> dict[str, Any]:
        """Place one order; any rejection becomes the item's sCode/sMsg."""
        client_id = str(item.get("clOrdId", "")) if isinstance(item, dict) else ""
        tag = str(item.get("tag", "")) if isinstance(item, dict) else ""
        answer = {"clOrdId": client_id, "ordId": "", "sCode": "0", "sMsg": "Order placed", "tag": tag}
        try:
            if not isinstance(item, dict):
                raise OkxError("50002", "JSON syntax error")
            request = self._order_request(key, item)
            mode = request.pop("margin_mode", None)
            if mode is not None:
                self.derivatives.use_margin_mode(key, self.instrument(item.get("instId")), mode, order=True)
            order = self.engine.place_order(VENUE, key, **request)
            answer["ordId"] = str(order.id)
        except OrderRejected as rejected:
            answer["sCode"], answer["sMsg"] = REJECTIONS[rejected.reason]
        except OkxError as error:
            answer["sCode"], answer["sMsg"] = error.code, error.msg
        answer["ts"] = str(self.now())
        return answer

    def _order_request(self, key: str, item: dict[str, Any]) -> dict[str, Any]:
        """Parse one OKX order object into :meth:`Engine.place_order` keyword arguments."""

        def text(name: str) -> str:
            value = item.get(name)
            return "" if value is None else str(value)

        instrument = self.instrument(text("instId"))
        td_mode = text("tdMode")
        if not td_mode:
            raise empty("tdMode")
        if td_mode not in TD_MODES:
            raise param_error("tdMode")
        side = text("side")
        if side not in ("buy", "sell"):
            raise empty("side") if not side else param_error("side")
        ord_type = text("ordType")
        if ord_type not in ORDER_TYPES:
            raise empty("ordType") if not ord_type else param_error("ordType")
        size = _decimal(text("sz"), "sz")
        if size is None:
            raise empty("sz")
        price = _decimal(text("px"), "px")
        if ord_type in ("limit", "post_only", "fok", "ioc") and price is None:
            raise empty("px")
        client_id = text("clOrdId")
        if client_id and not CLIENT_ID.match(client_id):
            raise param_error("clOrdId")
        if item.get("attachAlgoOrds"):
            raise OkxError("51000", "Parameter attachAlgoOrds error (TP/SL are not emulated)")
        market_like = ord_type in ("market", "optimal_limit_ioc")
        tgt_ccy = text("tgtCcy")
        amount: Decimal | None = size
        quote: Decimal | None = None
        if instrument.kind == "spot" and market_like:
            # Spot market orders: sz is in quote currency for buys and base for sells unless tgtCcy says so.
            in_quote = tgt_ccy == "quote_ccy" or (not tgt_ccy and side == "buy")
            if in_quote:
                amount, quote = None, size
        reduce_only = str(item.get("reduceOnly", "")).lower() == "true"
        contract, pos_side = self.derivatives.order_fields(
            key, instrument, td_mode, text("posSide"), reduce_only
        )
        return dict(
            **contract,
            symbol=instrument.symbol,
            side=side,
            type="market" if market_like else "limit",
            amount=amount,
            price=None if market_like else price,
            quote_amount=quote,
            client_id=client_id or None,
            time_in_force={"fok": "FOK", "ioc": "IOC", "optimal_limit_ioc": "IOC"}.get(ord_type, "GTC"),
            post_only=ord_type == "post_only",
            extra={
                "clOrdId": client_id,
                "tag": text("tag"),
                "ordType": ord_type,
                "tdMode": td_mode,
                "tgtCcy": tgt_ccy if instrument.kind == "spot" else "",
                "sz": text("sz"),
                "posSide": pos_side,
                "reduceOnly": reduce_only,
                "lever": num(self.engine.derivatives(VENUE, key).leverage_of(instrument.symbol))
                if instrument.contract
                else "",
                "stpMode": text("stpMode") or "cancel_maker",
            },
        )

    def place_order(self, call: Call) -> Any:
        assert call.key is not None
        if not isinstance(call.body, dict):
            raise OkxError("50002", "JSON syntax error", status=400)
        return self._trade_response([self._place(call.key, call.body)])

    def place_batch(self, call: Call) -> Any:
        assert call.key is not None
        body = call.body
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not body:
            raise OkxError("50002", "JSON syntax error", status=400)
        if len(body) > MAX_BATCH:
            raise OkxError("51111", f"Maximum {MAX_BATCH} orders can be placed in bulk")
        return self._trade_response([self._place(call.key, item) for item in body])

    def _find(self, key: str, params: Any) -> Order:
        def text(name: str) -> str:
            value = params.get(name)
            return "" if value is None else str(value)

        instrument = self.instrument(text("instId"))
        order_id, client_id = text("ordId"), text("clOrdId")
        if not order_id and not client_id:
            raise OkxError("51003", "Either client order ID or order ID is required.", status=400)
        if order_id and not order_id.isdigit():
            raise param_error("ordId")
        return self.engine.find_order(
            VENUE, key, instrument.symbol, int(order_id) if order_id else None, client_id or None
        )

    def get_order(self, call: Call) -> Any:
        assert call.key is not None
        order = self._find(call.key, call.params)
        return [shapes.order(order, self.instrument(call.params["instId"]))]

    def _cancel(self, key: str, item: Any) -> dict[str, Any]:
        params = item if isinstance(item, dict) else {}
        answer = {
            "clOrdId": str(params.get("clOrdId", "") or ""),
            "ordId": str(params.get("ordId", "") or ""),
            "sCode": "0",
            "sMsg": "",
        }
        try:
            order = self._find(key, params)
            answer["ordId"], answer["clOrdId"] = str(order.id), order.extra.get("clOrdId", "")
            if order.status == Status.FILLED:
                raise OkxError("51402", "Order cancellation failed as the order has been completed.")
            if not order.is_open:
                raise OkxError("51401", "Order cancellation failed as the order has been canceled.")
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        except OrderRejected as rejected:
            code, msg = REJECTIONS[rejected.reason]
            answer["sCode"], answer["sMsg"] = (
                ("51400", REJECTIONS[Reject.ORDER_NOT_OPEN][1])
                if (rejected.reason == Reject.ORDER_NOT_FOUND)
                else (code, msg)
            )
        except OkxError as error:
            answer["sCode"], answer["sMsg"] = error.code, error.msg
        answer["ts"] = str(self.now())
        return answer

    def cancel_order(self, call: Call) -> Any:
        assert call.key is not None
        if not isinstance(call.body, dict):
            raise OkxError("50002", "JSON syntax error", status=400)
        return self._trade_response([self._cancel(call.key, call.body)])

    def cancel_batch(self, call: Call) -> Any:
        assert call.key is not None
        if not isinstance(call.body, list) or not call.body:
            raise OkxError("50002", "JSON syntax error", status=400)
        if len(call.body) > MAX_BATCH:
            raise OkxError("51111", f"Maximum {MAX_BATCH} orders can be canceled in bulk")
        return self._trade_response([self._cancel(call.key, item) for item in call.body])

    def _orders(self, key: str, params: dict[str, str], open_only: bool) -> list[Order]:
        kinds = (INST_TYPES[params["instType"]],) if params.get("instType") in INST_TYPES else ALL_KINDS
        if params.get("instType") and params["instType"] not in INST_TYPES:
            raise param_error("instType")
        inst_id = params.get("instId")
        instrument = self.instrument(inst_id) if inst_id else None
        state, ord_type = params.get("state"), params.get("ordType")
        after, before = self.integer(params, "after"), self.integer(params, "before")
        begin, end = self.integer(params, "begin"), self.integer(params, "end")
        family = params.get("instFamily") or params.get("uly")
        catalogue = self.engine.catalogue
        result = []
        for order in sorted(self.engine.ledger(VENUE, key).orders.values(), key=lambda o: o.id, reverse=True):
            if order.is_open != open_only:
                continue
            inst = catalogue.get(VENUE, order.symbol)
            if inst is None or inst.kind not in kinds or (instrument is not None and inst is not instrument):
                continue
            if family and inst.raw.get("instFamily") != family:
                continue
            if state and shapes.order_state(order) not in state.split(","):
                continue
            if ord_type and order.extra.get("ordType", order.type) not in ord_type.split(","):
                continue
            if (after is not None and order.id >= after) or (before is not None and order.id <= before):
                continue
            if (begin is not None and order.created_ms < begin) or (
                end is not None and order.created_ms > end
            ):
                continue
            result.append(order)
        return result[: self.limit(params, 100, 100)]

    def orders_pending(self, call: Call) -> Any:
        assert call.key is not None
        return [self._order_json(o) for o in self._orders(call.key, call.params, open_only=True)]

    def orders_history(self, call: Call) -> Any:
        assert call.key is not None
        if not call.params.get("instType"):
            raise empty("instType")
        return [self._order_json(o) for o in self._orders(call.key, call.params, open_only=False)]

    def _order_json(self, order: Order) -> dict[str, Any]:
        instrument = self.engine.catalogue.get(VENUE, order.symbol)
        assert instrument is not None
        return shapes.order(order, instrument)

    def fills(self, call: Call) -> Any:
        assert call.key is not None
        params = call.params
        if call.request.path.endswith("fills-history") and not params.get("instType"):
            raise empty("instType")
        if params.get("instType") and params["instType"] not in INST_TYPES:
            raise param_error("instType")
        kinds = (INST_TYPES[params["instType"]],) if params.get("instType") else ALL_KINDS
        instrument = self.instrument(params["instId"]) if params.get("instId") else None
        order_id = self.integer(params, "ordId")
        after, before = self.integer(params, "after"), self.integer(params, "before")
        begin, end = self.integer(params, "begin"), self.integer(params, "end")
        ledger = self.engine.ledger(VENUE, call.key)
        catalogue = self.engine.catalogue
        result = []
        for index in range(len(ledger.fills) - 1, -1, -1):
            fill, bill = ledger.fills[index], shapes.bill_id(index)
            inst = catalogue.get(VENUE, fill.symbol)
            if inst is None or inst.kind not in kinds or (instrument is not None and inst is not instrument):
                continue
            if order_id is not None and fill.order_id != order_id:
                continue
            if (after is not None and bill >= after) or (before is not None and bill <= before):
                continue
            if (begin is not None and fill.ts_ms < begin) or (end is not None and fill.ts_ms > end):
                continue
            result.append(shapes.fill(fill, bill, ledger.orders.get(fill.order_id), inst))
            if len(result) >= self.limit(params, 100, 100):
                break
        return result


def _decimal(raw: str, name: str) -> Decimal | None:
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise param_error(name) from None
    if not value.is_finite() or value <= 0:
        raise param_error(name)
    return value


def currency_chains(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    """``asset/currencies`` rows: every recorded chain of every recorded currency, plus one plain chain for
    each listed asset the recording lacks (so CCXT knows every currency a market uses)."""
    recorded: dict[str, dict[str, Any]] = load_json("currencies", VENUE)
    rows = [
        (code, network["info"]) for code, entry in recorded.items() for network in entry["networks"].values()
    ]
    known = {code for code, _ in rows}
    for asset in sorted(engine.assets(VENUE) - known - {"USD"}):
        rows.append(
            (
                asset,
                {
                    "canDep": True,
                    "canInternal": True,
                    "canWd": True,
                    "ccy": asset,
                    "chain": f"{asset}-{asset}",
                    "logoLink": "",
                    "mainNet": True,
                    "maxFee": "0",
                    "maxWd": "1000000000",
                    "minDep": "0",
                    "minFee": "0",
                    "minWd": "0",
                    "name": asset,
                    "needTag": False,
                    "usedWdQuota": "0",
                    "wdQuota": "10000000",
                    "wdTickSz": "8",
                },
            )
        )
    return rows


def perm(account: Account) -> str:
    """``account/config`` ``perm``: ``read_only`` plus ``trade`` / ``withdraw`` when the key has them."""
    granted = account.permissions or ()
    return ",".join(["read_only"] + [p for p in ("trade", "withdraw") if p in granted])
