"""Bybit v5 REST (``api.bybit.com``, ``api-testnet.bybit.com``): market data, account, spot trading.

Every answer is the v5 envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}`` with numbers as
strings. GET parameters come in the query string, POST parameters as a JSON body; private requests carry
``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` (see
:func:`~emulator.venues.bybit.protocol.rest_signature`). Bybit ignores parameters it does not read, so unlike
Binance there is no unknown-parameter error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from emulator.catalogue import Instrument, load_json, reference_level
from emulator.engine import Engine
from emulator.market import OPTION_VOLATILITY, Market
from emulator.orders import Fill, Order, OrderRejected, Reject, Status
from emulator.routing import Router, VenueRequest
from emulator.venues.bybit.derivatives import (
    POSITION_IDX,
    POSITION_SIDES,
    TRIGGER_NAMES,
    BybitDerivatives,
    funding_rows,
)
from emulator.venues.bybit.instruments import (
    CATEGORIES,
    KINDS,
    VENUE,
    Category,
    category_of,
    instruments_payload,
)
from emulator.venues.bybit.protocol import (
    DEFAULT_RECV_WINDOW,
    FUTURE_TOLERANCE_MS,
    INTERVALS_MS,
    BybitError,
    envelope,
    exec_id,
    fmt,
    fmt_plain,
    json_response,
    order_id,
    params_error,
    parse_order_id,
    price,
    qty,
    rejection,
    rest_signature,
)

HOSTS = ("api.bybit.com", "api-testnet.bybit.com")
EMPTY = Decimal(0)
DAY_MS = 86_400_000


class Params:
    """The request's parameters (query string for GET, JSON body for POST)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise params_error(f"params error: {name} is required")
            return None
        return str(value).lower() if isinstance(value, bool) else str(value)

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        raw = self.text(name, required)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise params_error(f"params error: {name} invalid") from None
        if not value.is_finite() or value < 0:
            raise params_error(f"params error: {name} invalid")
        return value

    def integer(self, name: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        if not raw.lstrip("-").isdigit():
            raise params_error(f"params error: {name} invalid")
        return int(raw)

    def flag(self, name: str) -> bool:
        return self.text(name) in ("true", "1")


Handler = Callable[[Params, str | None], Any]


class BybitRest:
    """Route table and handlers. Handlers return the ``result`` object or raise :class:`BybitError`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.derivatives = BybitDerivatives(self)

    # --- plumbing -----------------------------------------------------------------------------------------

    def install(self, router: Router) -> None:
        public: list[tuple[str, Handler]] = [
            ("/v5/market/time", self.server_time),
            ("/v5/market/instruments-info", self.instruments_info),
            ("/v5/market/tickers", self.tickers),
            ("/v5/market/orderbook", self.orderbook),
            ("/v5/market/recent-trade", self.recent_trades),
            ("/v5/market/kline", self.kline),
            ("/v5/market/mark-price-kline", self.price_kline),
            ("/v5/market/index-price-kline", self.price_kline),
            ("/v5/market/funding/history", self.funding_history),
        ]
        for path, handler in public:
            self._add(router, "GET", path, handler, signed=False)
        private: list[tuple[str, str, Handler]] = [
            ("GET", "/v5/user/query-api", self.query_api),
            ("GET", "/v5/account/info", self.account_info),
            ("GET", "/v5/account/wallet-balance", self.wallet_balance),
            ("GET", "/v5/account/fee-rate", self.fee_rate),
            ("GET", "/v5/asset/coin/query-info", self.coin_info),
            ("GET", "/v5/market/instruments-info", self.instruments_info),
            ("POST", "/v5/order/create", self.create_order),
            ("POST", "/v5/order/cancel", self.cancel_order),
            ("POST", "/v5/order/cancel-all", self.cancel_all),
            ("GET", "/v5/order/realtime", self.open_orders),
            ("GET", "/v5/order/history", self.order_history),
            ("GET", "/v5/execution/list", self.executions),
            *self.derivatives.routes(),
        ]
        for method, path, handler in private:
            if (method, path) != ("GET", "/v5/market/instruments-info"):
                self._add(router, method, path, handler, signed=True)

    def _add(self, router: Router, method: str, path: str, handler: Handler, signed: bool) -> None:
        async def endpoint(request: VenueRequest) -> Any:
            now = self.engine.clock.now_ms()
            category: Category = "spot"
            try:
                params = self.parse(request)
                raw_category = params.text("category")
                if raw_category in CATEGORIES:
                    category = raw_category  # type: ignore[assignment]
                key = self.authenticate(request) if signed else None
                if key is not None and method == "POST":
                    refuse_read_only(self.engine, key)
                result = handler(params, key)
                return json_response(envelope(result, self.engine.clock.now_ms()))
            except OrderRejected as rejected:
                return rejection(category, rejected.reason, rejected.detail).response(now)
            except BybitError as error:
                return error.response(now)

        router.add(VENUE, HOSTS, method, path, endpoint, signed=signed)

    @staticmethod
    def parse(request: VenueRequest) -> Params:
        if request.method == "GET":
            return Params(dict(request.query()))
        if not request.body.strip():
            return Params({})
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise BybitError(10001, "request body is not a valid json") from None
        if not isinstance(body, dict):
            raise BybitError(10001, "request body is not a valid json")
        return Params(body)

    def authenticate(self, request: VenueRequest) -> str:
        """Key, timestamp window and signature, in Bybit's order; returns the key."""
        headers = request.headers
        key = headers.get("X-BAPI-API-KEY", "")
        timestamp = headers.get("X-BAPI-TIMESTAMP", "")
        signature = headers.get("X-BAPI-SIGN", "")
        recv_window = headers.get("X-BAPI-RECV-WINDOW", "")
        if key:
            request.api_key = key
        if not (key and timestamp and signature):
            raise BybitError(
                10001,
                f"empty value: apiTimestamp[{timestamp}] apiKey[{key}] apiSignature[{signature}]: "
                "openapi sign params error!",
            )
        account = self.engine.accounts.get(key)
        if account is None:
            raise BybitError(10003, "API key is invalid.")
        window = int(recv_window) if recv_window.isdigit() else DEFAULT_RECV_WINDOW
        now = self.engine.clock.now_ms()
        stamp = int(timestamp) if timestamp.isdigit() else 0
        if not (now - window <= stamp < now + FUTURE_TOLERANCE_MS):
            raise BybitError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
            )
        payload = request.query_string if request.method == "GET" else request.body
        expected = rest_signature(account.secret, timestamp, key, recv_window, payload)
        if not _same(expected, signature.lower()):
            raise BybitError(10004, "Error sign, please check your signature generation algorithm.")
        return key

    # --- lookups ------------------------------------------------------------------------------------------

    @staticmethod
    def category(params: Params, default: Category | None = None) -> Category:
        raw = params.text("category") or default
        if raw not in CATEGORIES:
            raise BybitError(10001, "Illegal category")
        return raw  # type: ignore[return-value]

    def instrument(self, category: Category, params: Params, required: bool = True) -> Instrument | None:
        venue_id = params.text("symbol", required)
        if venue_id is None:
            return None
        found = self.engine.catalogue.by_id(VENUE, venue_id.upper(), KINDS[category])
        if found is None or category_of(found) != category:
            raise BybitError(10001, "Not supported symbols")
        return found

    def instruments(self, category: Category) -> list[Instrument]:
        return [i for i in self.engine.catalogue.of(VENUE, *KINDS[category]) if category_of(i) == category]

    def market(self, instrument: Instrument) -> Market:
        return self.engine.market(VENUE, instrument.symbol)

    def selected(self, category: Category, params: Params) -> list[Instrument]:
        """The instrument named by ``symbol``, else the category's of ``baseCoin`` (options: BTC by
        default)."""
        one = self.instrument(category, params, required=False)
        if one is not None:
            return [one]
        selected = self.instruments(category)
        base = params.text("baseCoin") or ("BTC" if category == "option" else None)
        return selected if base is None else [i for i in selected if i.base == base.upper()]

    @staticmethod
    def limit(params: Params, default: int, maximum: int) -> int:
        value = params.integer("limit")
        if value is None:
            return default
        if value <= 0:
            raise params_error("params error: limit invalid")
        return min(value, maximum)

    @staticmethod
    def cursor(params: Params) -> int:
        raw = params.text("cursor")
        return int(raw) if raw is not None and raw.isdigit() else 0

    # --- market data --------------------------------------------------------------------------------------

    def server_time(self, _params: Params, _key: str | None) -> Any:
        now_us = self.engine.clock.now_us()
        return {"timeSecond": str(now_us // 1_000_000), "timeNano": str(now_us * 1000)}

    def instruments_info(self, params: Params, _key: str | None) -> Any:
        category = self.category(params)
        status = params.text("status")
        selected = self.selected(category, params)
        if status is not None and status != "Trading":
            selected = []  # every emulated instrument is trading (no pre-launch, settling or closed ones)
        default, maximum = (500, 1000) if category != "spot" else (500, 500)
        return instruments_payload(
            category, selected, self.limit(params, default, maximum), self.cursor(params)
        )

    def tickers(self, params: Params, _key: str | None) -> Any:
        category = self.category(params)
        now = self.engine.clock.now_ms()
        return {"category": category, "list": [self.ticker(i, now) for i in self.selected(category, params)]}

    def ticker(self, instrument: Instrument, now: int) -> dict[str, Any]:
        market = self.market(instrument)
        stats = market.ticker(now)
        category = category_of(instrument)
        p = lambda v: price(instrument, v)  # noqa: E731
        bid = market.book.best("buy") or (stats.last, EMPTY)
        ask = market.book.best("sell") or (stats.last, EMPTY)
        change = (stats.change / stats.open).quantize(Decimal("0.000001")) if stats.open else EMPTY
        volume = fmt_plain(stats.volume, 4)
        turnover = fmt_plain(stats.quote_volume, 4)
        if instrument.linear is False:  # inverse: volume in contracts (USD), turnover in the base coin
            turnover = fmt_plain(stats.volume / (stats.vwap or 1), 8)
        if category == "spot":
            return {
                "symbol": instrument.id,
                "bid1Price": p(bid[0]),
                "bid1Size": qty(instrument, bid[1]),
                "ask1Price": p(ask[0]),
                "ask1Size": qty(instrument, ask[1]),
                "lastPrice": p(stats.last),
                "prevPrice24h": p(stats.open),
                "price24hPcnt": f"{change}",
                "highPrice24h": p(stats.high),
                "lowPrice24h": p(stats.low),
                "turnover24h": turnover,
                "volume24h": volume,
                "usdIndexPrice": fmt_plain(market.index_price, 6),
            }
        open_interest = (stats.volume * Decimal("0.6")).quantize(instrument.amount_step)
        if category == "option":
            greeks = option_greeks(instrument, market)
            return {
                "symbol": instrument.id,
                "bid1Price": p(bid[0]),
                "bid1Size": qty(instrument, bid[1]),
                "bid1Iv": greeks["iv"],
                "ask1Price": p(ask[0]),
                "ask1Size": qty(instrument, ask[1]),
                "ask1Iv": greeks["iv"],
                "lastPrice": p(stats.last),
                "highPrice24h": p(stats.high),
                "lowPrice24h": p(stats.low),
                "markPrice": p(market.mark_price),
                "indexPrice": fmt_plain(market.index_price, 2),
                "markIv": greeks["iv"],
                "underlyingPrice": fmt_plain(market.index_price, 2),
                "openInterest": qty(instrument, open_interest),
                "turnover24h": fmt_plain(stats.volume * market.index_price, 4),
                "volume24h": volume,
                "totalVolume": fmt_plain(stats.volume * 3, 0),
                "totalTurnover": fmt_plain(stats.volume * 3 * market.index_price, 0),
                "delta": greeks["delta"],
                "gamma": greeks["gamma"],
                "vega": greeks["vega"],
                "theta": greeks["theta"],
                "predictedDeliveryPrice": "0",
                "change24h": f"{change}",
            }
        perpetual = instrument.kind == "swap"
        mark = market.mark_price
        value = open_interest * mark if instrument.linear else open_interest / (mark or 1)
        hour_ago = market.candles(3_600_000, now, start_ms=now - 3_600_000, limit=1)
        basis = stats.last - market.index_price
        return {
            "symbol": instrument.id,
            "lastPrice": p(stats.last),
            "indexPrice": p(market.index_price),
            "markPrice": p(mark),
            "prevPrice24h": p(stats.open),
            "price24hPcnt": f"{change}",
            "highPrice24h": p(stats.high),
            "lowPrice24h": p(stats.low),
            "prevPrice1h": p(hour_ago[0].open if hour_ago else stats.open),
            "openInterest": qty(instrument, open_interest),
            "openInterestValue": fmt(value, Decimal("0.01")),
            "turnover24h": turnover,
            "volume24h": volume,
            "fundingRate": f"{market.funding_rate():f}" if perpetual else "",
            "nextFundingTime": str(market.next_funding_ms(now)) if perpetual else "0",
            "predictedDeliveryPrice": "" if perpetual else p(market.index_price),
            "basisRate": "" if perpetual else fmt_plain(basis / (market.index_price or 1), 8),
            "deliveryFeeRate": "" if perpetual else "0.0005",
            "deliveryTime": str(instrument.expiry_ms or 0),
            "ask1Size": qty(instrument, ask[1]),
            "bid1Price": p(bid[0]),
            "ask1Price": p(ask[0]),
            "bid1Size": qty(instrument, bid[1]),
            "basis": "" if perpetual else p(basis),
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
        }

    def orderbook(self, params: Params, _key: str | None) -> Any:
        category = self.category(params)
        instrument = self.instrument(category, params)
        assert instrument is not None
        default, maximum = {"spot": (1, 200), "option": (1, 25)}.get(category, (25, 500))
        limit = self.limit(params, default, maximum)
        book = self.market(instrument).book
        now = self.engine.clock.now_ms()
        levels = {
            side: [[price(instrument, p), qty(instrument, q)] for p, q in book.levels(side, limit)]
            for side in ("buy", "sell")
        }
        return {
            "s": instrument.id,
            "b": levels["buy"],
            "a": levels["sell"],
            "ts": now,
            "u": book.update_id,
            "seq": book.update_id,
            "cts": book.ts_ms or now,
        }

    def recent_trades(self, params: Params, _key: str | None) -> Any:
        category = self.category(params)
        instrument = self.instrument(category, params)
        assert instrument is not None
        limit = self.limit(params, 60, 60) if category == "spot" else self.limit(params, 500, 1000)
        trades = list(self.market(instrument).trades)[-limit:]
        rows = []
        for t in reversed(trades):
            row: dict[str, Any] = {
                "execId": exec_id(category, t.id),
                "symbol": instrument.id,
                "price": price(instrument, t.price),
                "size": qty(instrument, t.qty),
                "side": "Buy" if t.taker_side == "buy" else "Sell",
                "time": str(t.ts_ms),
                "isBlockTrade": False,
                "isRPITrade": False,
            }
            rows.append(row)
        return {"category": category, "list": rows}

    def _candles(
        self, params: Params, kinds: tuple[Category, ...]
    ) -> tuple[Instrument, Category, list[Any], int]:
        category = self.category(params, default="linear")
        if category not in kinds:
            raise BybitError(10001, "Illegal category")
        instrument = self.instrument(category, params)
        assert instrument is not None
        interval = params.text("interval", required=True) or ""
        tf_ms = INTERVALS_MS.get(interval)
        if tf_ms is None:
            raise BybitError(
                10001, "Invalid period!" if interval != "M" else "Monthly klines are not emulated"
            )
        limit = self.limit(params, 200, 1000)
        candles = self.market(instrument).candles(
            tf_ms, self.engine.clock.now_ms(), params.integer("start"), params.integer("end"), limit
        )
        return instrument, category, candles[::-1], tf_ms

    def kline(self, params: Params, _key: str | None) -> Any:
        instrument, category, candles, _ = self._candles(params, ("spot", "linear", "inverse"))
        p = lambda v: price(instrument, v)  # noqa: E731
        rows = []
        for c in candles:
            if instrument.linear is False:  # inverse: volume in contracts, turnover in the base coin
                volume, turnover = fmt_plain(c.volume, 4), fmt_plain(c.volume / (c.close or 1), 8)
            else:
                volume, turnover = fmt_plain(c.volume, 6), fmt_plain(c.quote_volume, 4)
            rows.append([str(c.open_ms), p(c.open), p(c.high), p(c.low), p(c.close), volume, turnover])
        return {"symbol": instrument.id, "category": category, "list": rows}

    def price_kline(self, params: Params, _key: str | None) -> Any:
        """Mark and index price klines: the market's own candles (the emulated mark price is the mid)."""
        instrument, category, candles, _ = self._candles(params, ("linear", "inverse"))
        p = lambda v: price(instrument, v)  # noqa: E731
        rows = [[str(c.open_ms), p(c.open), p(c.high), p(c.low), p(c.close)] for c in candles]
        return {"symbol": instrument.id, "category": category, "list": rows}

    def funding_history(self, params: Params, _key: str | None) -> Any:
        category = self.category(params)
        if category not in ("linear", "inverse"):
            raise BybitError(10001, "Illegal category")
        instrument = self.instrument(category, params)
        assert instrument is not None
        if instrument.kind != "swap":
            return {"category": category, "list": []}
        limit = self.limit(params, 200, 200)
        start, end = params.integer("startTime"), params.integer("endTime")
        now = self.engine.clock.now_ms()
        history = self.market(instrument).funding_history(now, 1000 if start is not None else limit)
        rows = [
            {"symbol": instrument.id, "fundingRate": f"{rate:f}", "fundingRateTimestamp": str(ts)}
            for ts, rate in reversed(history)
            if (start is None or ts >= start) and (end is None or ts <= end)
        ]
        return {"category": category, "list": rows[:limit]}

    # --- account ------------------------------------------------------------------------------------------

    def query_api(self, _params: Params, key: str | None) -> Any:
        """The key's own description, from its permissions (``server.add_account(..., permissions=)``)."""
        assert key is not None
        account = self.engine.accounts[key]
        read_only = not account.can_trade
        wallet = ["AccountTransfer", "SubMemberTransfer"]
        if account.can_withdraw:
            wallet.append("Withdraw")
        trade = not read_only
        now = self.engine.clock.now_ms()
        return {
            "id": str(_uid(key) % 10**8),
            "note": "emulator",
            "apiKey": key,
            "readOnly": 1 if read_only else 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"] if trade else [],
                "Spot": ["SpotTrade"] if trade else [],
                "Wallet": wallet,
                "Options": ["OptionsTrade"] if trade else [],
                "Derivatives": ["DerivativesTrade"] if trade else [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": ["ExchangeHistory"],
                "NFT": [],
                "Affiliate": [],
                "Earn": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": -1,
            "expiredAt": "",
            "createdAt": _iso(self.engine.started_ms),
            "unified": 0,
            "uta": 1,
            "userID": _uid(key),
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
            "time": now,
        }

    def account_info(self, _params: Params, key: str | None) -> Any:
        assert key is not None
        return {
            "marginMode": self.derivatives.account_margin_mode(key),
            "updatedTime": str(self.engine.started_ms),
            "unifiedMarginStatus": 6,  # UTA 2.0 Pro: spot, contracts and options in one unified account
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def wallet_balance(self, params: Params, key: str | None) -> Any:
        """The unified wallet: per coin the wallet balance (free + locked), ``locked`` by spot orders,
        ``totalOrderIM`` / ``totalPositionIM`` (margin of contract orders / positions, locked in the engine's
        wallet too), ``unrealisedPnl`` and ``equity`` = wallet balance + unrealised PnL; totals in USD."""
        assert key is not None
        account_type = params.text("accountType", required=True)
        if account_type != "UNIFIED":
            raise BybitError(10001, "accountType only support UNIFIED.")
        coins = {c.upper() for c in (params.text("coin") or "").split(",") if c}
        wallet = self.engine.wallet(VENUE, key)
        margins = self.contract_margins(key)
        rows = []
        totals = dict.fromkeys(("wallet", "equity", "im", "mm", "upl"), EMPTY)
        for coin, balance in sorted(wallet.balances.items()):
            if coin == "USD" or balance.total <= 0 or (coins and coin not in coins):
                continue
            order_im, position_im, position_mm, upl, realised = margins.get(coin, (EMPTY,) * 5)
            equity = balance.total + upl
            usd = self.usd_price(coin)
            for name, value in (
                ("wallet", balance.total),
                ("equity", equity),
                ("im", order_im + position_im),
                ("mm", position_mm),
                ("upl", upl),
            ):
                totals[name] += value * usd
            rows.append(
                {
                    "availableToBorrow": "",
                    "bonus": "0",
                    "accruedInterest": "0",
                    "availableToWithdraw": "",
                    "totalOrderIM": fmt_plain(order_im),
                    "equity": fmt_plain(equity),
                    "totalPositionMM": fmt_plain(position_mm),
                    "usdValue": fmt_plain(equity * usd),
                    "spotBorrow": "0",
                    "unrealisedPnl": fmt_plain(upl),
                    "collateralSwitch": True,
                    "spotHedgingQty": "0",
                    "borrowAmount": "0.000000000000000000",
                    "totalPositionIM": fmt_plain(position_im),
                    "walletBalance": fmt_plain(balance.total),
                    "cumRealisedPnl": fmt_plain(realised),
                    "locked": fmt_plain(max(EMPTY, balance.locked - order_im - position_im)),
                    "marginCollateral": True,
                    "coin": coin,
                }
            )
        margin_balance = totals["equity"]
        rate = lambda part: fmt_plain(part / margin_balance, 4) if margin_balance else "0"  # noqa: E731
        return {
            "list": [
                {
                    "totalEquity": fmt_plain(totals["equity"]),
                    "accountIMRate": rate(totals["im"]),
                    "accountIMRateByMp": rate(totals["im"]),
                    "totalMarginBalance": fmt_plain(margin_balance),
                    "totalInitialMargin": fmt_plain(totals["im"]),
                    "totalInitialMarginByMp": fmt_plain(totals["im"]),
                    "accountType": "UNIFIED",
                    "totalAvailableBalance": fmt_plain(max(EMPTY, margin_balance - totals["im"])),
                    "accountMMRate": rate(totals["mm"]),
                    "accountMMRateByMp": rate(totals["mm"]),
                    "totalPerpUPL": fmt_plain(totals["upl"]),
                    "totalWalletBalance": fmt_plain(totals["wallet"]),
                    "accountLTV": "0",
                    "totalMaintenanceMargin": fmt_plain(totals["mm"]),
                    "totalMaintenanceMarginByMp": fmt_plain(totals["mm"]),
                    "coin": rows,
                }
            ]
        }

    def contract_margins(self, key: str) -> dict[str, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]]:
        """Per settle coin: (order IM, position IM, position MM, unrealised PnL, realised PnL)."""
        result: dict[str, list[Decimal]] = {}
        for order in self.engine.ledger(VENUE, key).open_orders():
            found = self.engine.catalogue.get(VENUE, order.symbol)
            if found is not None and found.contract and order.locked:
                result.setdefault(order.locked_asset, [EMPTY] * 5)[0] += order.locked
        for position in self.engine.derivatives(VENUE, key).positions.values():
            entry = result.setdefault(position.settle, [EMPTY] * 5)
            entry[4] += position.realised_pnl + position.funding - self.derivatives.fees(key, position)
            if not position.size:
                continue
            mark = self.engine.market(VENUE, position.symbol).mark_price
            entry[1] += position.margin
            entry[2] += position.maintenance_margin(mark)
            entry[3] += position.unrealised_pnl(mark)
        return {coin: tuple(values) for coin, values in result.items()}  # type: ignore[misc]

    def usd_price(self, coin: str) -> Decimal:
        if coin in ("USDT", "USDC", "USD"):
            return Decimal(1)
        spot = self.engine.catalogue.get(VENUE, f"{coin}/USDT")
        return self.market(spot).last_price if spot is not None else reference_level(coin)

    def fee_rate(self, params: Params, _key: str | None) -> Any:
        category = self.category(params, default="spot")
        one = self.instrument(category, params, required=False)
        selected = [one] if one is not None else self.instruments(category)
        rows = []
        for i in selected:
            row: dict[str, Any] = {"symbol": i.id}
            if category == "option":
                row = {"baseCoin": i.base}
            row.update(takerFeeRate=fmt_plain(i.taker), makerFeeRate=fmt_plain(i.maker))
            if row not in rows:
                rows.append(row)
        return {"list": rows}

    def coin_info(self, params: Params, key: str | None) -> Any:
        assert key is not None
        wanted = (params.text("coin") or "").upper()
        rows = []
        for code, currency in load_json("currencies", VENUE).items():
            if wanted and code != wanted:
                continue
            # The recording predates ``contractAddress`` (empty for a chain's native coin); Bybit sends it.
            chains = [{"contractAddress": ""} | chain for chain in currency["info"]["chains"]]
            rows.append(currency["info"] | {"chains": chains})
        return {"rows": rows}

    # --- orders -------------------------------------------------------------------------------------------

    def _order_request(self, params: Params) -> tuple[Instrument, Category, dict[str, Any]]:
        """Parse ``/v5/order/create`` into :meth:`Engine.place_order` keyword arguments."""
        category = self.category(params)
        instrument = self.instrument(category, params)
        assert instrument is not None
        spot = category == "spot"
        side = params.text("side", required=True)
        if side not in ("Buy", "Sell"):
            raise BybitError(
                170117 if spot else 10001, "Invalid side." if spot else "params error: side invalid"
            )
        order_type = params.text("orderType", required=True)
        if order_type not in ("Limit", "Market"):
            raise BybitError(
                170116 if spot else 10001, "Invalid orderType." if spot else "params error: orderType invalid"
            )
        _refuse_unemulated(params, spot)
        amount = params.decimal("qty", required=True)
        limit_price = params.decimal("price")
        tif = params.text("timeInForce") or ("GTC" if order_type == "Limit" else "IOC")
        if tif not in ("GTC", "IOC", "FOK", "PostOnly", "RPI"):
            raise BybitError(170115 if spot else 10001, "Invalid timeInForce.")
        if order_type == "Limit" and limit_price is None:
            raise params_error("params error: price is required for Limit orders")
        if order_type == "Market":
            limit_price = None  # Bybit ignores the price of a market order
        link_id = params.text("orderLinkId")
        if link_id is not None and len(link_id) > 36:
            raise params_error("params error: orderLinkId is too long")
        unit = params.text("marketUnit")
        quote_amount = None
        if spot and order_type == "Market":
            unit = unit or ("quoteCoin" if side == "Buy" else "baseCoin")
            if unit not in ("baseCoin", "quoteCoin"):
                raise params_error("params error: marketUnit invalid")
            if unit == "quoteCoin":
                amount, quote_amount = None, amount
        else:
            unit = None
        if spot and limit_price is not None and limit_price < instrument.min_price:
            raise BybitError(170133, "Order price lower than the minimum.")
        market = self.market(instrument)
        contract = _contract_order(params) if instrument.contract else {}
        return (
            instrument,
            category,
            dict(
                symbol=instrument.symbol,
                side="buy" if side == "Buy" else "sell",
                type="market" if order_type == "Market" else "limit",
                amount=amount,
                price=limit_price,
                quote_amount=quote_amount,
                client_id=link_id,
                time_in_force="GTC" if tif == "PostOnly" else tif,
                post_only=tif == "PostOnly",
                extra={
                    "category": category,
                    "marketUnit": unit,
                    "timeInForce": tif,
                    "orderLinkId": link_id or ("" if not spot else None),
                    "lastPriceOnCreated": market.last_price,
                    "reduceOnly": params.flag("reduceOnly"),
                    "positionIdx": params.integer("positionIdx") or 0,
                },
                **contract,
            ),
        )

    def create_order(self, params: Params, key: str | None) -> Any:
        assert key is not None
        _, category, request = self._order_request(params)
        order = self.engine.place_order(VENUE, key, **request)
        return {"orderId": order_id(category, order.id), "orderLinkId": link_id_of(order)}

    def _find(self, category: Category, params: Params, key: str) -> Order:
        instrument = self.instrument(category, params)
        assert instrument is not None
        raw_id, link_id = params.text("orderId"), params.text("orderLinkId")
        if raw_id is None and link_id is None:
            raise params_error("params error: orderId or orderLinkId is required")
        engine_id = parse_order_id(category, raw_id) if raw_id is not None else None
        if raw_id is not None and engine_id is None:
            raise OrderRejected(Reject.ORDER_NOT_FOUND)
        return self.engine.find_order(VENUE, key, instrument.symbol, engine_id, link_id)

    def cancel_order(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.category(params)
        order = self._find(category, params, key)
        if order.extra.get("category", "spot") != category:
            raise OrderRejected(Reject.ORDER_NOT_FOUND)
        self.engine.cancel_order(VENUE, key, order.symbol, order.id)
        order.extra["cancelled_by_user"] = True
        return {"orderId": order_id(category, order.id), "orderLinkId": link_id_of(order)}

    def cancel_all(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.category(params)
        instrument = self.instrument(category, params, required=False)
        base = (params.text("baseCoin") or "").upper()
        cancelled = []
        for order in self.engine.ledger(VENUE, key).open_orders(instrument.symbol if instrument else None):
            found = self.engine.catalogue.get(VENUE, order.symbol)
            if found is None or category_of(found) != category or (base and found.base != base):
                continue
            self.engine.cancel_order(VENUE, key, order.symbol, order.id)
            order.extra["cancelled_by_user"] = True
            cancelled.append({"orderId": order_id(category, order.id), "orderLinkId": link_id_of(order)})
        return {"list": cancelled, "success": "1"}

    def _orders(self, category: Category, params: Params, key: str, open_only: bool) -> list[Order]:
        instrument = self.instrument(category, params, required=False)
        raw_id, link_id = params.text("orderId"), params.text("orderLinkId")
        engine_id = parse_order_id(category, raw_id) if raw_id is not None else None
        base = (params.text("baseCoin") or "").upper()
        settle = (params.text("settleCoin") or "").upper()
        by_id = raw_id is not None or link_id is not None
        if params.text("orderFilter") in ("StopOrder", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder"):
            return []  # conditional orders are not emulated, so there never are any
        result = []
        for order in reversed(self.engine.ledger(VENUE, key).orders.values()):
            found = self.engine.catalogue.get(VENUE, order.symbol)
            if found is None or category_of(found) != category:
                continue
            if instrument is not None and order.symbol != instrument.symbol:
                continue
            if (base and found.base != base) or (settle and (found.settle or found.quote) != settle):
                continue
            if raw_id is not None and order.id != engine_id:
                continue
            if link_id is not None and order.client_id != link_id:
                continue
            # /order/realtime lists open orders; given an id it also finds recent closed ones (UTA).
            if open_only and not by_id and not order.is_open:
                continue
            if not open_only and order.is_open:
                continue
            result.append(order)
        return result

    def _page(self, category: Category, orders: list[Order], params: Params, default: int) -> Any:
        limit = self.limit(params, default, 50)
        start = self.cursor(params)
        page = orders[start : start + limit]
        more = start + limit < len(orders)
        return {
            "category": category,
            "nextPageCursor": str(start + limit) if more else "",
            "list": [order_json(o, self.engine.catalogue.get(VENUE, o.symbol), category) for o in page],
        }

    def open_orders(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.category(params)
        scope = ("symbol", "baseCoin", "settleCoin", "orderId", "orderLinkId")
        if category != "spot" and not any(params.text(n) for n in scope):
            raise params_error(
                "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        return self._page(category, self._orders(category, params, key, open_only=True), params, 20)

    def order_history(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.category(params)
        status = params.text("orderStatus")
        start, end = params.integer("startTime"), params.integer("endTime")
        now = self.engine.clock.now_ms()
        if start is None and end is None:
            start = now - 7 * DAY_MS
        orders = [
            o
            for o in self._orders(category, params, key, open_only=False)
            if (status is None or order_status(o, category) == status)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return self._page(category, orders, params, 20)

    def executions(self, params: Params, key: str | None) -> Any:
        assert key is not None
        category = self.category(params)
        instrument = self.instrument(category, params, required=False)
        exec_type = params.text("execType")
        raw_id, link_id = params.text("orderId"), params.text("orderLinkId")
        engine_id = parse_order_id(category, raw_id) if raw_id is not None else None
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is None and end is None:
            start = self.engine.clock.now_ms() - 7 * DAY_MS
        ledger = self.engine.ledger(VENUE, key)
        fills: list[tuple[int, dict[str, Any]]] = []
        if exec_type in (None, "Trade"):
            for fill in reversed(ledger.fills):
                found = self.engine.catalogue.get(VENUE, fill.symbol)
                order = ledger.orders.get(fill.order_id)
                if found is None or order is None or category_of(found) != category:
                    continue
                if instrument is not None and fill.symbol != instrument.symbol:
                    continue
                if (raw_id is not None and fill.order_id != engine_id) or (
                    link_id is not None and order.client_id != link_id
                ):
                    continue
                if (start is not None and fill.ts_ms < start) or (end is not None and fill.ts_ms > end):
                    continue
                fills.append((fill.ts_ms, execution_json(fill, order, found, category)))
        if exec_type in (None, "Funding") and category in ("linear", "inverse") and raw_id is link_id is None:
            fills += self._funding_executions(key, category, instrument, start, end)
        fills.sort(key=lambda f: f[0], reverse=True)
        limit = self.limit(params, 50, 100)
        if params.text("limit") is None and params.integer("size") is not None:
            limit = max(1, min(params.integer("size") or 50, 100))  # CCXT's fetchFundingHistory sends size
        offset = self.cursor(params)
        page = fills[offset : offset + limit]
        return {
            "category": category,
            "nextPageCursor": str(offset + limit) if offset + limit < len(fills) else "",
            "list": [row for _, row in page],
        }

    def _funding_executions(
        self, key: str, category: Category, one: Instrument | None, start: int | None, end: int | None
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = []
        for line in self.engine.derivatives(VENUE, key).income:
            found = self.engine.catalogue.get(VENUE, line.symbol)
            if line.kind != "FUNDING_FEE" or found is None or category_of(found) != category:
                continue
            if (one is not None and found is not one) or (start is not None and line.ts_ms < start):
                continue
            if end is None or line.ts_ms <= end:
                rows.append((line.ts_ms, funding_rows(self.engine, found, [line])[0]))
        return rows


# --- serialisers ------------------------------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def _uid(key: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 10**9


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refuse_unemulated(params: Params, spot: bool) -> None:
    """Conditional, TP/SL and margin orders are understood but not emulated."""
    for feature in ("triggerPrice", "takeProfit", "stopLoss"):
        if params.text(feature) not in (None, "0"):
            raise _not_emulated(spot, f"{feature} (conditional and TP/SL orders) is not emulated")
    order_filter = params.text("orderFilter")
    if order_filter not in (None, "Order"):
        raise _not_emulated(spot, f"orderFilter {order_filter} is not emulated")
    if params.flag("isLeverage"):
        raise _not_emulated(spot, "spot margin trading (isLeverage=1) is not emulated")
    if params.text("timeInForce") == "RPI":
        raise _not_emulated(spot, "timeInForce RPI is not emulated")


def refuse_read_only(engine: Engine, key: str) -> None:
    """Every POST (orders, cancels, position and account settings) needs a key that may trade."""
    if not engine.accounts[key].can_trade:
        raise BybitError(10005, "Permission denied, please check your API key permissions.")


def _contract_order(params: Params) -> dict[str, Any]:
    """Contract orders: ``reduceOnly`` and ``positionIdx`` (0 one-way, 1 hedge-mode buy leg, 2 sell leg)."""
    idx = params.integer("positionIdx") or 0
    if idx not in POSITION_SIDES:
        raise params_error("params error: positionIdx invalid")
    return {"reduce_only": params.flag("reduceOnly"), "position_side": POSITION_SIDES[idx]}


def _not_emulated(spot: bool, message: str) -> BybitError:
    # A business refusal (CCXT: InvalidOrder), not a parameter error: the request was understood.
    return BybitError(170210 if spot else 110032, message)


def link_id_of(order: Order) -> str:
    """orderLinkId as Bybit echoes it: the client's, the generated one of a spot order, or empty."""
    given = order.extra.get("orderLinkId")
    return order.client_id if given is None else given


def order_status(order: Order, category: Category) -> str:
    if order.status == Status.NEW:
        return "New"
    if order.status == Status.PARTIALLY_FILLED:
        return "PartiallyFilled"
    if order.status == Status.FILLED:
        return "Filled"
    # cancelled by the user, or the unfilled rest of an IOC/FOK/market order
    return "PartiallyFilledCanceled" if order.filled > 0 and category == "spot" else "Cancelled"


def _fees(fills: list[Fill]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for fill in fills:
        totals[fill.fee_asset] = totals.get(fill.fee_asset, EMPTY) + fill.fee
    return totals


def order_json(order: Order, instrument: Instrument | None, category: Category) -> dict[str, Any]:
    """One order as ``/v5/order/realtime`` and ``/v5/order/history`` list it."""
    assert instrument is not None
    p = lambda v: price(instrument, v)  # noqa: E731
    q = lambda v: qty(instrument, v)  # noqa: E731
    spot = category == "spot"
    in_quote = order.amount is None and order.quote_amount is not None
    status = order_status(order, category)
    remaining = order.remaining if order.is_open else EMPTY
    fees = _fees(order.fills)
    user_cancel = order.extra.get("cancelled_by_user")
    # orders the engine placed for a position's take-profit / stop-loss (trading-stop)
    trigger = TRIGGER_NAMES.get(order.extra.get("trigger") or "", ("", "CreateByUser"))
    if status in ("Cancelled", "PartiallyFilledCanceled") and not user_cancel:
        reject = "EC_CancelForNoFullFill" if order.time_in_force != "FOK" else "EC_FOKOrderCancel"
    else:
        reject = "EC_PerCancelRequest" if user_cancel else "EC_NoError"
    row: dict[str, Any] = {
        "symbol": instrument.id,
        "orderType": "Market" if order.type == "market" else "Limit",
        "orderLinkId": link_id_of(order),
        "slLimitPrice": "0",
        "orderId": order_id(category, order.id),
        "cancelType": "CancelByUser" if user_cancel else "UNKNOWN",
        "avgPrice": p(order.average) if order.filled else ("0" if spot else ""),
        "stopOrderType": trigger[0],
        "lastPriceOnCreated": p(order.extra.get("lastPriceOnCreated") or EMPTY),
        "orderStatus": status,
        "createType": trigger[1],
        "takeProfit": "0" if spot else "",
        "cumExecValue": fmt_plain(order.cost),
        "smpType": "None",
        "triggerDirection": 0,
        "blockTradeId": "",
        "cumFeeDetail": {asset: fmt_plain(fee) for asset, fee in fees.items()},
        "isLeverage": "0" if spot else "",
        "rejectReason": reject,
        "price": p(order.price) if order.price is not None else "0",
        "orderIv": "",
        "createdTime": str(order.created_ms),
        "tpTriggerBy": "",
        "positionIdx": POSITION_IDX.get(order.position_side, 0),  # type: ignore[call-overload]
        "timeInForce": order.extra.get("timeInForce") or ("IOC" if order.type == "market" else "GTC"),
        "leavesValue": fmt_plain(remaining * (order.price or EMPTY)) if not in_quote else "0",
        "updatedTime": str(order.updated_ms),
        "side": "Buy" if order.side == "buy" else "Sell",
        "smpGroup": 0,
        "triggerPrice": "0" if spot else "",
        "tpLimitPrice": "0",
        "cumExecFee": fmt_plain(sum(fees.values(), EMPTY)),
        "slTriggerBy": "",
        "leavesQty": q(remaining),
        "closeOnTrigger": bool(order.extra.get("trigger")),
        "placeType": "",
        "cumExecQty": q(order.filled),
        "reduceOnly": order.reduce_only or bool(order.extra.get("reduceOnly")),
        "qty": fmt_plain(order.quote_amount or EMPTY) if in_quote else q(order.amount or EMPTY),
        "stopLoss": "0" if spot else "",
        "marketUnit": order.extra.get("marketUnit") or "",
        "smpOrderId": "",
        "triggerBy": "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "0",
        "extraFees": "",
    }
    if not spot:
        row["tpslMode"] = ""  # CCXT tells contract orders by this key
        row.pop("marketUnit")
    return row


def execution_json(fill: Fill, order: Order, instrument: Instrument, category: Category) -> dict[str, Any]:
    """One fill as ``/v5/execution/list`` lists it."""
    spot = category == "spot"
    row: dict[str, Any] = {
        "symbol": instrument.id,
        "orderType": "Market" if order.type == "market" else "Limit",
        "underlyingPrice": "",
        "orderLinkId": link_id_of(order),
        "orderId": order_id(category, order.id),
        "stopOrderType": "" if spot else TRIGGER_NAMES.get(order.extra.get("trigger") or "", ("UNKNOWN",))[0],
        "execTime": str(fill.ts_ms),
        "feeCurrency": fill.fee_asset if spot else "",
        "feeRate": fmt_plain(instrument.maker if fill.maker else instrument.taker),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": "",
        "execPrice": price(instrument, fill.price),
        "markIv": "",
        "orderQty": qty(instrument, order.amount) if order.amount is not None else "0",
        "orderPrice": price(instrument, order.price) if order.price is not None else "0",
        "execValue": fmt_plain(fill.quote_qty),
        "closedSize": "" if spot else qty(instrument, fill.qty if order.reduce_only else EMPTY),
        "execType": "Trade",
        "seq": fill.trade_id,
        "side": "Buy" if fill.side == "buy" else "Sell",
        "indexPrice": "",
        "leavesQty": qty(instrument, order.remaining if order.is_open else EMPTY),
        "isMaker": fill.maker,
        "execFee": fmt_plain(fill.fee),
        "execId": exec_id(category, fill.trade_id),
        "marketUnit": order.extra.get("marketUnit") or "",
        "execQty": qty(instrument, fill.qty),
    }
    if not spot:
        row["createType"] = "CreateByUser"  # CCXT tells contract executions by this key
    return row


def option_greeks(instrument: Instrument, market: Market) -> dict[str, str]:
    """Black-Scholes greeks at the emulator's flat volatility (the same model that prices the book)."""
    spot = float(market.index_price) or 1.0
    strike = float(instrument.strike or 1)
    years = max(3600_000, (instrument.expiry_ms or 0) - market.started_ms) / (365 * DAY_MS)
    vol = OPTION_VOLATILITY
    d1 = (math.log(spot / strike) + vol * vol * years / 2) / (vol * math.sqrt(years))
    pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(d1 / math.sqrt(2)))
    delta = cdf if instrument.option_type == "C" else cdf - 1
    gamma = pdf / (spot * vol * math.sqrt(years))
    vega = spot * pdf * math.sqrt(years) / 100
    theta = -spot * pdf * vol / (2 * math.sqrt(years)) / 365
    return {
        "iv": f"{vol:.4f}",
        "delta": f"{delta:.8f}",
        "gamma": f"{gamma:.8f}",
        "vega": f"{vega:.8f}",
        "theta": f"{theta:.8f}",
    }
