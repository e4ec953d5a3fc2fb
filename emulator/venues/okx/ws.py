"""OKX WebSocket v5 (``ws.okx.com`` / ``wsaws.okx.com``: ``/ws/v5/public``, ``/ws/v5/business``,
``/ws/v5/private``).

Requests are ``{"op": "subscribe"|"unsubscribe"|"login", "args": [...]}``; every accepted argument is
acknowledged with ``{"event": "subscribe", "arg": {...}, "connId": ...}``, refused ones with
``{"event": "error", "code": "60018", ...}``. Pushes are ``{"arg": {...}, "data": [...]}`` (books add
``action``). Channels live on the URL OKX serves them on (candles on /business only, tickers/books/trades on
/public only, orders/account/positions on /private after login). Clients send the text ``ping`` and get
``pong``; a connection with no traffic either way for 30 s is closed, as OKX does.

Every dict data item carries ``emitUs`` (microseconds, when the emulator produced it) beside OKX's ``ts``;
candle rows are arrays, so candle pushes carry ``emitUs`` next to ``data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from emulator.catalogue import Instrument
from emulator.engine import Engine
from emulator.market import Market, bucket_start
from emulator.positions import Position
from emulator.routing import Router
from emulator.venues.okx import shapes
from emulator.venues.okx.instruments import INST_TYPES, VENUE
from emulator.venues.okx.protocol import TIMESTAMP_TOLERANCE_MS, num, signature_matches
from emulator.venues.okx.rest import ALL_KINDS, OkxRest
from emulator.ws import Subscription, WsConnection

WS_HOSTS = ("ws.okx.com", "wsaws.okx.com")
PUBLIC, BUSINESS, PRIVATE = "/ws/v5/public", "/ws/v5/business", "/ws/v5/private"
IDLE_MS = 30_000
PUBLIC_CHANNELS = {"tickers", "books", "books5", "bbo-tbt", "trades", "mark-price", "funding-rate"}
PRIVATE_CHANNELS = {"orders", "account", "positions"}
POSITION_INST_TYPES = {"ANY", "MARGIN", "SWAP", "FUTURES", "OPTION"}
POSITIONS_INTERVAL_MS = 5_000  # regular pushes of open positions (OKX: per subscription granularity)
FAULT_CHANNELS = {"tickers": "ticker", "books": "depth", "bbo-tbt": "bookTicker", "books5": "bookDepth"}

Poll = Callable[[int], list[Any]]


class OkxStreams:
    def __init__(self, engine: Engine, rest: OkxRest) -> None:
        self.engine = engine
        self.rest = rest

    def install(self, router: Router) -> None:
        for prefix in (PUBLIC, BUSINESS, PRIVATE):
            router.add_ws(VENUE, WS_HOSTS, prefix, self.on_open, self.on_text)

    def now_us(self) -> int:
        return self.engine.clock.now_us()

    # --- protocol -----------------------------------------------------------------------------------------

    async def on_open(self, conn: WsConnection) -> None:
        now = self.engine.clock.now_ms()
        conn.state.update(conn_id=f"{conn.id:08x}", last_rx=now, last_tx=now, key=None)
        conn.subscriptions["__idle__"] = Subscription("__idle__", self._idle_poll(conn))

    def _idle_poll(self, conn: WsConnection) -> Poll:
        def poll(now: int) -> list[Any]:
            if now - max(conn.state["last_rx"], conn.state["last_tx"]) > IDLE_MS:
                conn.subscriptions.clear()
                conn.close_soon()
            return []

        return poll

    def error(self, conn: WsConnection, code: str, msg: str, request_id: Any = None) -> None:
        message: dict[str, Any] = {
            "event": "error",
            "code": code,
            "msg": msg,
            "connId": conn.state["conn_id"],
        }
        if request_id is not None:
            message["id"] = request_id
        conn.send(message)

    async def on_text(self, conn: WsConnection, text: str) -> None:
        conn.state["last_rx"] = self.engine.clock.now_ms()
        if text == "ping":
            conn.send("pong")
            return
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error(conn, "60012", f"Illegal request: {text}")
            return
        if not isinstance(request, dict) or not isinstance(request.get("args", []), list):
            self.error(conn, "60012", f"Illegal request: {text}")
            return
        op, args, request_id = request.get("op"), request.get("args") or [], request.get("id")
        if op == "login":
            self.login(conn, args)
        elif op in ("subscribe", "unsubscribe"):
            if not args:
                self.error(conn, "60013", "Invalid args", request_id)
            for arg in args:
                if not isinstance(arg, dict):
                    self.error(conn, "60012", f"Illegal request: {text}", request_id)
                elif op == "subscribe":
                    self.subscribe(conn, arg)
                else:
                    conn.subscriptions.pop(_name(arg), None)
                    conn.send({"event": "unsubscribe", "arg": arg, "connId": conn.state["conn_id"]})
        else:
            self.error(conn, "60019", f"Invalid op: {op}", request_id)

    def login(self, conn: WsConnection, args: list[Any]) -> None:
        """``{"op":"login","args":[{"apiKey","passphrase","timestamp"(s),"sign"}]}``; sign is
        base64 HMAC-SHA256 of timestamp + "GET" + "/users/self/verify"."""
        arg = args[0] if args and isinstance(args[0], dict) else {}
        key, passphrase = str(arg.get("apiKey", "")), str(arg.get("passphrase", ""))
        timestamp, signature = str(arg.get("timestamp", "")), str(arg.get("sign", ""))
        if not (key and passphrase and timestamp and signature):
            self.error(conn, "60013", "Invalid args")
            return
        conn.state["api_key"] = key
        try:
            sent_ms = int(float(timestamp) * 1000)
        except ValueError:
            self.error(conn, "60004", "Invalid timestamp")
            return
        if abs(self.engine.clock.now_ms() - sent_ms) > TIMESTAMP_TOLERANCE_MS:
            self.error(conn, "60006", "Timestamp request expired")
            return
        account = self.engine.accounts.get(key)
        if account is None:
            self.error(conn, "60005", "Invalid OK-ACCESS-KEY")
            return
        if account.passphrase is not None and passphrase != account.passphrase:
            self.error(conn, "60024", "Wrong passphrase")
            return
        if not signature_matches(account.secret, timestamp + "GET/users/self/verify", signature):
            self.error(conn, "60007", "Invalid sign")
            return
        conn.state["key"] = key
        conn.send({"event": "login", "code": "0", "msg": "", "connId": conn.state["conn_id"]})

    def subscribe(self, conn: WsConnection, arg: dict[str, Any]) -> None:
        channel = str(arg.get("channel", ""))
        inst_id = str(arg.get("instId", ""))
        wrong = (
            f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use the correct URL, "
            "channel and parameters referring to API document."
        )
        instrument: Instrument | None = None
        if channel in PRIVATE_CHANNELS:
            if not conn.path.startswith(PRIVATE):
                self.error(conn, "60018", wrong)
                return
            if conn.state.get("key") is None:
                self.error(conn, "60011", "Please log in")
                return
            poll = self._private(conn, channel, arg)
            if poll is None:
                self.error(conn, "60018", wrong)
                return
        else:
            candle = channel.startswith("candle") and (
                channel[6:] in shapes.BARS or channel[6:] in shapes.MONTH_BARS
            )
            expected = BUSINESS if candle else PUBLIC if channel in PUBLIC_CHANNELS else None
            instrument = self.engine.catalogue.by_id(VENUE, inst_id, ALL_KINDS)
            if expected is None or not conn.path.startswith(expected) or instrument is None:
                self.error(conn, "60018", wrong)
                return
            if channel == "funding-rate" and instrument.kind != "swap":
                self.error(conn, "60018", wrong)
                return
            poll = self._public(conn, channel, instrument)
        conn.send({"event": "subscribe", "arg": arg, "connId": conn.state["conn_id"]})
        subscription = Subscription(_name(arg), self._counted(conn, poll))
        # For fault injection (emulator/faults.py): the neutral channel name, the symbol, a forced push.
        subscription.channel = FAULT_CHANNELS.get(
            channel, "kline" if channel.startswith("candle") else channel
        )
        if instrument is not None:
            subscription.symbol = instrument.symbol
        if channel in ("tickers", "books"):
            subscription.force = lambda now: poll(now, True)  # type: ignore[call-arg]
        conn.subscriptions[_name(arg)] = subscription

    def _counted(self, conn: WsConnection, poll: Poll) -> Poll:
        def counted(now: int) -> list[Any]:
            messages = poll(now)
            if messages:
                conn.state["last_tx"] = now
            return messages

        return counted

    # --- public channels ----------------------------------------------------------------------------------

    def _public(self, conn: WsConnection, channel: str, instrument: Instrument) -> Poll:
        market = self.engine.market(VENUE, instrument.symbol)
        arg = {"channel": channel, "instId": instrument.id}
        stamp = self.now_us

        def push(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            for item in items:
                item["emitUs"] = stamp()
            return {"arg": arg, **extra, "data": items}

        if channel == "books":
            return self._books(instrument, push)
        if channel.startswith("candle"):
            return self._candles(instrument, channel[6:], arg)
        return BUILDERS[channel](Feed(channel, instrument, market, push))

    def _books(self, instrument: Instrument, push: Callable[..., dict[str, Any]]) -> Poll:
        """``books``: a 400-level snapshot, then merged diffs every 100 ms chained by seqId/prevSeqId, each
        with the checksum of the resulting top 25 levels."""
        market = self.engine.market(VENUE, instrument.symbol)
        book = market.book
        state: dict[str, int] = {"seq": -1, "sent": 0}

        def levels_checksum() -> int:
            return shapes.checksum(
                shapes.book_rows(instrument, book.levels("buy", 25)),
                shapes.book_rows(instrument, book.levels("sell", 25)),
            )

        def snapshot(now: int) -> list[Any]:
            state.update(seq=book.update_id, sent=now)
            item = {
                "asks": shapes.book_rows(instrument, book.levels("sell", 400)),
                "bids": shapes.book_rows(instrument, book.levels("buy", 400)),
                "ts": str(book.ts_ms or now),
                "checksum": levels_checksum(),
                "prevSeqId": -1,
                "seqId": book.update_id,
            }
            return [push([item], action="snapshot")]

        def poll(now: int, force: bool = False) -> list[Any]:
            if state["seq"] < 0:
                return snapshot(now)
            if now - state["sent"] < 100 and not force:
                return []
            diffs = book.diffs_after(state["seq"])
            if diffs is None:  # history gone: start over, as a resubscription would
                return snapshot(now)
            if not diffs:
                return []
            bids: dict[Decimal, Decimal] = {}
            asks: dict[Decimal, Decimal] = {}
            for diff in diffs:
                bids.update(diff.bids)
                asks.update(diff.asks)
            previous = state["seq"]
            state.update(seq=diffs[-1].last, sent=now)
            item = {
                "asks": shapes.book_rows(instrument, sorted(asks.items())),
                "bids": shapes.book_rows(instrument, sorted(bids.items(), reverse=True)),
                "ts": str(diffs[-1].ts_ms),
                "checksum": levels_checksum(),
                "prevSeqId": previous,
                "seqId": diffs[-1].last,
            }
            return [push([item], action="update")]

        return poll

    def _candles(self, instrument: Instrument, bar: str, arg: dict[str, Any]) -> Poll:
        """``candle<bar>``: the live candle every 500 ms while it changes, and the closed one (confirm "1")
        once when its bucket ends."""
        market = self.engine.market(VENUE, instrument.symbol)
        state: dict[str, Any] = {"row": None, "sent": 0}

        def rows(now: int) -> list[tuple[int, list[str]]]:
            if bar in shapes.MONTH_BARS:
                picked = shapes.month_candles(market, shapes.MONTH_BARS[bar], now, 1)
                return [(ts, shapes.candle_row(instrument, c, False)) for ts, c in picked]
            tf_ms = shapes.BARS[bar]
            return [
                (c.open_ms, shapes.candle_row(instrument, c, False))
                for c in market.candles(tf_ms, now, start_ms=bucket_start(now, tf_ms), limit=1)
            ]

        def message(row: list[str]) -> dict[str, Any]:
            return {"arg": arg, "data": [row], "emitUs": self.now_us()}

        def poll(now: int) -> list[Any]:
            if now - state["sent"] < 500:
                return []
            current = rows(now)
            if not current:
                return []
            out = []
            previous = state["row"]
            if previous is not None and previous[0] != current[0][1][0]:
                closed = shapes.BARS.get(bar)
                if closed is not None:
                    start = int(previous[0])
                    final = market.candles(closed, now, start_ms=start, end_ms=start, limit=1)
                    if final:
                        out.append(message(shapes.candle_row(instrument, final[0], True)))
            row = current[0][1]
            if row != previous:
                out.append(message(row))
            state.update(row=row, sent=now)
            return out

        return poll

    # --- private channels ---------------------------------------------------------------------------------

    def _private(self, conn: WsConnection, channel: str, arg: dict[str, Any]) -> Poll | None:
        key: str = conn.state["key"]
        if channel == "account":
            return self._account(key, arg)
        type_name = str(arg.get("instType", ""))
        if channel == "positions":
            return self._positions(key, arg) if type_name in POSITION_INST_TYPES else None
        if type_name != "ANY" and type_name not in INST_TYPES:
            return None
        inst_id, family = str(arg.get("instId", "")), str(arg.get("instFamily", ""))
        ledger = self.engine.ledger(VENUE, key)
        seen = {o.id: (o.status, o.filled) for o in ledger.orders.values()}

        def orders(now: int) -> list[Any]:
            out = []
            for order in list(ledger.orders.values()):
                state = (order.status, order.filled)
                if seen.get(order.id) == state:
                    continue
                seen[order.id] = state
                instrument = self.engine.catalogue.get(VENUE, order.symbol)
                if instrument is None:
                    continue
                if type_name != "ANY" and INST_TYPES[type_name] != instrument.kind:
                    continue
                if (inst_id and instrument.id != inst_id) or (
                    family and instrument.raw.get("instFamily") != family
                ):
                    continue
                item = shapes.order(order, instrument)
                last_fill = order.fills[-1] if order.fills else None
                item.update(
                    amendResult="",
                    code="0",
                    execType=("M" if last_fill.maker else "T") if last_fill else "",
                    fillFee=num(-last_fill.fee) if last_fill else "0",
                    fillFeeCcy=last_fill.fee_asset if last_fill else "",
                    fillNotionalUsd="",
                    lastPx=shapes.px(instrument, self.engine.market(VENUE, order.symbol).last_price),
                    msg="",
                    notionalUsd="",
                    reqId="",
                    emitUs=self.now_us(),
                )
                out.append({"arg": arg, "data": [item]})
            return out

        return orders

    def _account(self, key: str, arg: dict[str, Any]) -> Poll:
        """``account``: the balance on every change of the wallet, else every 5 s."""
        wanted = str(arg.get("ccy", ""))
        last: list[Any] = [None, 0]

        def account(now: int) -> list[Any]:
            wallet = self.engine.wallet(VENUE, key)
            snapshot = tuple(sorted((c, b.free, b.locked) for c, b in wallet.balances.items()))
            if snapshot == last[0] and now - last[1] < 5_000:
                return []
            last[:] = [snapshot, now]
            data = self.rest.balance_data(key, {c for c in wanted.split(",") if c})
            for item in data:
                item["emitUs"] = self.now_us()
            return [{"arg": arg, "data": data}]

        return account

    def _positions(self, key: str, arg: dict[str, Any]) -> Poll:
        """``positions``: a snapshot of the open positions at once (``data`` may be empty), then every
        position whose size, price, margin, leverage, funding or PnL changed (a closed one once, with
        ``pos`` "0"), and all open ones every 5 s."""
        type_name, inst_id = str(arg.get("instType", "")), str(arg.get("instId", ""))
        family = str(arg.get("instFamily", ""))
        account = self.engine.derivatives(VENUE, key)
        derivatives = self.rest.derivatives
        push_arg = {**arg, "uid": self.rest.uid(key)}
        state: dict[str, Any] = {"seen": {}, "sent": None}

        def wanted(instrument: Instrument) -> bool:
            return (
                (type_name == "ANY" or shapes.inst_type(instrument) == type_name)
                and (not inst_id or instrument.id == inst_id)
                and (not family or instrument.raw.get("instFamily") == family)
            )

        def poll(now: int) -> list[Any]:
            seen: dict[Any, Any] = state["seen"]
            first = state["sent"] is None
            regular = not first and now - state["sent"] >= POSITIONS_INTERVAL_MS
            changed = []
            for slot, position in list(account.positions.items()):
                if not wanted(position.instrument):
                    continue
                fingerprint = _fingerprint(position)
                before = seen.get(slot)
                seen[slot] = fingerprint
                if first or regular:
                    if position.size:
                        changed.append(position)
                elif before != fingerprint and (position.size or (before is not None and before[0])):
                    changed.append(position)
            if not (first or changed):
                if regular:
                    state["sent"] = now
                return []
            state["sent"] = now
            data = [derivatives.position_json(key, p, now) for p in changed]
            for item in data:
                item["emitUs"] = self.now_us()
            return [{"arg": push_arg, "data": data}]

        return poll


def _fingerprint(position: Position) -> tuple[Any, ...]:
    """What a ``positions`` push reports that can change without a new mark price."""
    return (
        position.size,
        position.entry_price,
        position.margin,
        position.leverage,
        position.margin_mode,
        position.funding,
        position.realised_pnl,
        position.updated_ms,
    )


def _name(arg: dict[str, Any]) -> str:
    return ":".join(str(arg.get(k, "")) for k in ("channel", "instId", "instType", "instFamily", "ccy"))


@dataclass
class Feed:
    """What a public channel's poll needs: the channel, its market, and how to wrap data items."""

    channel: str
    instrument: Instrument
    market: Market
    push: Callable[..., dict[str, Any]]


