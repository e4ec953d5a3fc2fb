"""Bybit v5 WebSockets (``stream.bybit.com``): public topics, the private stream and the trade stream.

* ``/v5/public/{spot,linear,inverse,option}``: ``{"op": "subscribe", "req_id": .., "args": [topics]}`` with
  topics ``tickers.<symbol>`` (spot and options: snapshots; linear/inverse: one snapshot, then deltas of the
  changed fields), ``orderbook.<depth>.<symbol>`` (a snapshot, then deltas of the top-``depth`` view with
  ``u`` rising by one per message and ``seq`` the book's cross sequence; depth 1 is always a snapshot),
  ``publicTrade.<symbol>`` and ``kline.<interval>.<symbol>`` (the open candle every second, ``confirm: true``
  once when it closes). Every data item carries ``emitUs`` (µs, when the emulator produced it) beside
  Bybit's ``ts``.
* ``/v5/private``: ``{"op": "auth", "args": [key, expires_ms, hex HMAC("GET/realtime" + expires)]}``, then
  topics ``order``, ``execution``, ``wallet`` and ``position`` (spot and linear/inverse contracts, pushed
  when the key's ledger, wallet or positions change: after fills, cancels, funding, margin changes,
  leverage and TP/SL; a closed position is pushed once flat, ``side ""``); ``greeks`` stays silent.
* ``/v5/trade``: ``auth``, then ``order.create`` / ``order.cancel`` with the REST request as ``args[0]``.

Clients keep connections alive with ``{"op": "ping"}`` (Bybit sends no ping frames); the server answers
``pong`` in the shape of the stream (public: ``success``/``ret_msg: "pong"``; private: ``op: "pong"``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from emulator.catalogue import Instrument
from emulator.engine import Clock, Engine
from emulator.market import Market, bucket_start
from emulator.orders import OrderRejected
from emulator.positions import PositionSide
from emulator.routing import Router
from emulator.venues.bybit.instruments import CATEGORIES, KINDS, VENUE, Category, category_of
from emulator.venues.bybit.protocol import (
    INTERVALS_MS,
    BybitError,
    exec_id,
    fmt_plain,
    price,
    qty,
    rejection,
    ws_signature,
)
from emulator.venues.bybit.rest import BybitRest, Params, execution_json, order_json, refuse_read_only
from emulator.ws import Subscription, WsConnection

T = TypeVar("T")

HOSTS = ("stream.bybit.com", "stream-testnet.bybit.com")
PUBLIC_PREFIX = "/v5/public/"
PRIVATE_TOPICS = ("order", "execution", "execution.fast", "wallet", "position", "greeks")
BOOK_DEPTHS: dict[Category, dict[int, int]] = {  # depth -> push interval (ms)
    "spot": {1: 10, 50: 20, 200: 200, 1000: 200},
    "linear": {1: 10, 50: 20, 200: 100, 500: 100, 1000: 200},
    "inverse": {1: 10, 50: 20, 200: 100, 500: 100, 1000: 200},
    "option": {25: 20, 100: 100},
}
TICKER_INTERVAL_MS = {"spot": 50, "linear": 100, "inverse": 100, "option": 100}


class BybitStreams:
    """Stream protocol: ops in, engine-backed :class:`Subscription` polls out."""

    def __init__(self, engine: Engine, rest: BybitRest) -> None:
        self.engine = engine
        self.rest = rest

    def install(self, router: Router) -> None:
        for category in CATEGORIES:
            router.add_ws(VENUE, HOSTS, PUBLIC_PREFIX + category, self.on_open, self.on_text)
        router.add_ws(VENUE, HOSTS, "/v5/private", self.on_open, self.on_text)
        router.add_ws(VENUE, HOSTS, "/v5/trade", self.on_open, self.on_text)

    async def on_open(self, conn: WsConnection) -> None:
        conn.state["conn_id"] = f"{uuid.uuid4().hex[:20]}-{conn.id}"
        if conn.path.startswith(PUBLIC_PREFIX):
            conn.state["kind"] = "public"
            conn.state["category"] = conn.path.removeprefix(PUBLIC_PREFIX).strip("/")
        else:
            conn.state["kind"] = "trade" if conn.path.startswith("/v5/trade") else "private"

    # --- ops ----------------------------------------------------------------------------------------------

    async def on_text(self, conn: WsConnection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            conn.send(self._reply(conn, {}, False, "error:invalid op", None))
            return
        op = request.get("op")
        if op == "ping":
            self.pong(conn, request)
        elif op == "auth" and conn.state["kind"] != "public":
            self.auth(conn, request)
        elif op in ("subscribe", "unsubscribe") and conn.state["kind"] != "trade":
            self.subscribe(conn, request, op == "subscribe")
        elif conn.state["kind"] == "trade" and isinstance(op, str) and op.startswith("order."):
            self.trade(conn, request, op)
        else:
            conn.send(self._reply(conn, request, False, f"error:handler not found,op:{op}", op))

    def _reply(self, conn: WsConnection, request: dict, success: bool, msg: str, op: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"success": success, "ret_msg": msg, "conn_id": conn.state["conn_id"]}
        if "req_id" in request:
            reply["req_id"] = request["req_id"]
        reply["op"] = op
        return reply

    def pong(self, conn: WsConnection, request: dict) -> None:
        if conn.state["kind"] == "public":
            conn.send(self._reply(conn, request, True, "pong", "ping"))
        else:
            reply: dict[str, Any] = {}
            if "req_id" in request:
                reply["req_id"] = request["req_id"]
            reply.update(op="pong", args=[str(self.engine.clock.now_ms())], conn_id=conn.state["conn_id"])
            conn.send(reply)

    def auth(self, conn: WsConnection, request: dict) -> None:
        args = request.get("args")
        ok, msg = False, "Params Error"
        if isinstance(args, list) and len(args) == 3 and all(isinstance(a, str | int) for a in args):
            key, expires, signature = (str(a) for a in args)
            account = self.engine.accounts.get(key)
            if account is None:
                msg = "API key is invalid."
            elif not expires.isdigit() or int(expires) <= self.engine.clock.now_ms():
                msg = "Params Error"  # expired (or not a time)
            elif ws_signature(account.secret, expires) != signature.lower():
                msg = "Request not authorized"
            else:
                ok, msg = True, ""
                conn.state["key"] = key
        if conn.state["kind"] == "trade":
            conn.send(
                {
                    "reqId": request.get("reqId", request.get("req_id", "")),
                    "retCode": 0 if ok else 10004,
                    "retMsg": "OK" if ok else msg,
                    "op": "auth",
                    "connId": conn.state["conn_id"],
                }
            )
        else:
            conn.send(self._reply(conn, request, ok, msg, "auth"))

    def subscribe(self, conn: WsConnection, request: dict, subscribe: bool) -> None:
        op = "subscribe" if subscribe else "unsubscribe"
        topics = request.get("args")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            conn.send(self._reply(conn, request, False, "error:args invalid", op))
            return
        if not subscribe:
            for topic in topics:
                conn.subscriptions.pop(topic, None)
            conn.send(self._reply(conn, request, True, "", op))
            return
        if conn.state["kind"] == "private" and "key" not in conn.state:
            conn.send(self._reply(conn, request, False, "Request not authorized", op))
            return
        builders = []
        for topic in topics:
            builder = self.parse(conn, topic)
            if builder is None:
                conn.send(self._reply(conn, request, False, f"error:handler not found,topic:{topic}", op))
                return
            builders.append((topic, builder))
        conn.send(self._reply(conn, request, True, "subscribe" if conn.state["kind"] == "public" else "", op))
        for topic, builder in builders:
            if topic not in conn.subscriptions:
                conn.subscriptions[topic] = builder()

    def parse(self, conn: WsConnection, topic: str) -> Callable[[], Subscription] | None:
        """A factory for the topic's subscription, or None for a topic this stream does not have."""
        if conn.state["kind"] == "private":
            if topic not in PRIVATE_TOPICS:
                return None
            return lambda: Subscription(topic, private_poll(self.engine, conn, topic), channel=topic)
        category: Category = conn.state["category"]
        channel, *rest = topic.split(".")
        if not rest:
            return None
        instrument = self.engine.catalogue.by_id(VENUE, rest[-1], KINDS[category])
        if instrument is None or category_of(instrument) != category:
            return None
        stream = Stream(
            topic, instrument, category, self.engine.market(VENUE, instrument.symbol), self.engine
        )
        symbol = instrument.symbol
        if channel == "tickers" and len(rest) == 1:
            return lambda: forcible(topic, "ticker", symbol, ticker_poll(stream, self.rest))
        if channel == "publicTrade" and len(rest) == 1:
            return lambda: Subscription(topic, trade_poll(stream), channel="trades", symbol=symbol)
        if channel == "orderbook" and len(rest) == 2 and rest[0].isdigit():
            depth = int(rest[0])
            if depth not in BOOK_DEPTHS[category]:
                return None
            # depth 1 is a stream of snapshots; deeper books are incremental (faults may drop a delta)
            name = "bookTicker" if depth == 1 else "depth"
            return lambda: forcible(
                topic, name, symbol, book_poll(stream, depth, BOOK_DEPTHS[category][depth])
            )
        if channel == "kline" and len(rest) == 2 and rest[0] in INTERVALS_MS and category != "option":
            return lambda: Subscription(topic, kline_poll(stream, rest[0]), channel="ohlcv", symbol=symbol)
        return None

    def trade(self, conn: WsConnection, request: dict, op: str) -> None:
        """``/v5/trade``: ``order.create`` / ``order.cancel``, answered as REST would answer them."""
        req_id = request.get("reqId", "")
        args = request.get("args")
        now = self.engine.clock.now_ms()
        reply: dict[str, Any] = {"reqId": req_id, "retCode": 0, "retMsg": "OK", "op": op, "data": {}}
        key = conn.state.get("key")
        params = Params(args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else {})
        raw_category = params.text("category")
        category: Category = raw_category if raw_category in CATEGORIES else "spot"  # type: ignore[assignment]
        try:
            if key is None:
                raise BybitError(10007, "User authentication failed.")
            refuse_read_only(self.engine, key)
            if op == "order.create":
                reply["data"] = self.rest.create_order(params, key)
            elif op == "order.cancel":
                reply["data"] = self.rest.cancel_order(params, key)
            else:
                raise BybitError(10404, f"{op} is not emulated")
        except OrderRejected as rejected:
            error = rejection(category, rejected.reason, rejected.detail)
            reply.update(retCode=error.code, retMsg=error.msg)
        except BybitError as error:
            reply.update(retCode=error.code, retMsg=error.msg)
        reply["header"] = {"Timenow": str(now), "X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "19"}
        reply["connId"] = conn.state["conn_id"]
        conn.send(reply)


@dataclass
class Stream:
    topic: str
    instrument: Instrument
    category: Category
    market: Market
    engine: Engine

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    def message(self, data: Any, now: int, type_: str = "snapshot", **extra: Any) -> dict[str, Any]:
        """``{"topic", "type", "ts", "data"}``; ``emitUs`` goes into the data object or every data item."""
        emit = self.clock.now_us()
        for item in data if isinstance(data, list) else [data]:
            item["emitUs"] = emit
        return {"topic": self.topic, "type": type_, "ts": now, "data": data, **extra}


Poll = Callable[[int], list[Any]]
ForciblePoll = Callable[[int, bool], list[Any]]


def forcible(topic: str, channel: str, symbol: str, poll: ForciblePoll) -> Subscription:
    """A subscription whose ``force`` (fault injection's ``message_rate``) emits one message right away."""
    return Subscription(
        topic, lambda now: poll(now, False), channel=channel, symbol=symbol, force=lambda now: poll(now, True)
    )


def ticker_poll(s: Stream, rest: BybitRest) -> ForciblePoll:
    """Spot/option: a snapshot whenever the ticker changed; linear/inverse: a snapshot, then deltas."""
    interval = TICKER_INTERVAL_MS[s.category]
    last: dict[str, Any] | None = None
    last_sent = 0
    sequence = s.market.book.update_id

    def poll(now: int, forced: bool) -> list[Any]:
        nonlocal last, last_sent, sequence
        if now - last_sent < interval and not forced:
            return []
        data = rest.ticker(s.instrument, now)
        if s.category == "spot":  # the spot stream has no top of book
            for name in ("bid1Price", "bid1Size", "ask1Price", "ask1Size"):
                data.pop(name)
        elif s.category in ("linear", "inverse"):
            data["tickDirection"] = tick_direction(s.market)
        if data == last and not forced:
            return []
        delta = last is not None and s.category in ("linear", "inverse")
        changed = {"symbol": data["symbol"]} | {k: v for k, v in data.items() if last and last.get(k) != v}
        last, last_sent = data, now
        sequence = max(sequence + 1, s.market.book.update_id)
        payload = changed if delta else dict(data)
        return [s.message(payload, now, "delta" if delta else "snapshot", cs=sequence)]

    return poll


def tick_direction(market: Market) -> str:
    trades = list(market.trades)[-2:]
    if len(trades) < 2 or trades[-1].price == trades[-2].price:
        return "ZeroPlusTick"
    return "PlusTick" if trades[-1].price > trades[-2].price else "MinusTick"


def book_poll(s: Stream, depth: int, interval: int) -> ForciblePoll:
    """Snapshot, then the differences of the top-``depth`` view (removed levels with size "0")."""
    view: dict[str, dict[Decimal, Decimal]] | None = None
    update_id = s.market.book.update_id % 10**8 + 2  # never 1: u=1 means "service restarted, resync"
    last_sent = 0

    def levels(rows: dict[Decimal, Decimal], reverse: bool) -> list[list[str]]:
        return [
            [price(s.instrument, p), qty(s.instrument, q)] for p, q in sorted(rows.items(), reverse=reverse)
        ]

    def poll(now: int, forced: bool) -> list[Any]:
        nonlocal view, update_id, last_sent
        if now - last_sent < interval and not forced:
            return []
        book = s.market.book
        current = {side: dict(book.levels(side, depth)) for side in ("buy", "sell")}  # type: ignore[arg-type]
        if current == view and not forced:
            return []
        last_sent = now
        if view is None or depth == 1:
            bids, asks, kind = current["buy"], current["sell"], "snapshot"
        else:
            kind = "delta"
            bids, asks = (
                {
                    p: current[side].get(p, Decimal(0))
                    for p in set(view[side]) | set(current[side])
                    if view[side].get(p) != current[side].get(p)
                }
                for side in ("buy", "sell")
            )
        view = current
        update_id += 1
        data = {
            "s": s.instrument.id,
            "b": levels(bids, reverse=True),
            "a": levels(asks, reverse=False),
            "u": update_id,
            "seq": book.update_id,
        }
        return [s.message(data, now, kind, cts=book.ts_ms or now)]

    return poll


def trade_poll(s: Stream) -> Poll:
    """Every new public trade, batched per pump as Bybit batches them."""
    cursor = s.market.last_trade.id if s.market.last_trade else -1
    previous = s.market.last_trade.price if s.market.last_trade else None

    def poll(now: int) -> list[Any]:
        nonlocal cursor, previous
        items = []
        for t in s.market.trades_after(cursor):
            cursor = t.id
            item: dict[str, Any] = {
                "T": t.ts_ms,
                "s": s.instrument.id,
                "S": "Buy" if t.taker_side == "buy" else "Sell",
                "v": qty(s.instrument, t.qty),
                "p": price(s.instrument, t.price),
            }
            if s.category != "spot":
                direction = (
                    "ZeroPlusTick"
                    if previous is None or t.price == previous
                    else ("PlusTick" if t.price > previous else "MinusTick")
                )
                item["L"] = direction
            item.update(i=exec_id(s.category, t.id), BT=False, RPI=False, seq=t.id)
            previous = t.price
            items.append(item)
        return [s.message(items, now)] if items else []

    return poll


def kline_poll(s: Stream, interval: str) -> Poll:
    tf_ms = INTERVALS_MS[interval]
    open_bucket = bucket_start(s.clock.now_ms(), tf_ms)
    last_sent = 0

    def candle(bucket: int, now: int, confirm: bool) -> list[Any]:
        candles = s.market.candles(tf_ms, now, start_ms=bucket, end_ms=bucket, limit=1)
        if not candles:
            return []
        c = candles[0]
        p = lambda v: price(s.instrument, v)  # noqa: E731
        inverse = s.instrument.linear is False
        item = {
            "start": c.open_ms,
            "end": c.open_ms + tf_ms - 1,
            "interval": interval,
            "open": p(c.open),
            "close": p(c.close),
            "high": p(c.high),
            "low": p(c.low),
            "volume": fmt_plain(c.volume, 6),
            "turnover": fmt_plain(c.volume / (c.close or 1) if inverse else c.quote_volume, 8),
            "confirm": confirm,
            "timestamp": now,
        }
        return [s.message([item], now)]

    def poll(now: int) -> list[Any]:
        nonlocal open_bucket, last_sent
        bucket = bucket_start(now, tf_ms)
        if bucket != open_bucket:
            closed = candle(open_bucket, now, True)
            open_bucket, last_sent = bucket, now
            return closed
        if now - last_sent < 1000:
            return []
        last_sent = now
        return candle(bucket, now, False)

    return poll


# --- private stream ---------------------------------------------------------------------------------------


def private_poll(engine: Engine, conn: WsConnection, topic: str) -> Poll:
    """``order`` / ``execution`` / ``wallet`` / ``position``: what changed in the key's ledger, wallet and
    positions since the last push (``greeks`` stays silent)."""
    key: str = conn.state["key"]
    builders: dict[str, Callable[[Engine, str], Callable[[], list[Any]]]] = {
        "order": _order_rows,
        "execution": _execution_rows,
        "execution.fast": _execution_rows,
        "wallet": _wallet_rows,
        "position": _position_rows,
    }
    builder = builders.get(topic)
    if builder is None:
        return lambda now: []
    rows_since = builder(engine, key)

    def poll(now: int) -> list[Any]:
        rows = rows_since()
        if not rows:
            return []
        return [_private(engine.clock, f"{uuid.uuid4().hex[:10]}-{conn.id}", topic, now, rows)]

    return poll


def _order_rows(engine: Engine, key: str) -> Callable[[], list[Any]]:
    ledger = engine.ledger(VENUE, key)
    seen = {o.id: (o.status, o.filled, o.updated_ms) for o in ledger.orders.values()}

    def rows() -> list[Any]:
        changed = []
        for o in ledger.orders.values():
            state = (o.status, o.filled, o.updated_ms)
            instrument = engine.catalogue.get(VENUE, o.symbol)
            if seen.get(o.id) != state and instrument is not None:
                seen[o.id] = state
                category = category_of(instrument)
                changed.append(order_json(o, instrument, category) | {"category": category})
        return changed

    return rows


def _execution_rows(engine: Engine, key: str) -> Callable[[], list[Any]]:
    ledger = engine.ledger(VENUE, key)
    seen = len(ledger.fills)

    def rows() -> list[Any]:
        nonlocal seen
        new = []
        for fill in ledger.fills[seen:]:
            order = ledger.orders.get(fill.order_id)
            instrument = engine.catalogue.get(VENUE, fill.symbol)
            if order is not None and instrument is not None:
                category = category_of(instrument)
                new.append(execution_json(fill, order, instrument, category) | {"category": category})
        seen = len(ledger.fills)
        return new

    return rows


def _wallet_rows(engine: Engine, key: str) -> Callable[[], list[Any]]:
    """The whole unified wallet (as ``/v5/account/wallet-balance`` lists it) after every change."""
    rest = BybitRest(engine)

    def state() -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (b.free, b.locked) for a, b in engine.wallet(VENUE, key).balances.items()}

    def rows(_before: Any, _now: Any) -> list[Any]:
        return list(rest.wallet_balance(Params({"accountType": "UNIFIED"}), key)["list"])

    return _when_changed(state, rows)


