"""Central registry of WebSocket connections and their subscriptions.

Each connection has an outbound queue drained by its own writer task, so a slow client never blocks the
market pump (and faults such as stalls, drops or malformed frames can be injected per connection later).
Subscriptions are poll-based: on every pump the hub asks each one for the messages that are due; the venue
adapter implements ``poll`` with the engine's cursors (trade ids, book update ids, candle state).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from emulator.routing import WsRoute
from emulator.stats import Stats

log = logging.getLogger(__name__)

OUTBOUND_QUEUE = 10_000  # a client that falls this far behind is disconnected, as venues do


@dataclass
class Subscription:
    """One stream on one connection. ``poll(now_ms)`` returns the messages to send now (possibly none)."""

    name: str
    poll: Callable[[int], list[Any]]
    state: dict[str, Any] = field(default_factory=dict)


class WsConnection:
    """One client WebSocket: venue, host, path, subscriptions, outbound queue."""

    _ids = itertools.count(1)

    def __init__(
        self, venue: str, host: str, path: str, query: dict[str, str], ws: web.WebSocketResponse, stats: Stats
    ) -> None:
        self.id = next(self._ids)
        self.venue = venue
        self.host = host
        self.path = path
        self.query = query
        self.ws = ws
        self.stats = stats
        self.subscriptions: dict[str, Subscription] = {}
        self.state: dict[str, Any] = {}
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(OUTBOUND_QUEUE)
        self._writer: asyncio.Task[None] | None = None

    def send(self, message: Any) -> None:
        """Queue a JSON message (dicts/lists are serialised; strings are sent as they are)."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("ws %s: client too slow, disconnecting", self.id)
            self.close_soon()

    def close_soon(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def drop(self) -> None:
        """Cut the TCP connection without a close frame."""
        transport = self.ws._req.transport if self.ws._req is not None else None
        if transport is not None:
            transport.abort()

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None or self.ws.closed:
                await self.ws.close()
                return
            await self.ws.send_str(text)
            self.stats.ws_messages_sent += 1


class WsHub:
    """All open WebSocket connections of the server."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.connections: dict[int, WsConnection] = {}

    def pump(self, now_ms: int) -> None:
        for conn in list(self.connections.values()):
            for sub in list(conn.subscriptions.values()):
                try:
                    messages = sub.poll(now_ms)
                except Exception:
                    log.exception("ws %s: subscription %s failed", conn.id, sub.name)
                    del conn.subscriptions[sub.name]
                    continue
                for message in messages:
                    conn.send(message)

    def of_venue(self, venue: str) -> list[WsConnection]:
        return [c for c in self.connections.values() if c.venue == venue]

    async def close_all(self) -> None:
        for conn in list(self.connections.values()):
            await conn.ws.close()

    async def serve(
        self, request: web.Request, host: str, path: str, route: WsRoute
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=route.heartbeat, autoping=True)
        await ws.prepare(request)
        conn = WsConnection(route.venue, host, path, dict(request.query), ws, self.stats)
        self.connections[conn.id] = conn
        self.stats.ws_connections += 1
        conn._writer = asyncio.create_task(conn._write())
        try:
            await route.on_open(conn)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.stats.ws_messages_received += 1
                    await route.on_text(conn, msg.data)
        finally:
            self.connections.pop(conn.id, None)
            self.stats.ws_connections -= 1
            conn._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn._writer
        return ws
