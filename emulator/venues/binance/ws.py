"""Binance public market streams (``stream.binance.com``, ``fstream.binance.com``, ``dstream.binance.com``).

Raw streams at ``/ws`` and ``/ws/<streamName>``, combined ones at ``/stream?streams=a/b`` (payloads wrapped in
``{"stream", "data"}``); both accept ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` /
``SET_PROPERTY`` / ``GET_PROPERTY`` requests. The server pings every 20 s (Binance's rule; aiohttp
heartbeat). USDⓈ-M also answers under ``/public`` and ``/market``, where CCXT routes its futures streams.

Every payload carries ``emitUs`` (microseconds, when the emulator produced it) beside Binance's ``E``.
"""

from __future__ import annotations

from typing import Any

import orjson

from emulator.catalogue import Instrument
from emulator.engine import Engine
from emulator.market import bucket_start
from emulator.routing import Router
from emulator.venues.binance.instruments import COINM, SPOT, USDM, VENUE, Section
from emulator.venues.binance.protocol import INTERVALS_MS, fmt_price, fmt_qty
from emulator.venues.binance.rest import agg_trade
from emulator.ws import Subscription, WsConnection

HOSTS: dict[str, Section] = {"stream.binance.com": SPOT, "fstream.binance.com": USDM, "dstream.binance.com": COINM}
PREFIXES = {
    SPOT: ("/ws", "/stream"),
    USDM: ("/ws", "/stream", "/public/ws", "/public/stream", "/market/ws", "/market/stream"),
    COINM: ("/ws", "/stream"),
}
PING_INTERVAL_S = 20.0


