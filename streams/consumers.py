"""The market-data WebSocket at ``/ws/v1/market/`` (protocol: docs/streams.md).

The consumer only authenticates, validates requests, follows and leaves streams, renews
leases with the stream manager, and writes frames; the manager owns every exchange
subscription. A consumer does not join the stream groups itself: the process's
:mod:`streams.fanout` holds one membership per stream and hands each state to the
consumers following it. Each client has a bounded outbox holding at most one pending
state per stream (a newer state replaces an unsent older one); a client whose socket
stays backed up for ``STREAMS_CLIENT_MAX_BEHIND_S`` is disconnected, and nobody else
waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from connectors import ConnectorError, create_connector
from markets.cache import market_data_get, now_ms
from streams.auth import Identity, authenticate_scope
from streams.conf import setting
from streams.fanout import StreamFanout, fanout_for
from streams.groups import CONTROL_CHANNEL, STREAM_CHANNELS, StreamKey

__all__ = ["MarketStreamConsumer", "server_send", "server_transport", "transport_backlog"]

logger = logging.getLogger("streams.consumers")

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4008


def server_send(send: Any) -> Any:
    """The server's own ``send`` under Channels' middleware wrappers.

    The session middleware wraps ``send`` (``InstanceSessionWrapper.send``) to save the
    session on ``http.response.start``/``websocket.accept``; it passes every other message
    on, after reading the lazy session's state each time. Stream frames go straight to the
    server's ``send`` instead (resolved once per connection).
    """
    for _ in range(8):
        inner = getattr(getattr(send, "__self__", None), "real_send", None)
        if inner is None:
            break
        send = inner
    return send


def server_transport(send: Any) -> Any:
    """daphne's Twisted transport for this socket, or None under other servers.

    daphne gives an application no back-pressure: ``send`` queues in Twisted's transport
    and returns at once, so a client that stops reading grows that buffer without bound.
    The server's ``send`` is ``partial(server.handle_reply, protocol)`` under daphne; we
    read the protocol's transport buffer. Servers whose ``send`` waits for the socket
    (uvicorn, websockets) have none here and apply back-pressure by making ``send`` slow.
    """
    protocol = (getattr(server_send(send), "args", None) or (None,))[0]
    return getattr(protocol, "transport", None)


def transport_backlog(transport: Any) -> int:
    """Bytes the server has accepted for this socket but not yet handed to the kernel."""
    if transport is None:
        return 0
    buffered = len(getattr(transport, "dataBuffer", b"") or b"") - int(getattr(transport, "offset", 0) or 0)
    return max(0, buffered) + int(getattr(transport, "_tempDataLen", 0) or 0)


def error_frame(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The REST error envelope, with a ``type`` so clients can dispatch on one key."""
    return {"type": "error", "error": {"code": code, "message": message, "field": field}, **extra}


def _markets(exchange: str) -> dict[str, Any]:
    connector = create_connector(
        exchange, environment=settings.MARKET_DATA_ENVIRONMENT, emulator_url=settings.EMULATOR_URL
    )
    return connector.load_markets()


class RequestError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.frame = error_frame(code, message, field)


