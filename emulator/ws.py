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
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from emulator.routing import WsRoute
from emulator.stats import Stats

if TYPE_CHECKING:
    from emulator.faults import Faults

log = logging.getLogger(__name__)

OUTBOUND_QUEUE = 10_000  # a client that falls this far behind is disconnected, as venues do


@dataclass
class Subscription:
    """One stream on one connection. ``poll(now_ms)`` returns the messages to send now (possibly none).

    For fault injection the adapter also sets ``channel`` (``"depth"`` for incremental book streams, whose
    messages a ``sequence_gap`` fault drops; ``"ticker"``, ``"bookTicker"``, ``"trades"``, ...), ``symbol``
    (unified) and ``force(now_ms)``: one message now regardless of the push interval (``message_rate``).
    """

    name: str
    poll: Callable[[int], list[Any]]
    state: dict[str, Any] = field(default_factory=dict)
    channel: str = ""
    symbol: str = ""
    force: Callable[[int], list[Any]] | None = None


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
        self.close_code = 1000
        self.stalled = False
        self._saved_heartbeat: float | None = None
        self._loop = asyncio.get_running_loop()  # made by the hub, on the server loop

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` now when on the connection's loop, else hand it over with
        ``call_soon_threadsafe``: the queue, the heartbeat and the transport belong to that loop and
        are not thread-safe (a fault set from a test thread must not abort a transport itself)."""
        if asyncio._get_running_loop() is self._loop:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def send(self, message: Any) -> None:
        """Queue a JSON message (dicts/lists are serialised; strings are sent as they are)."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        self._on_loop(self._enqueue, text)

    def _enqueue(self, text: str) -> None:
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("ws %s: client too slow, disconnecting", self.id)
            self.close_soon()

    def close_soon(self, code: int = 1000) -> None:
        """Close with a close frame (``code``) once the messages queued before are sent."""
        self._on_loop(self._close_soon, code)

    def _close_soon(self, code: int) -> None:
        self.close_code = code
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    def close_later(self, delay_s: float, code: int = 1000) -> None:
        """:meth:`close_soon` after ``delay_s`` (a venue's grace between its notice and the close)."""
        self._on_loop(self._loop.call_later, delay_s, self._close_soon, code)

    def stall(self) -> None:
        """Half-open socket: keep the connection but send nothing (no data, no pings, no pongs)."""
        self._on_loop(self._stall)

    def _stall(self) -> None:
        if self.stalled:
            return
        self.stalled = True
        ws = self.ws
        self._saved_heartbeat = ws._heartbeat
        ws._cancel_heartbeat()
        ws._heartbeat = None
        ws._autoping = False

    def unstall(self) -> None:
        self._on_loop(self._unstall)

    def _unstall(self) -> None:
        if not self.stalled:
            return
        self.stalled = False
        ws = self.ws
        ws._autoping = True
        ws._heartbeat = self._saved_heartbeat
        if not ws.closed:
            ws._reset_heartbeat()

    def drop(self) -> None:
        """Cut the TCP connection without a close frame."""
        self._on_loop(self._drop)

    def _drop(self) -> None:
        transport = self.ws._req.transport if self.ws._req is not None else None
        if transport is not None:
            transport.abort()

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None or self.ws.closed:
                await self.ws.close(code=self.close_code)
                return
            if self.stalled:
                continue  # a half-open socket: what would have been sent is lost
            await self.ws.send_str(text)
            self.stats.ws_messages_sent += 1


class WsHub:
    """All open WebSocket connections of the server."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.connections: dict[int, WsConnection] = {}
        self.faults: Faults | None = None  # set by the server

    def pump(self, now_ms: int) -> None:
        faults = self.faults if self.faults is not None and self.faults.active else None
        for conn in list(self.connections.values()):
            for sub in list(conn.subscriptions.values()):
                if faults is not None and faults.rate_for(conn, sub) is not None:
                    continue  # a message_rate fault drives this subscription
                try:
                    messages = sub.poll(now_ms)
                except Exception:
                    log.exception("ws %s: subscription %s failed", conn.id, sub.name)
                    del conn.subscriptions[sub.name]
                    continue
                if faults is not None:
                    messages = faults.filter_messages(conn, sub, messages)
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
            if self.faults is not None:
                self.faults.on_ws_open(conn)
            await route.on_open(conn)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and not conn.stalled:
                    self.stats.ws_messages_received += 1
                    await route.on_text(conn, msg.data)
        finally:
            self.connections.pop(conn.id, None)
            self.stats.ws_connections -= 1
            if route.on_close is not None:
                try:
                    route.on_close(conn)
                except Exception:
                    log.exception("ws %s: on_close failed", conn.id)
            conn._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn._writer
        return ws
