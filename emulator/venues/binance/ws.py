"""Binance public market streams (``stream.binance.com``, ``fstream.binance.com``, ``dstream.binance.com``).

Raw streams at ``/ws`` and ``/ws/<streamName>``, combined ones at ``/stream?streams=a/b`` (payloads wrapped in
``{"stream", "data"}``); both accept ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` /
``SET_PROPERTY`` / ``GET_PROPERTY`` requests. The server pings every 20 s (Binance's rule; aiohttp
heartbeat). USDⓈ-M also answers under ``/public`` and ``/market``, where CCXT routes its futures streams.

Every payload carries ``emitUs`` (microseconds, when the emulator produced it) beside Binance's ``E``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from emulator.catalogue import Instrument
from emulator.engine import Clock, Engine
from emulator.market import Market, bucket_start
from emulator.routing import Router
from emulator.venues.binance.instruments import COINM, SPOT, USDM, VENUE, Section
from emulator.venues.binance.protocol import INTERVALS_MS, fmt_price, fmt_qty
from emulator.venues.binance.rest import agg_trade
from emulator.venues.binance.user import WS_API_HOSTS, BinanceUserStreams
from emulator.ws import Subscription, WsConnection

HOSTS: dict[str, Section] = {
    "stream.binance.com": SPOT,
    "fstream.binance.com": USDM,
    "dstream.binance.com": COINM,
}
PREFIXES = {
    SPOT: ("/ws", "/stream"),
    USDM: ("/ws", "/stream", "/public/ws", "/public/stream", "/market/ws", "/market/stream", "/private/ws"),
    COINM: ("/ws", "/stream"),
}
PING_INTERVAL_S = 20.0


class BinanceStreams:
    """Stream protocol: parses stream names into engine-backed :class:`Subscription` objects."""

    def __init__(self, engine: Engine, user: BinanceUserStreams | None = None) -> None:
        self.engine = engine
        self.user = user

    def install(self, router: Router) -> None:
        for host, section in HOSTS.items():
            for prefix in PREFIXES[section]:
                router.add_ws(
                    VENUE,
                    (host,),
                    prefix,
                    self.on_open,
                    self.on_text,
                    heartbeat=PING_INTERVAL_S,
                    on_close=self.on_close,
                )
        if self.user is not None:
            router.add_ws(
                VENUE,
                WS_API_HOSTS,
                "/ws-api/v3",
                self.user.ws_api_open,
                self.user.ws_api_text,
                heartbeat=PING_INTERVAL_S,
                on_close=self.on_close,
            )

    def on_close(self, conn: WsConnection) -> None:
        if self.user is not None:
            self.user.closed(conn)

    async def on_open(self, conn: WsConnection) -> None:
        conn.state["section"] = HOSTS[conn.host]
        conn.state["combined"] = "/stream" in conn.path
        names = conn.query.get("streams", "").split("/") if conn.state["combined"] else []
        tail = conn.path.rsplit("/ws/", 1)[1] if "/ws/" in conn.path else ""
        listen_key = conn.query.get("listenKey") or tail
        if self.user is not None and listen_key and "@" not in listen_key:
            if self.user.attach(conn, conn.state["section"], listen_key):
                return
            if conn.path.endswith("/private/ws"):  # an unknown or expired key: Binance closes at once
                conn.close_soon(1008)
                return
        names.append(tail)
        # CCXT connects to /ws/<n> (a stream index, not a stream name): Binance ignores such a tail.
        for name in filter(None, names):
            self.subscribe(conn, name)

    async def on_text(self, conn: WsConnection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            conn.send({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}})
            return
        if not isinstance(request, dict):
            conn.send({"error": {"code": 2, "msg": "Invalid request: request must be an object"}})
            return
        request_id, method, params = request.get("id"), request.get("method"), request.get("params") or []
        if method == "SUBSCRIBE":
            bad = [n for n in params if not isinstance(n, str) or self.parse(conn, n) is None]
            if bad:
                conn.send(
                    {
                        "error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]!r}"},
                        "id": request_id,
                    }
                )
                return
            for name in params:
                self.subscribe(conn, name)
            conn.send({"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE":
            for name in params:
                conn.subscriptions.pop(name, None)
            conn.send({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send({"result": list(conn.subscriptions), "id": request_id})
        elif method == "SET_PROPERTY" and params[:1] == ["combined"]:
            conn.state["combined"] = bool(params[1]) if len(params) > 1 else False
            conn.send({"result": None, "id": request_id})
        elif method == "GET_PROPERTY" and params[:1] == ["combined"]:
            conn.send({"result": conn.state["combined"], "id": request_id})
        else:
            conn.send(
                {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id}
            )

    # --- streams ------------------------------------------------------------------------------------------

    def parse(self, conn: WsConnection, name: str) -> tuple[Instrument, str, list[str]] | None:
        """``btcusdt@depth@100ms`` -> (instrument, "depth", ["100ms"])."""
        symbol, _, rest = name.partition("@")
        section: Section = conn.state["section"]
        instrument = self.engine.catalogue.by_id(VENUE, symbol.upper(), section.kinds)
        if instrument is None or not section.owns(instrument) or not rest:
            return None
        channel, *options = rest.split("@")
        if channel.startswith("kline_") and channel[6:] in INTERVALS_MS:
            return instrument, channel, options
        known = {"trade", "aggTrade", "ticker", "miniTicker", "bookTicker", "depth"}
        if section is not SPOT:
            known.add("markPrice")
        if channel not in known or any(o not in ("100ms", "250ms", "500ms", "1000ms", "1s") for o in options):
            return None
        return instrument, channel, options

    def subscribe(self, conn: WsConnection, name: str) -> None:
        parsed = self.parse(conn, name)
        if parsed is None:
            return
        instrument, channel, options = parsed
        stream = Stream(
            name,
            conn,
            instrument,
            self.engine.market(VENUE, instrument.symbol),
            conn.state["section"],
            options,
            self.engine.clock,
        )
        builder = BUILDERS.get(channel) or (kline_poll if channel.startswith("kline_") else None)
        assert builder is not None  # parse() only accepts known channels
        poll = builder(stream, channel)
        unified = CHANNELS.get(channel, "ohlcv")

        def force(now: int) -> list[Any]:
            """One message now, whatever the push interval (message_rate faults); depth restates the best
            bid so that there is a diff to send."""
            if unified == "depth":
                best = stream.market.book.best("buy")
                if best is not None:
                    stream.market.book.apply({best[0]: best[1]}, {}, now)
            stream.forced = True
            try:
                return poll(now)
            finally:
                stream.forced = False

        conn.subscriptions[name] = Subscription(
            name,
            poll,
            channel=unified,
            symbol=instrument.symbol,
            force=force if unified in ("ticker", "bookTicker", "depth") else None,
        )


@dataclass
class Stream:
    """What a stream's poll function needs: where it goes, what it reads, how it prints numbers."""

    name: str
    conn: WsConnection
    instrument: Instrument
    market: Market
    section: Section
    options: list[str]
    clock: Clock
    last_sent: int = 0
    forced: bool = False  # set while a message_rate fault asks for a message regardless of the interval

    def wrap(self, payload: dict[str, Any]) -> Any:
        """Stamp the emit time and wrap for combined streams."""
        payload["emitUs"] = self.clock.now_us()
        return {"stream": self.name, "data": payload} if self.conn.state["combined"] else payload

    def due(self, now: int, interval: int) -> bool:
        if now - self.last_sent < interval and not self.forced:
            return False
        self.last_sent = now
        return True

    def price(self, value: Decimal) -> str:
        return fmt_price(self.instrument, value)

    def qty(self, value: Decimal) -> str:
        return fmt_qty(self.instrument, value)