def _position_rows(engine: Engine, key: str) -> Callable[[], list[Any]]:
    """Every position (also one just closed) whose size, price, margin, settings or funding changed."""
    derivatives = BybitRest(engine).derivatives

    def state() -> dict[tuple[str, PositionSide], tuple[Any, ...]]:
        return {
            k: (
                p.size,
                p.entry_price,
                p.margin,
                p.leverage,
                p.margin_mode,
                p.take_profit,
                p.stop_loss,
                p.funding,
                p.realised_pnl,
            )
            for k, p in engine.derivatives(VENUE, key).positions.items()
        }

    def rows(before: dict[Any, tuple[Any, ...]], now: dict[Any, tuple[Any, ...]]) -> list[Any]:
        positions = engine.derivatives(VENUE, key).positions
        changed = []
        for k, values in now.items():
            if before.get(k) != values:
                position = positions[k]
                category = category_of(position.instrument)
                row = derivatives.position_json(key, position.instrument, position)
                changed.append(row | {"category": category})
        return changed

    return _when_changed(state, rows)


def _when_changed(state: Callable[[], T], rows: Callable[[T, T], list[Any]]) -> Callable[[], list[Any]]:
    """A source of pushed rows: ``rows(before, now)`` each time ``state()`` differs from the last one seen."""
    seen = state()

    def poll() -> list[Any]:
        nonlocal seen
        now = state()
        if now == seen:
            return []
        before, seen = seen, now
        return rows(before, now)

    return poll


def _private(clock: Clock, message_id: str, topic: str, now: int, data: list[Any]) -> dict[str, Any]:
    emit = clock.now_us()
    for item in data:
        item["emitUs"] = emit
    return {"id": message_id, "topic": topic, "creationTime": now, "data": data}
