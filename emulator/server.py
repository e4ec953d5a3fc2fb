"""The emulator's aiohttp server: one port for every host of every venue, REST and WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from emulator.accounts import Account, demo_accounts, permissions_of
from emulator.engine import Engine
from emulator.faults import FaultError, Faults
from emulator.market import Market
from emulator.routing import Middleware, Router, VenueRequest, run_pipeline
from emulator.stats import Stats
from emulator.venues import VENUES, adapter_class
from emulator.venues.base import VenueAdapter
from emulator.ws import WsHub

log = logging.getLogger(__name__)
T = TypeVar("T")

PUMP_INTERVAL_S = 0.05  # engine ticks are 100-250 ms per walk; pumping at 50 ms keeps WS latency low


class EmulatorServer:
    """Run the emulator: ``await server.start()``, use ``server.url``, ``await server.stop()``.

    ``accounts`` are added beside the demo accounts (``emulator.accounts.DEMO_CREDENTIALS``). ``venues``
    restricts the venues served (default: all registered). ``middlewares`` is the request pipeline
    (outermost first); append to it to inject faults.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        accounts: Iterable[Account] = (),
        venues: Iterable[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.stats = Stats()
        self.engine = Engine(seed=seed, stats=self.stats)
        self.hub = WsHub(self.stats)
        self.router = Router()
        self.adapters: dict[str, VenueAdapter] = {}
        self.fault_registry = Faults(self, seed)
        self.faults = FaultControl(self)
        self.hub.faults = self.fault_registry
        self.middlewares: list[Middleware] = [self._count_requests, self.fault_registry.middleware]
        for account in [*demo_accounts(), *accounts]:
            self.engine.add_account(account)
        today = dt.datetime.now(dt.UTC).date()
        for name in venues if venues is not None else VENUES:
            adapter = adapter_class(name)(self.engine, self.hub)
            self.engine.add_instruments(adapter.instruments(today))
            adapter.install(self.router)
            self.adapters[name] = adapter
        self._runner: web.AppRunner | None = None
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/_emulator/stats", self._stats_view)
        app.router.add_get("/_emulator/health", self._health_view)
        app.router.add_get("/_emulator/faults", self._faults_list_view)
        app.router.add_post("/_emulator/faults", self._faults_set_view)
        app.router.add_delete("/_emulator/faults", self._faults_clear_view)
        app.router.add_delete("/_emulator/faults/{fault_id}", self._faults_clear_view)
        app.router.add_route("*", "/{host}/{tail:.*}", self._dispatch)
        app.router.add_route("*", "/{host}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._pump = asyncio.create_task(self._pump_forever())

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.fault_registry.close()
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._loop = self._loop_thread = None  # stopped: controls act directly again

    async def _pump_forever(self) -> None:
        while True:
            try:
                now = self.engine.clock.now_ms()
                self.engine.advance(now)
                self.hub.pump(now)
            except Exception:
                log.exception("market pump failed")
            await asyncio.sleep(PUMP_INTERVAL_S)

    # --- HTTP ---------------------------------------------------------------------------------------------

    async def _count_requests(self, request: VenueRequest, call_next: Any) -> web.StreamResponse:
        try:
            return await call_next(request)
        finally:
            self.stats.request(request.venue, request.endpoint, request.api_key)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        path = "/" + request.match_info.get("tail", "")
        venue = self.router.venue_of_host.get(host)
        if venue is None:
            # Counted per host only, so stray paths cannot grow the counters without bound.
            self.stats.request("unknown", f"{request.method} {host}", None)
            return web.json_response({"error": f"unknown host {host!r}"}, status=404)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws_route = self.router.resolve_ws(host, path)
            if ws_route is None:
                return web.json_response({"error": f"no websocket at {host}{path}"}, status=404)
            return await self.hub.serve(request, host, path, ws_route)
        venue_request = VenueRequest(
            venue=venue,
            host=host,
            method=request.method,
            path=path,
            query_string=request.query_string,
            body=await request.text(),
            headers=request.headers,
            received_us=self.engine.clock.now_us(),
            raw_query_string=request.raw_path.partition("?")[2],
            raw=request,
        )
        return await run_pipeline(self.middlewares, venue_request, self._handle)

    async def _handle(self, request: VenueRequest) -> web.StreamResponse:
        route = self.router.resolve(request.host, request.method, request.path)
        if route is None:
            return await self.adapters[request.venue].unknown_endpoint(request)
        request.route = route
        return await route.handler(request)

    async def _stats_view(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def _health_view(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "venues": sorted(self.adapters)})

    async def _faults_list_view(self, _request: web.Request) -> web.Response:
        return web.json_response({"faults": self.fault_registry.listing()})

    async def _faults_set_view(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict) or "kind" not in spec:
                raise FaultError('expected a JSON object with "kind"')
            fault_id = self.fault_registry.set(**spec)
        except (FaultError, TypeError, ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        faults = [f for f in self.fault_registry.listing() if f["id"] == fault_id]
        return web.json_response({"id": fault_id, "active": bool(faults), "fault": spec}, status=201)

    async def _faults_clear_view(self, request: web.Request) -> web.Response:
        cleared = self.fault_registry.clear(
            request.match_info.get("fault_id"), request.query.get("venue") or None
        )
        return web.json_response({"cleared": cleared})

    # --- Python controls (callable from any thread) -------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the server's loop and return its result: directly on the loop's own thread
        (a handler, the HTTP control endpoint) or when the server is not started, otherwise scheduled there.

        Decided by thread, not by ``loop.is_running()``: the loop may not be running *yet*
        (``running_emulator`` starts the server, then ``run_forever``), and a control run then on the
        caller's thread would touch transports, queues and timers of a loop about to run in another thread
        (asyncio is not thread-safe).
        """
        loop = self._loop
        if loop is None or loop.is_closed() or threading.get_ident() == self._loop_thread:
            return fn(*args)

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)

    def add_account(
        self,
        key: str,
        secret: str,
        passphrase: str | None = None,
        balances: dict[str, Decimal | int | str] | None = None,
        permissions: Iterable[str] | None = None,
    ) -> Account:
        """Register another key (valid on every venue). ``balances`` replaces the default balance.
        ``permissions``: any of ``"read"`` (always), ``"trade"``, ``"withdraw"``; ``None`` is
        ``("read", "trade")`` (or read-only for a key whose name contains ``readonly``). ``("read",)`` makes a
        read-only key: every venue refuses its writes with its own answer and reports it read-only."""
        parsed = {a: Decimal(str(v)) for a, v in balances.items()} if balances is not None else None
        granted = permissions_of(key, permissions)
        return self.call(self.engine.add_account, Account(key, secret, passphrase, parsed, granted))

    def configure(self, venue: str, **settings: Any) -> dict[str, Any]:
        """Change venue tunables (``adapter.settings``), e.g.
        ``configure("binance", listen_key_ttl_ms=2000)``; returns the previous values of the keys given."""
        adapter = self.adapters[venue]
        unknown = set(settings) - set(adapter.settings)
        if unknown:
            raise KeyError(f"{venue} has no settings {sorted(unknown)}; known: {sorted(adapter.settings)}")
        previous = {k: adapter.settings[k] for k in settings}
        self.call(adapter.settings.update, settings)
        return previous

    def apply_funding(self, venue: str | None = None) -> int:
        """Charge/pay funding on every open perpetual position now (all venues or one); returns how many."""
        return self.call(functools.partial(self.engine.apply_funding, None, venue))

    def set_funding_interval(self, interval_ms: int) -> int:
        """Apply funding automatically every ``interval_ms`` (default 8 h; 0: only by
        :meth:`apply_funding`); returns the previous interval."""
        return self.call(self.engine.set_funding_interval, interval_ms)

    def positions(self, venue: str, key: str) -> list[Any]:
        """Open positions of ``key`` on ``venue`` (:class:`emulator.positions.Position`)."""
        return self.call(self.engine.positions, venue, key)

    def market(self, venue: str, symbol: str) -> MarketControl:
        """Controls and read-outs of one market (unified symbol), for tests and benchmarks."""
        self.engine.market(venue, symbol)  # KeyError early for a typo
        return MarketControl(self, venue, symbol)

    def balance(self, venue: str, key: str, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of ``asset`` for ``key`` on ``venue``."""

        def read() -> tuple[Decimal, Decimal]:
            balance = self.engine.wallet(venue, key).get(asset)
            return balance.free, balance.locked

        return self.call(read)


class MarketControl:
    """Deterministic handles on one market. ``set_price(p, hold=True)`` pins the price (and freezes the book
    and trade prints of every market on that venue's base asset) until ``release()``."""

    def __init__(self, server: EmulatorServer, venue: str, symbol: str) -> None:
        self._server = server
        self.venue = venue
        self.symbol = symbol

    @property
    def _market(self) -> Market:
        return self._server.engine.market(self.venue, self.symbol)

    def set_price(self, price: Decimal | str | float, hold: bool = False) -> None:
        self._server.call(self._server.engine.set_price, self.venue, self.symbol, Decimal(str(price)), hold)

    def release(self) -> None:
        self._server.call(self._server.engine.release, self.venue, self.symbol)

    def price(self) -> Decimal:
        return self._server.call(lambda: self._market.mid)

    def best(self, side: str) -> tuple[Decimal, Decimal] | None:
        """Best bid (``"buy"``) or best ask (``"sell"``) as (price, quantity)."""
        return self._server.call(self._market.book.best, side)

    def levels(self, side: str, limit: int = 10) -> list[tuple[Decimal, Decimal]]:
        return self._server.call(self._market.book.levels, side, limit)


class FaultControl:
    """``server.faults``: the fault registry (:mod:`emulator.faults`), callable from any thread.

    ``set(kind, venue=None, endpoint=None, count=None, probability=1.0, **params) -> id``,
    ``clear(fault_id=None, venue=None) -> int``, ``list()``. Also a context manager:
    ``with server.faults.active("latency", venue="binance", ms=300): ...`` clears on exit.
    """

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server

    def set(self, kind: str, venue: str | None = None, endpoint: str | None = None, **params: Any) -> str:
        return self._server.fault_registry.set(kind, venue, endpoint, **params)

    def clear(self, fault_id: str | None = None, venue: str | None = None) -> int:
        return self._server.fault_registry.clear(fault_id, venue)

    def list(self) -> list[dict[str, Any]]:
        return self._server.fault_registry.listing()

    @contextlib.contextmanager
    def active(
        self, kind: str, venue: str | None = None, endpoint: str | None = None, **params: Any
    ) -> Iterator[str]:
        fault_id = self.set(kind, venue, endpoint, **params)
        try:
            yield fault_id
        finally:
            self.clear(fault_id)