Poll = Callable[[int], list[Any]]


def trade_poll(s: Stream, channel: str) -> Poll:
    """@trade / @aggTrade: every new trade, as it happens."""
    cursor = s.market.last_trade.id if s.market.last_trade else -1

    def poll(now: int) -> list[Any]:
        nonlocal cursor
        out = []
        for t in s.market.trades_after(cursor):
            cursor = t.id
            if channel == "aggTrade":
                payload = {"e": "aggTrade", "E": now, "s": s.instrument.id, **agg_trade(s.instrument, t)}
            else:
                payload = {
                    "e": "trade",
                    "E": now,
                    "s": s.instrument.id,
                    "t": t.id,
                    "p": s.price(t.price),
                    "q": s.qty(t.qty),
                    "T": t.ts_ms,
                    "m": t.taker_side == "sell",
                    "M": True,
                }
            if s.section is not SPOT:  # futures trades have no "ignore" flag
                payload.pop("M", None)
            out.append(s.wrap(payload))
        return out

    return poll


def ticker_poll(s: Stream, channel: str) -> Poll:
    """@ticker / @miniTicker: rolling 24 h statistics every 1000 ms."""

    def poll(now: int) -> list[Any]:
        if not s.due(now, 1000):
            return []
        stats = s.market.ticker(now)
        quote_volume = s.price(stats.quote_volume.quantize(s.instrument.price_tick))
        if channel == "miniTicker":
            return [
                s.wrap(
                    {
                        "e": "24hrMiniTicker",
                        "E": now,
                        "s": s.instrument.id,
                        "c": s.price(stats.last),
                        "o": s.price(stats.open),
                        "h": s.price(stats.high),
                        "l": s.price(stats.low),
                        "v": s.qty(stats.volume),
                        "q": quote_volume,
                    }
                )
            ]
        payload: dict[str, Any] = {
            "e": "24hrTicker",
            "E": now,
            "s": s.instrument.id,
            "p": s.price(stats.change),
            "P": f"{stats.change_percent}",
            "w": s.price(stats.vwap.quantize(s.instrument.price_tick)),
        }
        if s.section is SPOT:  # futures tickers carry neither the previous close nor the top of book
            bid = s.market.book.best("buy") or (stats.last, Decimal(0))
            ask = s.market.book.best("sell") or (stats.last, Decimal(0))
            payload.update(
                x=s.price(stats.open), b=s.price(bid[0]), B=s.qty(bid[1]), a=s.price(ask[0]), A=s.qty(ask[1])
            )
        payload.update(
            c=s.price(stats.last),
            Q=s.qty(stats.last_qty),
            o=s.price(stats.open),
            h=s.price(stats.high),
            l=s.price(stats.low),
            v=s.qty(stats.volume),
            q=quote_volume,
            O=stats.open_ms,
            C=stats.close_ms,
            F=stats.first_trade_id,
            L=stats.last_trade_id,
            n=stats.count,
        )
        return [s.wrap(payload)]

    return poll