class MarketStreamConsumer(AsyncWebsocketConsumer):
    """One client of the market-data streams."""

    identity: Identity | None = None

    async def connect(self) -> None:
        self.identity = await database_sync_to_async(authenticate_scope)(self.scope)
        self.environment: str = settings.MARKET_DATA_ENVIRONMENT
        self.streams: dict[str, StreamKey] = {}
        self.outbox: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self.last_sent: dict[str, int] = {}
        self.outbox_ready = asyncio.Event()
        self.behind_since: float | None = None
        self.sending_since: float | None = None
        self.closing = False
        self.tasks: list[asyncio.Task[Any]] = []
        self.status_seq = 0
        self.fanout: StreamFanout = fanout_for(self.channel_layer)
        self.raw_send = server_send(self.base_send)
        self.transport = server_transport(self.base_send)
        await self.accept()
        if not self.identity.ok:
            code = (
                CLOSE_FORBIDDEN
                if self.identity.error_code == "permission_denied"
                else CLOSE_NOT_AUTHENTICATED
            )
            await self.send_json(error_frame(self.identity.error_code, self.identity.error_message))
            await self.close(code=code)
            self.closing = True
            return
        self.tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._renew_leases())]
        await self.send_json(
            {
                "type": "welcome",
                "user": self.identity.username,
                "environment": self.environment,
                "exchanges": list(setting("STREAMS_EXCHANGES")),
                "channels": list(STREAM_CHANNELS),
                "max_subscriptions": int(setting("STREAMS_MAX_SUBSCRIPTIONS_PER_CLIENT")),
            }
        )

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.streams:
            keys = list(self.streams.values())
            for key in keys:
                await self.fanout.leave(key, self)
            await self._control("lease.release", keys)
            self.streams.clear()

    # ------------------------------------------------------------------ requests

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.identity is None or not self.identity.ok:
            return
        try:
            content = orjson.loads(text_data if text_data is not None else bytes_data or b"")
        except orjson.JSONDecodeError:
            await self.send_json(error_frame("invalid_json", "Frames must be JSON objects"))
            return
        if not isinstance(content, dict):
            await self.send_json(error_frame("invalid_request", "Frames must be JSON objects"))
            return
        echo = {"id": content["id"]} if isinstance(content.get("id"), str | int) else {}
        try:
            await self._dispatch(content, echo)
        except RequestError as exc:
            await self.send_json({**exc.frame, **echo})

    async def _dispatch(self, content: dict[str, Any], echo: dict[str, Any]) -> None:
        action = content.get("action")
        if action == "subscribe":
            await self._subscribe(self._stream_key(content), echo)
        elif action == "unsubscribe":
            await self._unsubscribe(self._stream_key(content, check_markets=False), echo)
        elif action == "ping":
            await self.send_json({"type": "pong", "time_ms": now_ms(), **echo})
        elif action == "list":
            streams = [self._describe(k) for k in self.streams.values()]
            await self.send_json({"type": "subscriptions", "streams": streams, **echo})
        else:
            raise RequestError(
                "unknown_action", "action must be subscribe, unsubscribe, list or ping", "action"
            )

    def _stream_key(self, content: dict[str, Any], *, check_markets: bool = True) -> Any:
        exchange, channel, symbol = content.get("exchange"), content.get("channel"), content.get("symbol")
        allowed = tuple(setting("STREAMS_EXCHANGES"))
        if not isinstance(exchange, str) or exchange not in allowed:
            raise RequestError(
                "unknown_exchange", f"exchange must be one of {', '.join(allowed)}", "exchange"
            )
        if channel not in STREAM_CHANNELS:
            raise RequestError(
                "unknown_channel", f"channel must be one of {', '.join(STREAM_CHANNELS)}", "channel"
            )
        if not isinstance(symbol, str) or not 0 < len(symbol) <= 64:
            raise RequestError("invalid_input", "symbol must be a unified symbol such as BTC/USDT", "symbol")
        return StreamKey(exchange, self.environment, channel, symbol)

    async def _check_symbol(self, key: StreamKey) -> None:
        try:
            markets = await sync_to_async(_markets, thread_sensitive=False)(key.exchange)
        except ConnectorError as exc:
            raise RequestError(
                "exchange_unavailable", f"{key.exchange} markets are unavailable: {exc}"
            ) from None
        if key.symbol not in markets:
            raise RequestError(
                "unknown_symbol", f"{key.symbol[:64]!r} is not a market of {key.exchange}", "symbol"
            )

    def _describe(self, key: StreamKey) -> dict[str, str]:
        return {"exchange": key.exchange, "channel": key.channel, "symbol": key.symbol}

    async def _subscribe(self, key: StreamKey, echo: dict[str, Any]) -> None:
        label = key.label()
        if label not in self.streams:
            if len(self.streams) >= int(setting("STREAMS_MAX_SUBSCRIPTIONS_PER_CLIENT")):
                raise RequestError(
                    "too_many_subscriptions",
                    f"at most {setting('STREAMS_MAX_SUBSCRIPTIONS_PER_CLIENT')} subscriptions per connection",
                )
            await self._check_symbol(key)
            self.streams[label] = key
            await self.fanout.join(key, self)
            await self._control("lease.renew", [key])
        await self.send_json({"type": "subscribed", **self._describe(key), **echo})
        await self._snapshot(key)

    async def _unsubscribe(self, key: StreamKey, echo: dict[str, Any]) -> None:
        label = key.label()
        if self.streams.pop(label, None) is None:
            raise RequestError("not_subscribed", "not subscribed to this stream", "symbol")
        await self.fanout.leave(key, self)
        await self._control("lease.release", [key])
        self.outbox.pop(label, None)
        self.outbox.pop("status:" + label, None)
        self.last_sent.pop(label, None)
        await self.send_json({"type": "unsubscribed", **self._describe(key), **echo})

    async def _snapshot(self, key: StreamKey) -> None:
        """The cached latest state, sent right after ``subscribed`` (if there is one yet;
        otherwise the manager's first update, which is complete, follows shortly)."""
        entry = await database_sync_to_async(market_data_get)(
            exchange=key.exchange, environment=key.environment, channel=key.channel, symbol=key.symbol
        )
        if entry is None:
            return
        age_ms = entry.age_ms()
        frame = {
            "type": "snapshot",
            **self._describe(key),
            "environment": key.environment,
            "seq": entry.sequence,
            "venue_time_ms": entry.venue_time_ms,
            "received_us": entry.received_time_ms * 1000,
            "age_ms": age_ms,
            "stale": age_ms > float(setting("STREAMS_STALE_AFTER_S")) * 1000,
            "source": entry.source,
            "data": entry.data,
        }
        # A snapshot is a state like any other: it never replaces a newer pending or sent update.
        self._offer(key.label(), entry.sequence, orjson.dumps(frame).decode(), snapshot=True)

    async def _control(self, kind: str, keys: list[StreamKey]) -> None:
        message = {
            "type": kind,
            "holder": self.channel_name,
            "streams": [[k.exchange, k.channel, k.symbol] for k in keys],
            "ttl": float(setting("STREAMS_LEASE_TTL_S")),
        }
        try:
            await self.channel_layer.send(CONTROL_CHANNEL, message)
        except ChannelFull:
            # No manager is reading (yet); the lease is renewed on the next round anyway.
            logger.info("stream manager control channel is full; is run_streams running?")

    async def _renew_leases(self) -> None:
        every = float(setting("STREAMS_LEASE_RENEW_S"))
        while True:
            await asyncio.sleep(every)
            if self.streams:
                await self._control("lease.renew", list(self.streams.values()))

    # ------------------------------------------------------------------ events from the manager

    def stream_event(self, event: dict[str, Any]) -> None:
        """A ``stream.update`` or ``stream.status`` from the manager, handed over by the
        process's fan-out (synchronously: it only queues the frame in the outbox)."""
        stream = event["stream"]
        if self.closing or stream not in self.streams:
            return
        if event["type"] == "stream.update":
            self._offer(stream, int(event.get("seq") or 0), event["text"])
        else:
            self.status_seq += 1
            self._offer("status:" + stream, self.status_seq, event["text"])

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Stream events normally come through the fan-out, not this consumer's channel; one
        # sent here directly is taken the same way. Channels 4.2+ hops to a worker thread
        # (aclose_old_connections) before *every* handler, and stream events touch no
        # database, so they skip that hop. Everything else keeps the default behaviour.
        if message.get("type") in ("stream.update", "stream.status"):
            self.stream_event(message)
        else:
            await super().dispatch(message)

    # ------------------------------------------------------------------ the bounded outbox

    def _offer(self, key: str, seq: int, text: str, *, snapshot: bool = False) -> None:
        """Queue one state; a newer state replaces an unsent older one of the same stream."""
        pending = self.outbox.get(key)
        if pending is not None and pending[0] >= seq and not key.startswith("status:"):
            return
        if snapshot and self.last_sent.get(key, -1) >= seq:
            return
        self.outbox[key] = (seq, text)
        self.outbox_ready.set()
        if self.sending_since is not None and time.monotonic() - self.sending_since > self._max_behind():
            self._too_slow()

    def _max_behind(self) -> float:
        return float(setting("STREAMS_CLIENT_MAX_BEHIND_S"))

    def backlog(self) -> int:
        return transport_backlog(self.transport)

    def _too_slow(self) -> None:
        if self.closing:
            return
        self.closing = True
        logger.info("disconnecting %s: it stayed %.0f s behind", self.channel_name, self._max_behind())
        self.tasks.append(asyncio.ensure_future(self._close_too_slow()))

    async def _close_too_slow(self) -> None:
        with contextlib.suppress(Exception):
            await self.send_json(error_frame("slow_consumer", "The client did not keep up with its streams"))
            await self.close(code=CLOSE_TOO_SLOW)

    async def _writer(self) -> None:
        high_water = int(setting("STREAMS_CLIENT_HIGH_WATER_BYTES"))
        while not self.closing:
            await self.outbox_ready.wait()
            self.outbox_ready.clear()
            while self.outbox and not self.closing:
                if self.backlog() > high_water:
                    now = time.monotonic()
                    self.behind_since = self.behind_since or now
                    if now - self.behind_since > self._max_behind():
                        self._too_slow()
                        return
                    await asyncio.sleep(0.05)  # meanwhile newer states replace the pending ones
                    continue
                self.behind_since = None
                key, (seq, text) = self.outbox.popitem(last=False)
                if not key.startswith("status:"):
                    if self.last_sent.get(key, -1) >= seq:
                        continue
                    self.last_sent[key] = seq
                self.sending_since = time.monotonic()
                await self.raw_send({"type": "websocket.send", "text": text})
                self.sending_since = None

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=orjson.dumps(content).decode())
