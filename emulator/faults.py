"""Fault injection: a registry of active faults, applied to REST requests (a middleware) and WebSockets.

Controlled from Python (``server.faults.set(kind, venue=..., endpoint=..., **params)``) and over HTTP
(``POST/GET/DELETE /_emulator/faults``). Every fault is scoped to one venue (or all, ``venue=None``) and
optionally to endpoints matching a glob pattern (see :func:`endpoint_matches`). Venue-specific shapes (error
bodies, forced-disconnect messages) come from adapter hooks (:meth:`VenueAdapter.fault_response`,
:meth:`VenueAdapter.forced_disconnect`), so CCXT sees what it would see from the real venue.

Kinds and their parameters (``count``: apply to the next N matching requests/messages then disappear;
``probability``: apply to that share of matching requests; both optional, default: every request, forever):

REST (middleware; ``endpoint`` narrows them):
* ``latency``       ``ms`` (default 500), ``jitter_ms`` (0): sleep before handling.
* ``rate_limit``    ``status`` 429 (default) or 418 (Binance's ban), ``retry_after`` seconds (default 1 for
                    429, 120 for 418): answered before handling, with ``Retry-After`` and the venue's body.
* ``error``         ``status`` (default 503): answered before handling (maintenance, overload).
* ``error_after_accept`` ``status`` (default 502) or ``drop=True`` (TCP abort, no answer): the handler runs
                    (an order is accepted and exists), then its answer is replaced.
* ``hang``          ``max_s`` (default 300), ``accept`` (False: before the handler; True: after it): the
                    answer is held until the fault is cleared or ``max_s`` passes.
* ``clock_skew``    ``offset_ms`` (e.g. -2000: the server is 2 s behind, so clients look 2 s ahead):
                    moves ``engine.clock.offset_ms`` (all venues share the clock); cleared → back to 0.

WebSocket (``endpoint`` matches ``host/path`` of the connection, e.g. ``"stream.binance.com/ws*"``):
* ``drop_ws``       one-shot: abort every matching open connection now (TCP reset, no close frame).
* ``stall_ws``      connections open now stay open but send nothing (no data, no pings, no pongs) until the
                    fault is cleared; ``new_connections=True`` also stalls connections opened later.
* ``forced_disconnect`` one-shot: ``reason`` "shutdown" (default: Binance ``serverShutdown``, OKX notice
                    64008) or "lifetime" (Binance's 24 h cut); the venue's messages are sent, then the
                    connection is closed after ``grace_ms`` (default 200) with the venue's close code.
* ``malformed_frame`` one-shot: send ``text`` (default an invalid JSON frame) on every matching connection.
* ``sequence_gap``  drop one message of incremental order-book streams (channel ``"depth"``): once per
                    subscription (default) or every ``every`` messages; ``count`` bounds the total.
* ``message_rate``  ``rate`` messages/s per subscription (one symbol, one channel), for channels ``channels``
                    (default ``["ticker", "bookTicker", "depth"]``) and optionally ``symbols`` (unified);
                    replaces the venue's push interval while active.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator.routing import VenueRequest

if TYPE_CHECKING:
    from emulator.server import EmulatorServer
    from emulator.ws import Subscription, WsConnection

log = logging.getLogger(__name__)

REQUEST_KINDS = frozenset({"latency", "rate_limit", "error", "error_after_accept", "hang"})
WS_ONE_SHOT = frozenset({"drop_ws", "forced_disconnect", "malformed_frame"})
WS_KINDS = frozenset({"stall_ws", "sequence_gap", "message_rate"}) | WS_ONE_SHOT
KINDS = REQUEST_KINDS | WS_KINDS | {"clock_skew"}
RATE_CHANNELS = ("ticker", "bookTicker", "depth")
MALFORMED = '{"e":"depthUpdate","E":'  # cut mid-object: not valid JSON


class FaultError(ValueError):
    """A fault specification the registry refuses (unknown kind, bad parameter)."""


def endpoint_matches(pattern: str | None, method: str | None, host: str, path: str) -> bool:
    """``pattern`` is a glob (``*``, ``?``) matched against ``"METHOD host/path"``, ``"host/path"`` and
    ``"/path"`` (the first that fits wins), so ``"POST api.binance.com/api/v3/order"``,
    ``"fapi.binance.com/fapi/*"`` and ``"*/order"`` all work. ``None`` matches everything."""
    if not pattern:
        return True
    candidates = [f"{host}{path}", path]
    if method:
        candidates.insert(0, f"{method} {host}{path}")
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


@dataclass
class Fault:
    id: str
    kind: str
    venue: str | None
    endpoint: str | None
    params: dict[str, Any]
    count: int | None = None
    probability: float = 1.0
    created_ms: int = 0
    hits: int = 0
    released: asyncio.Event | None = None  # hang: set when cleared
    connections: set[int] = field(default_factory=set)  # stall_ws: the connections it holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "venue": self.venue,
            "endpoint": self.endpoint,
            "params": self.params,
            "count": self.count,
            "probability": self.probability,
            "created_ms": self.created_ms,
            "hits": self.hits,
        }


class Faults:
    """The active faults of one server. Everything runs on the server loop: the public controls (``set``,
    ``clear``, ``listing``) hand themselves to it with ``server.call`` (direct when already there, e.g.
    from the HTTP control endpoint), because their actions touch loop state (aborting transports,
    queueing frames, timers, events, tasks) and a test thread may call them while the loop runs in the
    emulator's thread."""

    _ids = itertools.count(1)

    def __init__(self, server: EmulatorServer, seed: int = 0) -> None:
        self.server = server
        self.active: dict[str, Fault] = {}
        # Counted hangs that are used up: they match no new request, but keep holding the
        # ones they caught until cleared (or their max_s), as an uncounted hang does.
        self._spent_hangs: dict[str, Fault] = {}
        self.rng = random.Random(seed)  # noqa: S311 - fault sampling, not crypto
        self._rate_task: asyncio.Task[None] | None = None

    # --- control ------------------------------------------------------------------------------------------

    def set(
        self,
        kind: str,
        venue: str | None = None,
        endpoint: str | None = None,
        count: int | None = None,
        probability: float = 1.0,
        **params: Any,
    ) -> str:
        """Activate a fault; returns its id. One-shot WS kinds act at once (the id is returned for the
        record; they are not kept active). Safe from any thread."""
        spec = functools.partial(self._set, kind, venue, endpoint, count, probability, **params)
        return self.server.call(spec)

    def _set(
        self,
        kind: str,
        venue: str | None,
        endpoint: str | None,
        count: int | None,
        probability: float,
        **params: Any,
    ) -> str:
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        if venue is not None and venue not in self.server.adapters:
            raise FaultError(f"unknown venue {venue!r}; served: {', '.join(sorted(self.server.adapters))}")
        if count is not None and int(count) <= 0:
            raise FaultError("count must be positive")
        if not 0 < float(probability) <= 1:
            raise FaultError("probability must be in (0, 1]")
        fault = Fault(
            id=f"f{next(self._ids)}",
            kind=kind,
            venue=venue,
            endpoint=endpoint,
            params=params,
            count=int(count) if count is not None else None,
            probability=float(probability),
            created_ms=self.server.engine.clock.now_ms(),
        )
        if kind == "hang":
            fault.released = asyncio.Event()
        if kind == "clock_skew":
            self.server.engine.clock.offset_ms = int(params.get("offset_ms", 0))
        if kind in WS_ONE_SHOT:
            fault.hits = self._one_shot(fault)
            self._count(fault.venue or "*", kind, fault.hits)
            return fault.id
        self.active[fault.id] = fault
        if kind == "stall_ws":
            for conn in self._connections(fault):
                self._stall(fault, conn)
        if kind == "message_rate":
            self._ensure_rate_task()
        return fault.id

    def clear(self, fault_id: str | None = None, venue: str | None = None) -> int:
        """Clear one fault by id, all faults of a venue, or (no arguments) every fault. Returns how many.
        Safe from any thread."""
        return self.server.call(self._clear, fault_id, venue)

    def _clear(self, fault_id: str | None, venue: str | None) -> int:
        chosen = [
            f
            for f in [*self.active.values(), *self._spent_hangs.values()]
            if (fault_id is None or f.id == fault_id) and (venue is None or f.venue in (venue, None))
        ]
        if fault_id is not None and venue is not None:
            chosen = [f for f in chosen if f.venue == venue]
        for fault in chosen:
            self._remove(fault)
        return len(chosen)

    def listing(self) -> list[dict[str, Any]]:
        return self.server.call(lambda: [f.as_dict() for f in self.active.values()])

    def _remove(self, fault: Fault) -> None:
        self.active.pop(fault.id, None)
        self._spent_hangs.pop(fault.id, None)
        if fault.kind == "hang" and fault.released is not None:
            fault.released.set()
        if fault.kind == "clock_skew" and not any(f.kind == "clock_skew" for f in self.active.values()):
            self.server.engine.clock.offset_ms = 0
        if fault.kind == "stall_ws":
            for conn in self.server.hub.connections.values():
                if conn.id in fault.connections:
                    conn.unstall()

    def _count(self, venue: str, kind: str, n: int = 1) -> None:
        if n:
            self.server.stats.fault_injected(venue, kind, n)

    def _take(self, fault: Fault) -> bool:
        """Roll the probability, use one of ``count``; False if this occurrence is spared."""
        if fault.probability < 1 and self.rng.random() >= fault.probability:
            return False
        fault.hits += 1
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                if fault.kind == "hang":
                    self.active.pop(fault.id, None)
                    self._spent_hangs[fault.id] = fault
                else:
                    self._remove(fault)
        return True

    async def close(self) -> None:
        """Release hung requests and stop the rate task (server shutdown)."""
        for fault in [*self.active.values(), *self._spent_hangs.values()]:
            self._remove(fault)
        if self._rate_task is not None:
            self._rate_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rate_task

    # --- REST ---------------------------------------------------------------------------------------------

    def _request_fault(self, request: VenueRequest) -> Fault | None:
        for fault in list(self.active.values()):
            if fault.kind not in REQUEST_KINDS:
                continue
            if fault.venue is not None and fault.venue != request.venue:
                continue
            if not endpoint_matches(fault.endpoint, request.method, request.host, request.path):
                continue
            if self._take(fault):
                return fault
        return None

    async def middleware(
        self, request: VenueRequest, call_next: Callable[[VenueRequest], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        fault = self._request_fault(request) if self.active else None
        if fault is None:
            return await call_next(request)
        self._count(request.venue, fault.kind)
        params = fault.params
        adapter = self.server.adapters.get(request.venue)
        if fault.kind == "latency":
            jitter = float(params.get("jitter_ms", 0))
            delay = float(params.get("ms", 500)) + (self.rng.uniform(0, jitter) if jitter else 0)
            await asyncio.sleep(delay / 1000)
            return await call_next(request)
        if fault.kind == "rate_limit":
            status = int(params.get("status", 429))
            retry_after = int(params.get("retry_after", 120 if status == 418 else 1))
            return self._venue_response(adapter, "rate_limit", request, status, retry_after)
        if fault.kind == "error":
            return self._venue_response(adapter, "error", request, int(params.get("status", 503)), None)
        if fault.kind == "error_after_accept":
            await call_next(request)
            if params.get("drop"):
                return self._drop(request)
            status = int(params.get("status", 502))
            return self._venue_response(adapter, "error_after_accept", request, status, None)
        # hang
        assert fault.released is not None
        answer = await call_next(request) if params.get("accept") else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fault.released.wait(), float(params.get("max_s", 300)))
        return answer if answer is not None else await call_next(request)

    def _venue_response(
        self, adapter: Any, kind: str, request: VenueRequest, status: int, retry_after: int | None
    ) -> web.StreamResponse:
        response = adapter.fault_response(kind, request, status, retry_after) if adapter else None
        if response is None:
            response = default_fault_response(kind, status, retry_after)
        if retry_after is not None and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @staticmethod
    def _drop(request: VenueRequest) -> web.StreamResponse:
        transport = request.raw.transport if request.raw is not None else None
        if transport is not None:
            transport.abort()
        return web.Response(status=502)  # never reaches the client

    # --- WebSocket ----------------------------------------------------------------------------------------

    def _connections(self, fault: Fault) -> list[WsConnection]:
        return [
            c
            for c in list(self.server.hub.connections.values())
            if (fault.venue is None or c.venue == fault.venue)
            and endpoint_matches(fault.endpoint, None, c.host, c.path)
        ]

    def _one_shot(self, fault: Fault) -> int:
        conns = self._connections(fault)
        if fault.count is not None:
            conns = conns[: fault.count]
        for conn in conns:
            if fault.kind == "drop_ws":
                conn.drop()
            elif fault.kind == "malformed_frame":
                conn.send(str(fault.params.get("text", MALFORMED)))
            else:  # forced_disconnect
                reason = str(fault.params.get("reason", "shutdown"))
                adapter = self.server.adapters.get(conn.venue)
                messages, code = adapter.forced_disconnect(conn, reason) if adapter else ([], 1001)
                for message in messages:
                    conn.send(message)
                grace = float(fault.params.get("grace_ms", 200)) / 1000
                conn.close_later(grace, int(fault.params.get("close_code", code)))
        return len(conns)

    def _stall(self, fault: Fault, conn: WsConnection) -> None:
        fault.connections.add(conn.id)
        conn.stall()

    def on_ws_open(self, conn: WsConnection) -> None:
        """Called by the hub for each new connection (``stall_ws`` with ``new_connections``)."""
        for fault in list(self.active.values()):
            if (
                fault.kind == "stall_ws"
                and fault.params.get("new_connections")
                and (fault.venue is None or conn.venue == fault.venue)
                and endpoint_matches(fault.endpoint, None, conn.host, conn.path)
            ):
                self._count(conn.venue, "stall_ws")
                self._stall(fault, conn)

    def _ws_faults(self, kind: str, conn: WsConnection) -> list[Fault]:
        return [
            f
            for f in self.active.values()
            if f.kind == kind
            and (f.venue is None or f.venue == conn.venue)
            and endpoint_matches(f.endpoint, None, conn.host, conn.path)
        ]

    def filter_messages(self, conn: WsConnection, sub: Subscription, messages: list[Any]) -> list[Any]:
        """``sequence_gap``: drop one incremental book message per the fault's rule."""
        if not messages or sub.channel != "depth":
            return messages
        for fault in self._ws_faults("sequence_gap", conn):
            seen = sub.state.setdefault(f"gap:{fault.id}", {"n": 0, "done": False})
            every = int(fault.params.get("every", 0))
            kept = []
            for message in messages:
                seen["n"] += 1
                due = (every and seen["n"] % every == 0) or (not every and not seen["done"] and seen["n"] > 1)
                if due and fault.id in self.active and self._take(fault):
                    seen["done"] = True
                    self._count(conn.venue, "sequence_gap")
                    continue
                kept.append(message)
            messages = kept
        return messages

    def rate_for(self, conn: WsConnection, sub: Subscription) -> Fault | None:
        """The ``message_rate`` fault driving this subscription, if any."""
        if sub.force is None:
            return None
        for fault in self._ws_faults("message_rate", conn):
            channels = fault.params.get("channels") or RATE_CHANNELS
            symbols = fault.params.get("symbols")
            if sub.channel in channels and (not symbols or sub.symbol in symbols):
                return fault
        return None

    def _ensure_rate_task(self) -> None:
        if self._rate_task is None or self._rate_task.done():
            self._rate_task = asyncio.create_task(self._rate_loop())

    async def _rate_loop(self) -> None:
        """Emit forced messages at each ``message_rate`` fault's rate (token bucket per subscription)."""
        started: dict[tuple[int, str], tuple[float, int]] = {}
        while any(f.kind == "message_rate" for f in self.active.values()):
            now = time.monotonic()
            now_ms = self.server.engine.clock.now_ms()
            live = set()
            for conn in list(self.server.hub.connections.values()):
                for sub in list(conn.subscriptions.values()):
                    fault = self.rate_for(conn, sub)
                    if fault is None or sub.force is None:
                        continue
                    key = (conn.id, sub.name)
                    live.add(key)
                    t0, sent = started.setdefault(key, (now, 0))
                    due = int((now - t0) * float(fault.params.get("rate", 100))) - sent
                    for _ in range(max(0, min(due, 1000))):
                        try:
                            for message in sub.force(now_ms):
                                conn.send(message)
                        except Exception:
                            log.exception("ws %s: forced message of %s failed", conn.id, sub.name)
                            break
                    if due > 0:
                        started[key] = (t0, sent + due)
                        fault.hits += due
                        self._count(conn.venue, "message_rate", due)
            for key in set(started) - live:
                del started[key]
            await asyncio.sleep(0.005)


def default_fault_response(kind: str, status: int, retry_after: int | None) -> web.Response:
    """A venue-less answer: JSON with the status' reason (adapters override with their own bodies)."""
    messages = {
        "rate_limit": "Too many requests",
        "error": "Service unavailable",
        "error_after_accept": "Bad gateway",
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": messages.get(kind, kind)}, status=status, headers=headers)