def book_ticker_poll(s: Stream, _channel: str) -> Poll:
    """@bookTicker: every change of the best bid or ask."""
    last_top: tuple[Any, Any] | None = None

    def poll(now: int) -> list[Any]:
        nonlocal last_top
        bid, ask = s.market.book.best("buy"), s.market.book.best("sell")
        if ((bid, ask) == last_top and not s.forced) or bid is None or ask is None:
            return []
        last_top = (bid, ask)
        payload: dict[str, Any] = {}
        if s.section is not SPOT:  # spot bookTicker has no event type or time; futures have both
            payload.update(e="bookTicker", E=now, T=s.market.book.ts_ms)
        payload.update(
            u=s.market.book.update_id,
            s=s.instrument.id,
            b=s.price(bid[0]),
            B=s.qty(bid[1]),
            a=s.price(ask[0]),
            A=s.qty(ask[1]),
        )
        return [s.wrap(payload)]

    return poll


def depth_poll(s: Stream, _channel: str) -> Poll:
    """@depth: the book diffs since the last push merged into one event with first/last update ids U/u
    (futures add pu, the previous u). Spot pushes every 1000 ms or 100 ms (@100ms), futures every 250 ms."""
    interval = 100 if "100ms" in s.options else (1000 if s.section is SPOT else 250)
    cursor = s.market.book.update_id

    def poll(now: int) -> list[Any]:
        nonlocal cursor
        if now - s.last_sent < interval and not s.forced:
            return []
        diffs = s.market.book.diffs_after(cursor)
        if diffs is None:  # fell out of the history: skip ahead; clients see the gap and resync
            cursor = s.market.book.update_id
            return []
        if not diffs:
            return []
        s.last_sent = now
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for diff in diffs:
            bids.update(diff.bids)
            asks.update(diff.asks)
        payload: dict[str, Any] = {"e": "depthUpdate", "E": now}
        if s.section is not SPOT:
            payload["T"] = diffs[-1].ts_ms
        payload.update(s=s.instrument.id, U=diffs[0].first, u=diffs[-1].last)
        if s.section is not SPOT:
            payload["pu"] = cursor
        payload.update(
            b=[[s.price(p), s.qty(q)] for p, q in sorted(bids.items(), reverse=True)],
            a=[[s.price(p), s.qty(q)] for p, q in sorted(asks.items())],
        )
        cursor = diffs[-1].last
        return [s.wrap(payload)]

    return poll


