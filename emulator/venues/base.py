"""The interface every venue adapter implements."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.engine import Engine
from emulator.routing import Router, VenueRequest
from emulator.ws import WsHub

if TYPE_CHECKING:
    from emulator.ws import WsConnection

GATEWAY_PAGES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def gateway_page(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """A web gateway's HTML page for a 5xx (what Binance and Bybit answer when their gateway fails). It is not
    JSON, so CCXT maps the status: 500/502/503 ExchangeNotAvailable, 504 RequestTimeout."""
    title = GATEWAY_PAGES.get(status, "Error")
    page = (
        f"<html><head><title>{status} {title}</title></head>"
        f"<body><center><h1>{status} {title}</h1></center></body></html>"
    )
    return web.Response(text=page, status=status, content_type="text/html", headers=headers)


class VenueAdapter:
    """Translate one venue's protocol to the engine.

    Subclasses set :attr:`name` and :attr:`hosts`, build their instruments in :meth:`instruments`, and
    register REST routes and WebSocket entry points in :meth:`install`. They never hold market or account
    state themselves: that lives in :attr:`engine`.
    """

    name: ClassVar[str]
    hosts: ClassVar[tuple[str, ...]]

    #: Tunables of the venue (e.g. Binance ``listen_key_ttl_ms``), changed with ``server.configure``.
    settings: dict[str, Any]

    def __init__(self, engine: Engine, hub: WsHub) -> None:
        self.engine = engine
        self.hub = hub
        self.settings = dict(getattr(type(self), "default_settings", {}))

    def instruments(self, today: dt.date) -> list[Instrument]:
        """Every instrument the venue lists today (dated ones re-issued relative to ``today``)."""
        raise NotImplementedError

    def install(self, router: Router) -> None:
        """Register routes (``router.add``) and WebSocket entry points (``router.add_ws``)."""
        raise NotImplementedError

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        """Answer for a path this venue does not serve (override with the venue's own 404)."""
        return web.json_response({"error": f"{request.endpoint} is not emulated"}, status=404)

    # --- fault hooks (emulator/faults.py) -----------------------------------------------------------------

    def fault_response(
        self, kind: str, request: VenueRequest, status: int, retry_after: int | None
    ) -> web.StreamResponse | None:
        """The venue's own answer for an injected ``rate_limit`` (429/418), ``error`` (5xx before handling)
        or ``error_after_accept`` (5xx after it), so CCXT raises what it raises for the real venue. ``None``
        uses the core default (JSON ``{"error": ...}``); the core adds ``Retry-After`` if missing."""
        return None

    def forced_disconnect(self, conn: WsConnection, reason: str) -> tuple[list[Any], int]:
        """What the venue sends before it cuts ``conn`` and the close code it uses. ``reason``:
        ``"shutdown"`` (maintenance / server restart: Binance ``serverShutdown``, OKX notice ``64008``) or
        ``"lifetime"`` (Binance's 24 h cut)."""
        return [], 1001