def tickers_poll(f: Feed) -> Poll:
    """``tickers``: on every change of the last trade or the top of book, at most every 100 ms."""
    last: list[Any] = [None, 0]

    def poll(now: int, force: bool = False) -> list[Any]:
        book = f.market.book
        top = (f.market.last_trade.id if f.market.last_trade else None, book.best("buy"), book.best("sell"))
        if not force and (top == last[0] or now - last[1] < 100):
            return []
        last[:] = [top, now]
        return [f.push([shapes.ticker(f.instrument, f.market, now)])]

    return poll


def trades_poll(f: Feed) -> Poll:
    """``trades``: every new trade, one message each."""
    cursor = [f.market.last_trade.id if f.market.last_trade else -1]

    def poll(now: int) -> list[Any]:
        out = []
        for t in f.market.trades_after(cursor[0]):
            cursor[0] = t.id
            out.append(f.push([{**shapes.trade(f.instrument, t), "count": "1"}]))
        return out

    return poll


def top_poll(f: Feed) -> Poll:
    """``books5`` (5 levels, 100 ms) and ``bbo-tbt`` (best level, 10 ms): full snapshots on change."""
    depth, interval = (5, 100) if f.channel == "books5" else (1, 10)
    previous: list[Any] = [None, 0]

    def poll(now: int) -> list[Any]:
        book = f.market.book
        bids, asks = book.levels("buy", depth), book.levels("sell", depth)
        if (bids, asks) == previous[0] or now - previous[1] < interval:
            return []
        previous[:] = [(bids, asks), now]
        item: dict[str, Any] = {
            "asks": shapes.book_rows(f.instrument, asks),
            "bids": shapes.book_rows(f.instrument, bids),
            "ts": str(book.ts_ms or now),
            "seqId": book.update_id,
        }
        if f.channel == "books5":
            item["instId"] = f.instrument.id
        return [f.push([item])]

    return poll


def mark_price_poll(f: Feed) -> Poll:
    """``mark-price``: on change (at most every 200 ms), else every 10 s."""
    sent: list[Any] = [None, 0]

    def poll(now: int) -> list[Any]:
        price = f.market.mark_price
        if (price == sent[0] and now - sent[1] < 10_000) or now - sent[1] < 200:
            return []
        sent[:] = [price, now]
        item = {
            "instType": shapes.inst_type(f.instrument),
            "instId": f.instrument.id,
            "markPx": shapes.px(f.instrument, price),
            "ts": str(now),
        }
        return [f.push([item])]

    return poll


def funding_rate_poll(f: Feed) -> Poll:
    """``funding-rate``: at once, then every 10 s (OKX: every 30-90 s)."""
    due = [0]

    def poll(now: int) -> list[Any]:
        if now < due[0]:
            return []
        due[0] = now + 10_000
        return [f.push([shapes.funding_rate(f.instrument, f.market, now)])]

    return poll


BUILDERS: dict[str, Callable[[Feed], Poll]] = {
    "tickers": tickers_poll,
    "trades": trades_poll,
    "books5": top_poll,
    "bbo-tbt": top_poll,
    "mark-price": mark_price_poll,
    "funding-rate": funding_rate_poll,
}