def mark_price_poll(s: Stream, _channel: str) -> Poll:
    """@markPrice (futures): mark, index and funding every 3 s, or every 1 s with @1s."""
    interval = 1000 if s.options else 3000
    perpetual = s.instrument.kind == "swap"

    def poll(now: int) -> list[Any]:
        if not s.due(now, interval):
            return []
        return [
            s.wrap(
                {
                    "e": "markPriceUpdate",
                    "E": now,
                    "s": s.instrument.id,
                    "p": s.price(s.market.mark_price),
                    "i": s.price(s.market.index_price),
                    "P": s.price(s.market.index_price),
                    "r": f"{s.market.funding_rate():.8f}" if perpetual else "",
                    "T": s.market.next_funding_ms(now) if perpetual else 0,
                }
            )
        ]

    return poll


def kline_poll(s: Stream, channel: str) -> Poll:
    """@kline_<interval>: open candle every 1000 ms (futures 250 ms), a closing one once with x=true."""
    interval = channel.removeprefix("kline_")
    tf_ms = INTERVALS_MS[interval]
    push_ms = 1000 if s.section is SPOT else 250
    open_bucket = bucket_start(s.clock.now_ms(), tf_ms)

    def event(bucket: int, now: int, closed: bool) -> list[Any]:
        candles = s.market.candles(tf_ms, now, start_ms=bucket, end_ms=bucket, limit=1)
        if not candles:
            return []
        c = candles[0]
        tick = s.instrument.price_tick
        return [
            s.wrap(
                {
                    "e": "kline",
                    "E": now,
                    "s": s.instrument.id,
                    "k": {
                        "t": c.open_ms,
                        "T": c.open_ms + tf_ms - 1,
                        "s": s.instrument.id,
                        "i": interval,
                        "f": c.first_trade_id,
                        "L": c.last_trade_id,
                        "o": s.price(c.open),
                        "c": s.price(c.close),
                        "h": s.price(c.high),
                        "l": s.price(c.low),
                        "v": s.qty(c.volume),
                        "n": c.trades,
                        "x": closed,
                        "q": s.price(c.quote_volume.quantize(tick)),
                        "V": s.qty(c.taker_buy_volume),
                        "Q": s.price(c.taker_buy_quote.quantize(tick)),
                        "B": "0",
                    },
                }
            )
        ]

    def poll(now: int) -> list[Any]:
        nonlocal open_bucket
        bucket = bucket_start(now, tf_ms)
        if bucket != open_bucket:
            closed = event(open_bucket, now, True)
            open_bucket, s.last_sent = bucket, now
            return closed
        return event(bucket, now, False) if s.due(now, push_ms) else []

    return poll


CHANNELS = {  # Binance channel -> the venue-neutral Subscription.channel
    "trade": "trades",
    "aggTrade": "trades",
    "ticker": "ticker",
    "miniTicker": "ticker",
    "bookTicker": "bookTicker",
    "depth": "depth",
    "markPrice": "markPrice",
}

BUILDERS: dict[str, Callable[[Stream, str], Poll]] = {
    "trade": trade_poll,
    "aggTrade": trade_poll,
    "ticker": ticker_poll,
    "miniTicker": ticker_poll,
    "bookTicker": book_ticker_poll,
    "depth": depth_poll,
    "markPrice": mark_price_poll,
}
