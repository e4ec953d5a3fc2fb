"""Host-and-path routing and the request pipeline.

Every venue URL ``https://HOST/PATH`` arrives as ``/HOST/PATH`` (see ``connectors/emulator_urls.py``), so the
first path segment picks the venue and the rest is matched against the routes the venue adapter registered.
A request passes through ``server.middlewares`` (outermost first) before its route handler runs: counters
live there, and fault injection (latency, 429/5xx, hangs) hooks in the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from emulator.ws import WsConnection

Handler = Callable[["VenueRequest"], Awaitable[web.StreamResponse]]
Middleware = Callable[["VenueRequest", Handler], Awaitable[web.StreamResponse]]
WsHandler = Callable[["WsConnection", str], Awaitable[None]]


@dataclass
class Route:
    """One REST endpoint of one venue. ``options``: free-form adapter data (e.g. params)."""

    venue: str
    method: str
    path: str
    handler: Handler
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class WsRoute:
    """A WebSocket entry point: every path under ``prefix`` on the venue's hosts."""

    venue: str
    prefix: str
    on_open: Callable[[WsConnection], Awaitable[None]]
    on_text: WsHandler
    heartbeat: float | None = None
    on_close: Callable[[WsConnection], None] | None = None


@dataclass
class VenueRequest:
    """A REST request after host routing. ``api_key`` is set by the adapter once it has read the key."""

    venue: str
    host: str
    method: str
    path: str
    query_string: str
    body: str
    headers: CIMultiDictProxy[str]
    received_us: int
    route: Route | None = None
    api_key: str | None = None
    raw_query_string: str = ""  # as sent (percent-encoding kept): what OKX-style signatures cover
    raw: web.Request | None = None  # the aiohttp request (faults abort its transport)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.host}{self.path}"

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body, keep_blank_values=True)


class Router:
    """Maps (host, method, path) to a :class:`Route` and (host, path prefix) to a :class:`WsRoute`."""

    def __init__(self) -> None:
        self.venue_of_host: dict[str, str] = {}
        self._routes: dict[tuple[str, str, str], Route] = {}
        self._ws: dict[str, list[WsRoute]] = {}

    def add_hosts(self, venue: str, hosts: list[str] | tuple[str, ...]) -> None:
        for host in hosts:
            self.venue_of_host[host] = venue

    def add(
        self,
        venue: str,
        hosts: list[str] | tuple[str, ...],
        method: str,
        path: str,
        handler: Handler,
        **options: Any,
    ) -> Route:
        self.add_hosts(venue, hosts)
        route = Route(venue, method, path, handler, options)
        for host in hosts:
            self._routes[(host, method, path)] = route
        return route

    def add_ws(
        self,
        venue: str,
        hosts: list[str] | tuple[str, ...],
        prefix: str,
        on_open: Callable[[WsConnection], Awaitable[None]],
        on_text: WsHandler,
        heartbeat: float | None = None,
        on_close: Callable[[WsConnection], None] | None = None,
    ) -> None:
        """``on_close(conn)`` (optional) runs when the connection ends, however it ends."""
        self.add_hosts(venue, hosts)
        for host in hosts:
            self._ws.setdefault(host, []).append(
                WsRoute(venue, prefix, on_open, on_text, heartbeat, on_close)
            )
            # longest prefix first, so "/ws/x" does not shadow "/ws/x/y"
            self._ws[host].sort(key=lambda r: len(r.prefix), reverse=True)

    def resolve(self, host: str, method: str, path: str) -> Route | None:
        return self._routes.get((host, method, path))

    def resolve_ws(self, host: str, path: str) -> WsRoute | None:
        for route in self._ws.get(host, []):
            if path == route.prefix or path.startswith(route.prefix.rstrip("/") + "/"):
                return route
        return None

    def routes(self, venue: str | None = None) -> list[tuple[str, Route]]:
        return [(host, r) for (host, _, _), r in self._routes.items() if venue is None or r.venue == venue]


async def run_pipeline(
    middlewares: list[Middleware], request: VenueRequest, terminal: Handler
) -> web.StreamResponse:
    """Call ``middlewares[0](request, next)`` ... down to ``terminal``."""

    async def call(index: int, req: VenueRequest) -> web.StreamResponse:
        if index == len(middlewares):
            return await terminal(req)
        return await middlewares[index](req, lambda r: call(index + 1, r))

    return await call(0, request)