class BinanceStreams:
    """Stream protocol: parses stream names into engine-backed :class:`Subscription` objects."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def install(self, router: Router) -> None:
        for host, section in HOSTS.items():
            for prefix in PREFIXES[section]:
                router.add_ws(VENUE, (host,), prefix, self.on_open, self.on_text, heartbeat=PING_INTERVAL_S)

    async def on_open(self, conn: WsConnection) -> None:
        conn.state["section"] = HOSTS[conn.host]
        conn.state["combined"] = "/stream" in conn.path
        names = conn.query.get("streams", "").split("/") if conn.state["combined"] else []
        tail = conn.path.rsplit("/ws/", 1)[1] if "/ws/" in conn.path else ""
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
                conn.send({"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]!r}"},
                           "id": request_id})
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
            conn.send({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"},
                       "id": request_id})

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
        market = self.engine.market(VENUE, instrument.symbol)
        section: Section = conn.state["section"]
        clock = self.engine.clock

        def wrap(payload: dict[str, Any]) -> Any:
            payload["emitUs"] = clock.now_us()
            return {"stream": name, "data": payload} if conn.state["combined"] else payload

        state: dict[str, Any] = {"last_sent": 0}

        def due(now: int, interval: int) -> bool:
            if now - state["last_sent"] < interval:
                return False
            state["last_sent"] = now
            return True

        price, qty = (lambda v: fmt_price(instrument, v)), (lambda v: fmt_qty(instrument, v))

        if channel in ("trade", "aggTrade"):
            state["trade_id"] = market.last_trade.id if market.last_trade else -1

            def poll(now: int) -> list[Any]:
                trades = market.trades_after(state["trade_id"])
                if trades:
                    state["trade_id"] = trades[-1].id
                out = []
                for t in trades:
                    if channel == "aggTrade":
                        payload = {"e": "aggTrade", "E": now, "s": instrument.id, **agg_trade(instrument, t)}
                    else:
                        payload = {"e": "trade", "E": now, "s": instrument.id, "t": t.id, "p": price(t.price),
                                   "q": qty(t.qty), "T": t.ts_ms, "m": t.taker_side == "sell", "M": True}
                    if section is not SPOT:
                        payload.pop("M", None)
                    out.append(wrap(payload))
                return out

        elif channel in ("ticker", "miniTicker"):

            def poll(now: int) -> list[Any]:
                if not due(now, 1000):
                    return []
                stats = market.ticker(now)
                payload: dict[str, Any] = {"e": "24hrTicker" if channel == "ticker" else "24hrMiniTicker",
                                           "E": now, "s": instrument.id}
                if channel == "ticker":
                    bid = market.book.best("buy") or (stats.last, 0)
                    ask = market.book.best("sell") or (stats.last, 0)
                    payload.update(p=price(stats.change), P=f"{stats.change_percent}",
                                   w=price(stats.vwap.quantize(instrument.price_tick)))
                    if section is SPOT:
                        payload.update(x=price(stats.open))
                    payload.update(c=price(stats.last), Q=qty(stats.last_qty))
                    if section is SPOT:
                        payload.update(b=price(bid[0]), B=qty(bid[1]), a=price(ask[0]), A=qty(ask[1]))
                    payload.update(o=price(stats.open), h=price(stats.high), l=price(stats.low),
                                   v=qty(stats.volume), q=price(stats.quote_volume.quantize(instrument.price_tick)),
                                   O=stats.open_ms, C=stats.close_ms, F=stats.first_trade_id, L=stats.last_trade_id,
                                   n=stats.count)
                else:
                    payload.update(c=price(stats.last), o=price(stats.open), h=price(stats.high),
                                   l=price(stats.low), v=qty(stats.volume),
                                   q=price(stats.quote_volume.quantize(instrument.price_tick)))
                return [wrap(payload)]

        elif channel == "bookTicker":
            state["top"] = None

            def poll(now: int) -> list[Any]:
                top = (market.book.best("buy"), market.book.best("sell"))
                if top == state["top"] or None in top:
                    return []
                state["top"] = top
                (bid, bid_qty), (ask, ask_qty) = top  # type: ignore[misc]
                payload: dict[str, Any] = {}
                if section is not SPOT:  # spot bookTicker has no event type/time; futures have both
                    payload.update(e="bookTicker", E=now, T=market.book.ts_ms)
                payload.update(u=market.book.update_id, s=instrument.id, b=price(bid), B=qty(bid_qty),
                               a=price(ask), A=qty(ask_qty))
                return [wrap(payload)]

        elif channel == "depth":
            # Spot: @depth every 1000 ms, @depth@100ms; futures default 250 ms. Diffs since the last push are
            # merged into one event with first/last update ids U/u (futures add pu, the previous u).
            interval = 100 if "100ms" in options else (1000 if section is SPOT else 250)
            state["u"] = market.book.update_id

            def poll(now: int) -> list[Any]:
                if now - state["last_sent"] < interval:
                    return []
                diffs = market.book.diffs_after(state["u"])
                if diffs is None:  # fell out of the history: skip ahead, clients see the gap and resync
                    state["u"] = market.book.update_id
                    return []
                if not diffs:
                    return []
                state["last_sent"] = now
                bids: dict[Any, Any] = {}
                asks: dict[Any, Any] = {}
                for diff in diffs:
                    bids.update(diff.bids)
                    asks.update(diff.asks)
                payload: dict[str, Any] = {"e": "depthUpdate", "E": now}
                if section is not SPOT:
                    payload["T"] = diffs[-1].ts_ms
                payload.update(s=instrument.id, U=diffs[0].first, u=diffs[-1].last)
                if section is not SPOT:
                    payload["pu"] = state["u"]
                payload.update(b=[[price(p), qty(q)] for p, q in sorted(bids.items(), reverse=True)],
                               a=[[price(p), qty(q)] for p, q in sorted(asks.items())])
                state["u"] = diffs[-1].last
                return [wrap(payload)]

        elif channel == "markPrice":
            interval = 1000 if options else 3000

            def poll(now: int) -> list[Any]:
                if not due(now, interval):
                    return []
                perpetual = instrument.kind == "swap"
                return [wrap({"e": "markPriceUpdate", "E": now, "s": instrument.id, "p": price(market.mark_price),
                              "i": price(market.index_price), "P": price(market.index_price),
                              "r": f"{market.funding_rate():.8f}" if perpetual else "",
                              "T": market.next_funding_ms(now) if perpetual else 0})]

        else:  # kline_<interval>: spot pushes every 1000 ms (2000 ms documented for >1s), futures 250 ms
            interval_name = channel[6:]
            tf_ms = INTERVALS_MS[interval_name]
            push_ms = 1000 if section is SPOT else 250
            state["bucket"] = bucket_start(clock.now_ms(), tf_ms)

            def poll(now: int) -> list[Any]:
                out = []
                bucket = bucket_start(now, tf_ms)
                if bucket != state["bucket"]:  # the previous candle closed: send it once more with x=true
                    out.extend(self._kline(instrument, market, tf_ms, interval_name, state["bucket"], now, True))
                    state["bucket"] = bucket
                    state["last_sent"] = now
                elif due(now, push_ms):
                    out.extend(self._kline(instrument, market, tf_ms, interval_name, bucket, now, False))
                return [wrap(p) for p in out]

        conn.subscriptions[name] = Subscription(name, poll)

    def _kline(self, instrument: Instrument, market: Any, tf_ms: int, interval: str, bucket: int, now: int,
               closed: bool) -> list[dict[str, Any]]:
        candles = market.candles(tf_ms, now, start_ms=bucket, end_ms=bucket, limit=1)
        if not candles:
            return []
        c = candles[0]
        price, qty = (lambda v: fmt_price(instrument, v)), (lambda v: fmt_qty(instrument, v))
        return [{"e": "kline", "E": now, "s": instrument.id, "k": {
            "t": c.open_ms, "T": c.open_ms + tf_ms - 1, "s": instrument.id, "i": interval,
            "f": c.first_trade_id, "L": c.last_trade_id, "o": price(c.open), "c": price(c.close),
            "h": price(c.high), "l": price(c.low), "v": qty(c.volume), "n": c.trades, "x": closed,
            "q": price(c.quote_volume.quantize(instrument.price_tick)), "V": qty(c.taker_buy_volume),
            "Q": price(c.taker_buy_quote.quantize(instrument.price_tick)), "B": "0"}}]
