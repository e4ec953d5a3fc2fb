"""Binance REST: spot ``/api/v3``, wallet ``/sapi/v1``, USDⓈ-M ``/fapi/v1``, COIN-M ``/dapi/v1``."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any

from emulator.catalogue import Instrument, load_json
from emulator.engine import Engine
from emulator.market import Candle, Market, Trade
from emulator.orders import Fill, Order, OrderRejected
from emulator.routing import Router, VenueRequest
from emulator.venues.binance.instruments import COINM, SPOT, USDM, VENUE, Section, exchange_info
from emulator.venues.binance.protocol import (
    INTERVALS_MS,
    MAX_RECV_WINDOW,
    BinanceError,
    Params,
    fmt_price,
    fmt_qty,
    fmt_spot,
    json_response,
    mandatory,
    rejection,
    verify_signature,
)

SPOT_HOSTS = ("api.binance.com", "testnet.binance.vision")  # the spot testnet speaks the same API
USDM_HOSTS = ("fapi.binance.com",)
COINM_HOSTS = ("dapi.binance.com",)
SIGNED = frozenset({"timestamp", "recvWindow", "signature"})

Handler = Callable[[Section, Params, str | None], Any]


def _f(value: Decimal) -> str:
    return fmt_spot(value)


class BinanceRest:
    """Route table and handlers. Handlers return JSON-able data or raise :class:`BinanceError`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- plumbing -----------------------------------------------------------------------------------------

    def install(self, router: Router) -> None:
        spot: list[tuple[str, str, Handler, AbstractSet[str], bool]] = [
            ("GET", "/ping", self.ping, set(), False),
            ("GET", "/time", self.time, set(), False),
            (
                "GET",
                "/exchangeInfo",
                self.exchange_info,
                {"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"},
                False,
            ),
            ("GET", "/depth", self.depth, {"symbol", "limit"}, False),
            ("GET", "/trades", self.trades, {"symbol", "limit"}, False),
            (
                "GET",
                "/aggTrades",
                self.agg_trades,
                {"symbol", "fromId", "startTime", "endTime", "limit"},
                False,
            ),
            (
                "GET",
                "/klines",
                self.klines,
                {"symbol", "interval", "startTime", "endTime", "timeZone", "limit"},
                False,
            ),
            (
                "GET",
                "/uiKlines",
                self.klines,
                {"symbol", "interval", "startTime", "endTime", "timeZone", "limit"},
                False,
            ),
            ("GET", "/ticker/24hr", self.ticker_24hr, {"symbol", "symbols", "type"}, False),
            ("GET", "/ticker", self.ticker_24hr, {"symbol", "symbols", "type", "windowSize"}, False),
            ("GET", "/ticker/price", self.ticker_price, {"symbol", "symbols"}, False),
            ("GET", "/ticker/bookTicker", self.book_ticker, {"symbol", "symbols"}, False),
            ("GET", "/account", self.account, {"omitZeroBalances"}, True),
            ("POST", "/order", self.create_order, ORDER_PARAMS, True),
            ("POST", "/order/test", self.test_order, ORDER_PARAMS | {"computeCommissionRates"}, True),
            ("GET", "/order", self.get_order, {"symbol", "orderId", "origClientOrderId"}, True),
            (
                "DELETE",
                "/order",
                self.cancel_order,
                {"symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions"},
                True,
            ),
            ("GET", "/openOrders", self.open_orders, {"symbol"}, True),
            ("DELETE", "/openOrders", self.cancel_all, {"symbol"}, True),
            (
                "GET",
                "/allOrders",
                self.all_orders,
                {"symbol", "orderId", "startTime", "endTime", "limit"},
                True,
            ),
            (
                "GET",
                "/myTrades",
                self.my_trades,
                {"symbol", "orderId", "startTime", "endTime", "fromId", "limit"},
                True,
            ),
        ]
        for method, path, handler, params, signed in spot:
            self._add(router, SPOT_HOSTS, method, "/api/v3" + path, SPOT, handler, params, signed)
        sapi: list[tuple[str, Handler, set[str], bool]] = [
            ("/system/status", self.system_status, set(), False),
            ("/capital/config/getall", self.currencies, set(), True),
            ("/margin/allPairs", self.margin_pairs, {"symbol"}, True),
            ("/margin/isolated/allPairs", self.margin_pairs, {"symbol"}, True),
        ]
        for path, handler, params, signed in sapi:
            self._add(router, SPOT_HOSTS[:1], "GET", "/sapi/v1" + path, SPOT, handler, params, signed)
        futures: list[tuple[str, Handler, set[str]]] = [
            ("/ping", self.ping, set()),
            ("/time", self.time, set()),
            ("/exchangeInfo", self.exchange_info, set()),
            ("/depth", self.depth, {"symbol", "limit"}),
            ("/trades", self.trades, {"symbol", "limit"}),
            ("/aggTrades", self.agg_trades, {"symbol", "fromId", "startTime", "endTime", "limit"}),
            ("/klines", self.klines, {"symbol", "interval", "startTime", "endTime", "limit"}),
            ("/ticker/24hr", self.ticker_24hr, {"symbol", "pair"}),
            ("/ticker/price", self.ticker_price, {"symbol", "pair"}),
            ("/ticker/bookTicker", self.book_ticker, {"symbol", "pair"}),
            ("/premiumIndex", self.premium_index, {"symbol", "pair"}),
            ("/fundingRate", self.funding_rate, {"symbol", "startTime", "endTime", "limit"}),
        ]
        for path, handler, params in futures:
            self._add(router, USDM_HOSTS, "GET", "/fapi/v1" + path, USDM, handler, params, False)
            self._add(router, COINM_HOSTS, "GET", "/dapi/v1" + path, COINM, handler, params, False)
        self._add(
            router, USDM_HOSTS, "GET", "/fapi/v2/ticker/price", USDM, self.ticker_price, {"symbol"}, False
        )
        from emulator.venues.binance.futures import BinanceFutures

        BinanceFutures(self).install(router)

    def _add(
        self,
        router: Router,
        hosts: tuple[str, ...],
        method: str,
        path: str,
        section: Section,
        handler: Handler,
        params: AbstractSet[str],
        signed: bool,
        strict: bool = True,
    ) -> None:
        """``strict``: answer -1104 for parameters the endpoint does not read (the spot API does; the
        futures APIs ignore them, and CCXT passes e.g. ``subType`` through)."""
        accepted = frozenset(params) | (SIGNED if signed else frozenset())

        async def endpoint(request: VenueRequest) -> Any:
            try:
                values = Params(request.query() + request.form())
                key = self.authenticate(request, values) if signed else None
                if key is not None and method != "GET" and not self.engine.accounts[key].can_trade:
                    # What Binance answers a key without trading permission (read-only key).
                    raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
                if strict:
                    values.check_known(accepted)
                return json_response(handler(section, values, key))
            except OrderRejected as rejected:
                return rejection(rejected.reason).response()
            except BinanceError as error:
                return error.response()

        router.add(VENUE, hosts, method, path, endpoint, signed=signed, params=accepted)

    add_route = _add  # used by the futures and user-stream modules

    def authenticate(self, request: VenueRequest, params: Params) -> str:
        """Check key, timestamp/recvWindow and signature in Binance's order; return the key."""
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        request.api_key = key
        account = self.engine.accounts.get(key)
        if account is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        timestamp = params.integer("timestamp", required=True)
        recv_window = params.integer("recvWindow") or 5000
        if recv_window > MAX_RECV_WINDOW:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = self.engine.clock.now_ms()
        assert timestamp is not None
        if timestamp > now + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        verified = verify_signature(account.secret, request.query_string, request.body)
        if verified is None:
            raise mandatory("signature")
        if not verified:
            raise BinanceError(-1022, "Signature for this request is not valid.")
        return key

    def instrument(
        self, section: Section, params: Params, name: str = "symbol", required: bool = True
    ) -> Instrument | None:
        venue_id = params.text(name, required)
        if venue_id is None:
            return None
        found = self.engine.catalogue.by_id(VENUE, venue_id, section.kinds)
        if found is None or not section.owns(found):
            raise BinanceError(-1121, "Invalid symbol.")
        return found

    def instruments(self, section: Section) -> list[Instrument]:
        return [i for i in self.engine.catalogue.of(VENUE, *section.kinds) if section.owns(i)]

    def selected(self, section: Section, params: Params) -> tuple[list[Instrument], bool]:
        """Instruments named by ``symbol`` or ``symbols`` (or all), and whether to answer one object."""
        one = self.instrument(section, params, required=False)
        if one is not None:
            return [one], True
        ids = params.symbols()
        if ids is None:
            return self.instruments(section), False
        found = []
        for venue_id in ids:
            instrument = self.engine.catalogue.by_id(VENUE, venue_id, section.kinds)
            if instrument is None:
                raise BinanceError(-1121, "Invalid symbol.")
            found.append(instrument)
        return found, False

    def market(self, instrument: Instrument) -> Market:
        return self.engine.market(VENUE, instrument.symbol)

    def find(self, section: Section, params: Params, key: str) -> Order:
        """The key's order named by ``orderId`` or ``origClientOrderId`` on ``symbol`` (spot and futures);
        ``OrderRejected(ORDER_NOT_FOUND)`` (-2013) when there is none."""
        instrument = self.instrument(section, params)
        assert instrument is not None
        order_id, client_id = params.integer("orderId"), params.text("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        return self.engine.find_order(VENUE, key, instrument.symbol, order_id, client_id)

    def orders_window(self, params: Params, key: str, instrument: Instrument) -> list[Order]:
        """``allOrders``: the key's orders on the instrument from ``orderId`` and within ``startTime`` ..
        ``endTime``; at most ``limit`` (500, up to 1000): the first ones after a start, else the latest."""
        from_id, start = params.integer("orderId"), params.integer("startTime")
        end, limit = params.integer("endTime"), self.limit(params, 500, 1000)
        orders = [
            o
            for o in self.engine.ledger(VENUE, key).orders.values()
            if o.symbol == instrument.symbol
            and (from_id is None or o.id >= from_id)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return orders[:limit] if from_id is not None or start is not None else orders[-limit:]

    def fills_window(self, params: Params, key: str, instrument: Instrument) -> list[Fill]:
        """``myTrades`` / ``userTrades``: the key's fills on the instrument, of ``orderId``, from ``fromId``
        and within ``startTime`` .. ``endTime``; ``limit`` as in :meth:`orders_window`."""
        order_id, from_id = params.integer("orderId"), params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = self.limit(params, 500, 1000)
        fills = [
            f
            for f in self.engine.ledger(VENUE, key).fills
            if f.symbol == instrument.symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.ts_ms >= start)
            and (end is None or f.ts_ms <= end)
        ]
        return fills[:limit] if from_id is not None or start is not None else fills[-limit:]

    @staticmethod
    def limit(params: Params, default: int, maximum: int) -> int:
        value = params.integer("limit")
        if value is None:
            return default
        if value <= 0:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
        return min(value, maximum)

    # --- general ------------------------------------------------------------------------------------------

    def ping(self, _section: Section, _params: Params, _key: str | None) -> Any:
        return {}

    def time(self, _section: Section, _params: Params, _key: str | None) -> Any:
        return {"serverTime": self.engine.clock.now_ms()}

    def exchange_info(self, section: Section, params: Params, _key: str | None) -> Any:
        instruments, _ = (
            self.selected(section, params) if section is SPOT else (self.instruments(section), False)
        )
        return exchange_info(section, instruments, self.engine.clock.now_ms())

    def system_status(self, _section: Section, _params: Params, _key: str | None) -> Any:
        return {"status": 0, "msg": "normal"}

    # --- market data --------------------------------------------------------------------------------------

    def depth(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params)
        assert instrument is not None
        limit = self.limit(params, 100 if section is SPOT else 500, 5000 if section is SPOT else 1000)
        book = self.market(instrument).book
        levels = {
            side: [[fmt_price(instrument, p), fmt_qty(instrument, q)] for p, q in book.levels(side, limit)]
            for side in ("buy", "sell")
        }
        result: dict[str, Any] = {"lastUpdateId": book.update_id}
        if section is not SPOT:
            now = self.engine.clock.now_ms()
            result.update(E=now, T=book.ts_ms or now)
            if section is COINM:
                result.update(symbol=instrument.id, pair=instrument.raw.get("pair"))
        result.update(bids=levels["buy"], asks=levels["sell"])
        return result

    def trades(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params)
        assert instrument is not None
        limit = self.limit(params, 500, 1000)
        trades = list(self.market(instrument).trades)[-limit:]
        return [
            {
                "id": t.id,
                "price": fmt_price(instrument, t.price),
                "qty": fmt_qty(instrument, t.qty),
                "quoteQty": fmt_price(instrument, t.price * t.qty),
                "time": t.ts_ms,
                "isBuyerMaker": t.taker_side == "sell",
                **({"isBestMatch": True} if section is SPOT else {}),
            }
            for t in trades
        ]

    def agg_trades(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params)
        assert instrument is not None
        limit = self.limit(params, 500, 1000)
        from_id, start, end = params.integer("fromId"), params.integer("startTime"), params.integer("endTime")
        trades = list(self.market(instrument).trades)
        if from_id is not None:
            trades = [t for t in trades if t.id >= from_id][:limit]
        elif start is not None or end is not None:
            trades = [
                t for t in trades if (start is None or t.ts_ms >= start) and (end is None or t.ts_ms <= end)
            ]
            trades = trades[:limit]
        else:
            trades = trades[-limit:]
        return [agg_trade(instrument, t) for t in trades]

    def klines(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params)
        assert instrument is not None
        interval = params.text("interval", required=True)
        tf_ms = INTERVALS_MS.get(interval or "")
        if tf_ms is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = self.limit(params, 500, 1000 if section is SPOT else 1500)
        candles = self.market(instrument).candles(
            tf_ms, self.engine.clock.now_ms(), params.integer("startTime"), params.integer("endTime"), limit
        )
        return [kline_row(instrument, c, tf_ms) for c in candles]

    def ticker_24hr(self, section: Section, params: Params, _key: str | None) -> Any:
        instruments, single = (
            self.selected(section, params) if section is SPOT else self._futures_selection(section, params)
        )
        mini = params.text("type") == "MINI"
        result = [self.ticker(section, i, mini) for i in instruments]
        return result[0] if single else result

    def _futures_selection(self, section: Section, params: Params) -> tuple[list[Instrument], bool]:
        one = self.instrument(section, params, required=False)
        if one is not None:
            # COIN-M answers a list even for one symbol.
            return [one], section is USDM
        pair = params.text("pair")
        instruments = self.instruments(section)
        return [i for i in instruments if pair is None or i.raw.get("pair") == pair], False

    def ticker(self, section: Section, instrument: Instrument, mini: bool = False) -> dict[str, Any]:
        market = self.market(instrument)
        now = self.engine.clock.now_ms()
        stats = market.ticker(now)
        price, qty = (lambda v: fmt_price(instrument, v)), (lambda v: fmt_qty(instrument, v))
        result: dict[str, Any] = {"symbol": instrument.id}
        if section is COINM:
            result["pair"] = instrument.raw.get("pair")
        if not mini:
            result.update(
                priceChange=price(stats.change),
                priceChangePercent=f"{stats.change_percent}",
                weightedAvgPrice=price(stats.vwap.quantize(instrument.price_tick)),
            )
        if section is SPOT and not mini:
            bid = market.book.best("buy") or (stats.last, Decimal(0))
            ask = market.book.best("sell") or (stats.last, Decimal(0))
            result.update(
                prevClosePrice=price(stats.open),
                lastPrice=price(stats.last),
                lastQty=qty(stats.last_qty),
                bidPrice=price(bid[0]),
                bidQty=qty(bid[1]),
                askPrice=price(ask[0]),
                askQty=qty(ask[1]),
            )
        else:
            result.update(lastPrice=price(stats.last))
            if not mini:
                result.update(lastQty=qty(stats.last_qty))
        quote_volume = price(stats.quote_volume.quantize(instrument.price_tick))
        result.update(
            openPrice=price(stats.open),
            highPrice=price(stats.high),
            lowPrice=price(stats.low),
            volume=qty(stats.volume),
        )
        if section is COINM:
            result["baseVolume"] = fmt_spot(stats.volume * instrument.contract_size / (stats.vwap or 1))
        else:
            result["quoteVolume"] = quote_volume
        result.update(
            openTime=stats.open_ms,
            closeTime=stats.close_ms,
            firstId=stats.first_trade_id,
            lastId=stats.last_trade_id,
            count=stats.count,
        )
        return result

    def ticker_price(self, section: Section, params: Params, _key: str | None) -> Any:
        instruments, single = (
            self.selected(section, params) if section is SPOT else self._futures_selection(section, params)
        )
        now = self.engine.clock.now_ms()
        result = []
        for i in instruments:
            row: dict[str, Any] = {"symbol": i.id}
            if section is COINM:
                row["ps"] = i.raw.get("pair")
            row["price"] = fmt_price(i, self.market(i).last_price)
            if section is not SPOT:
                row["time"] = now
            result.append(row)
        return result[0] if single else result

    def book_ticker(self, section: Section, params: Params, _key: str | None) -> Any:
        instruments, single = (
            self.selected(section, params) if section is SPOT else self._futures_selection(section, params)
        )
        result = [book_ticker(section, i, self.market(i), self.engine.clock.now_ms()) for i in instruments]
        return result[0] if single else result

    def premium_index(self, section: Section, params: Params, _key: str | None) -> Any:
        instruments, single = self._futures_selection(section, params)
        now = self.engine.clock.now_ms()
        result = []
        for i in instruments:
            market = self.market(i)
            perpetual = i.kind == "swap"
            row: dict[str, Any] = {"symbol": i.id}
            if section is COINM:
                row["pair"] = i.raw.get("pair")
            row.update(
                markPrice=fmt_spot(market.mark_price),
                indexPrice=fmt_spot(market.index_price),
                estimatedSettlePrice=fmt_spot(market.index_price),
                lastFundingRate=f"{market.funding_rate():.8f}" if perpetual else "",
                interestRate="0.00010000" if perpetual else "",
                nextFundingTime=market.next_funding_ms(now) if perpetual else 0,
                time=now,
            )
            result.append(row)
        return result[0] if single else result

    def funding_rate(self, section: Section, params: Params, _key: str | None) -> Any:
        instrument = self.instrument(section, params, required=False)
        limit = self.limit(params, 100, 1000)
        start, end = params.integer("startTime"), params.integer("endTime")
        now = self.engine.clock.now_ms()
        rows = []
        for i in [instrument] if instrument else self.instruments(section):
            if i.kind != "swap":
                continue
            market = self.market(i)
            for ts, rate in market.funding_history(now, 1000 if start is not None else limit):
                if (start is None or ts >= start) and (end is None or ts <= end):
                    rows.append(
                        {
                            "symbol": i.id,
                            "fundingTime": ts,
                            "fundingRate": f"{rate:.8f}",
                            "markPrice": fmt_spot(market.mark_price),
                        }
                    )
        return rows[:limit] if start is not None else rows[-limit:]

    # --- wallet (sapi) ------------------------------------------------------------------------------------

    def currencies(self, _section: Section, _params: Params, key: str | None) -> Any:
        """``capital/config/getall`` from the recorded currencies, with this key's balances."""
        assert key is not None
        wallet = self.engine.wallet(VENUE, key)
        result = []
        for currency in load_json("currencies", VENUE).values():
            info = dict(currency["info"])
            balance = wallet.get(info["coin"])
            info.update(free=_f(balance.free), locked=_f(balance.locked))
            result.append(info)
        return result

    def margin_pairs(self, _section: Section, params: Params, _key: str | None) -> Any:
        return [
            {
                "id": n,
                "symbol": i.id,
                "base": i.base,
                "quote": i.quote,
                "isMarginTrade": True,
                "isBuyAllowed": True,
                "isSellAllowed": True,
            }
            for n, i in enumerate(self.instruments(SPOT), start=1)
            if i.raw.get("isMarginTradingAllowed")
        ]

    # --- spot account and orders --------------------------------------------------------------------------

    def account(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        wallet = self.engine.wallet(VENUE, key)
        omit_zero = params.text("omitZeroBalances") == "true"
        balances = [
            {"asset": a, "free": _f(b.free), "locked": _f(b.locked)}
            for a, b in sorted(wallet.balances.items())
            if not omit_zero or b.total > 0
        ]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.engine.clock.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": abs(hash(key)) % 10**9,
        }

    def _order_request(self, params: Params) -> dict[str, Any]:
        """Parse a new-order request into :meth:`Engine.place_order` keyword arguments."""
        instrument = self.instrument(SPOT, params)
        assert instrument is not None
        side = (params.text("side", required=True) or "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(
                -1100, "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'."
            )
        order_type = (params.text("type", required=True) or "").upper()
        if order_type not in SUPPORTED_TYPES | UNSUPPORTED_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        if order_type in UNSUPPORTED_TYPES:
            raise BinanceError(-2010, f"Order type {order_type} is not supported by the emulator.")
        quantity, quote = params.decimal("quantity"), params.decimal("quoteOrderQty")
        price = params.decimal("price")
        tif = params.text("timeInForce")
        if order_type == "LIMIT":
            tif = tif or ""
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
        if order_type in ("LIMIT", "LIMIT_MAKER"):
            if quantity is None:
                raise mandatory("quantity")
            if price is None:
                raise mandatory("price")
        elif quantity is None and quote is None:
            raise BinanceError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        elif price is not None:
            raise BinanceError(-1106, "Parameter 'price' sent when not required.")
        return dict(
            symbol=instrument.symbol,
            side="buy" if side == "BUY" else "sell",
            type="market" if order_type == "MARKET" else "limit",
            amount=quantity,
            price=price,
            quote_amount=quote if quantity is None else None,
            client_id=params.text("newClientOrderId"),
            time_in_force=tif or "GTC",  # type: ignore[arg-type]
            post_only=order_type == "LIMIT_MAKER",
            extra={
                "type": order_type,
                "stp": params.text("selfTradePreventionMode") or "EXPIRE_MAKER",
                "iceberg": params.decimal("icebergQty"),
                "respType": (params.text("newOrderRespType") or "FULL").upper(),
            },
        )

    def create_order(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        order = self.engine.place_order(VENUE, key, **self._order_request(params))
        return order_ack(order, self.engine.catalogue, order.extra["respType"])

    def test_order(self, _section: Section, params: Params, _key: str | None) -> Any:
        """``/order/test`` runs the filters but places nothing (balances are not checked, as on Binance)."""
        self.engine.check_order(VENUE, **self._order_request(params))
        return {}

    def get_order(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        return order_json(self.find(SPOT, params, key), self.engine.catalogue)

    def cancel_order(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        try:
            order = self.find(SPOT, params, key)
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        except OrderRejected:
            # Binance answers -2011 for an unknown id as well as for an order that is no longer open.
            raise BinanceError(-2011, "Unknown order sent.") from None
        return cancel_json(order, self.engine.catalogue, params.text("newClientOrderId"))

    def open_orders(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(SPOT, params, required=False)
        orders = self.engine.ledger(VENUE, key).open_orders(instrument.symbol if instrument else None)
        return [order_json(o, self.engine.catalogue) for o in orders]

    def cancel_all(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(SPOT, params)
        assert instrument is not None
        orders = self.engine.ledger(VENUE, key).open_orders(instrument.symbol)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        for order in orders:
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        return [cancel_json(o, self.engine.catalogue, None) for o in orders]

    def all_orders(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(SPOT, params)
        assert instrument is not None
        return [order_json(o, self.engine.catalogue) for o in self.orders_window(params, key, instrument)]

    def my_trades(self, _section: Section, params: Params, key: str | None) -> Any:
        assert key is not None
        instrument = self.instrument(SPOT, params)
        assert instrument is not None
        return [my_trade(instrument, f) for f in self.fills_window(params, key, instrument)]


SUPPORTED_TYPES = frozenset({"LIMIT", "MARKET", "LIMIT_MAKER"})
UNSUPPORTED_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
ORDER_PARAMS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "strategyId",
        "strategyType",
        "stopPrice",
        "trailingDelta",
        "icebergQty",
        "newOrderRespType",
        "selfTradePreventionMode",
        "pegPriceType",
        "pegOffsetValue",
        "pegOffsetType",
    }
)


# --- serialisers ------------------------------------------------------------------------------------------


def agg_trade(instrument: Instrument, trade: Trade) -> dict[str, Any]:
    # Every emulated trade is its own aggregate, so a = f = l = the trade id.
    return {
        "a": trade.id,
        "p": fmt_price(instrument, trade.price),
        "q": fmt_qty(instrument, trade.qty),
        "f": trade.id,
        "l": trade.id,
        "T": trade.ts_ms,
        "m": trade.taker_side == "sell",
        "M": True,
    }


def kline_row(instrument: Instrument, candle: Candle, tf_ms: int) -> list[Any]:
    price, qty = (lambda v: fmt_price(instrument, v)), (lambda v: fmt_qty(instrument, v))
    return [
        candle.open_ms,
        price(candle.open),
        price(candle.high),
        price(candle.low),
        price(candle.close),
        qty(candle.volume),
        candle.open_ms + tf_ms - 1,
        fmt_spot(candle.quote_volume),
        candle.trades,
        qty(candle.taker_buy_volume),
        fmt_spot(candle.taker_buy_quote),
        "0",
    ]


def book_ticker(section: Section, instrument: Instrument, market: Market, now_ms: int) -> dict[str, Any]:
    bid = market.book.best("buy") or (market.mid, Decimal(0))
    ask = market.book.best("sell") or (market.mid, Decimal(0))
    row: dict[str, Any] = {"symbol": instrument.id}
    if section is COINM:
        row["pair"] = instrument.raw.get("pair")
    row.update(
        bidPrice=fmt_price(instrument, bid[0]),
        bidQty=fmt_qty(instrument, bid[1]),
        askPrice=fmt_price(instrument, ask[0]),
        askQty=fmt_qty(instrument, ask[1]),
    )
    if section is not SPOT:
        row.update(time=now_ms, lastUpdateId=market.book.update_id)
    return row


def _instrument_of(order: Order, catalogue: Any) -> Instrument:
    return catalogue.get(order.venue, order.symbol)


def _common(order: Order, instrument: Instrument) -> dict[str, Any]:
    return {
        "price": _f(order.price or Decimal(0)),
        "origQty": _f(order.amount if order.amount is not None else order.filled),
        "executedQty": _f(order.filled),
        "cummulativeQuoteQty": _f(order.cost),
        "status": str(order.status),
        "timeInForce": order.time_in_force,
        "type": order.extra.get("type", order.type.upper()),
        "side": order.side.upper(),
    }


def order_json(order: Order, catalogue: Any) -> dict[str, Any]:
    """``GET /api/v3/order`` shape (also ``openOrders`` and ``allOrders``)."""
    instrument = _instrument_of(order, catalogue)
    return {
        "symbol": instrument.id,
        "orderId": order.id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        **_common(order, instrument),
        "stopPrice": _f(Decimal(0)),
        "icebergQty": _f(order.extra.get("iceberg") or Decimal(0)),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": True,
        "workingTime": order.created_ms,
        "origQuoteOrderQty": _f(order.quote_amount or Decimal(0)),
        "selfTradePreventionMode": order.extra.get("stp", "EXPIRE_MAKER"),
    }


def order_ack(order: Order, catalogue: Any, resp_type: str) -> dict[str, Any]:
    """``POST /api/v3/order`` shape for newOrderRespType ACK, RESULT or FULL."""
    instrument = _instrument_of(order, catalogue)
    result: dict[str, Any] = {
        "symbol": instrument.id,
        "orderId": order.id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "transactTime": order.created_ms,
    }
    if resp_type == "ACK":
        return result
    common = _common(order, instrument)
    result.update(
        price=common["price"],
        origQty=common["origQty"],
        executedQty=common["executedQty"],
        origQuoteOrderQty=_f(order.quote_amount or Decimal(0)),
        cummulativeQuoteQty=common["cummulativeQuoteQty"],
        status=common["status"],
        timeInForce=common["timeInForce"],
        type=common["type"],
        side=common["side"],
        workingTime=order.created_ms,
    )
    if order.extra.get("iceberg") is not None:  # echoed only when the order has one
        result["icebergQty"] = _f(order.extra["iceberg"])
    if resp_type == "FULL":
        result["fills"] = [
            {
                "price": _f(f.price),
                "qty": _f(f.qty),
                "commission": _f(f.fee),
                "commissionAsset": f.fee_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
    result["selfTradePreventionMode"] = order.extra.get("stp", "EXPIRE_MAKER")
    return result


def cancel_json(order: Order, catalogue: Any, new_client_id: str | None) -> dict[str, Any]:
    instrument = _instrument_of(order, catalogue)
    return {
        "symbol": instrument.id,
        "origClientOrderId": order.client_id,
        "orderId": order.id,
        "orderListId": -1,
        "clientOrderId": new_client_id or f"emu-cancel-{order.id}",
        "transactTime": order.updated_ms,
        **_common(order, instrument),
        "selfTradePreventionMode": order.extra.get("stp", "EXPIRE_MAKER"),
    }


def my_trade(instrument: Instrument, fill: Fill) -> dict[str, Any]:
    return {
        "symbol": instrument.id,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": _f(fill.price),
        "qty": _f(fill.qty),
        "quoteQty": _f(fill.quote_qty),
        "commission": _f(fill.fee),
        "commissionAsset": fill.fee_asset,
        "time": fill.ts_ms,
        "isBuyer": fill.side == "buy",
        "isMaker": fill.maker,
        "isBestMatch": True,
    }
