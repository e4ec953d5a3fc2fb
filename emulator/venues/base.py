"""The interface every venue adapter implements."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.engine import Engine
from emulator.routing import Router, VenueRequest
from emulator.ws import WsHub


class VenueAdapter:
    """Translate one venue's protocol to the engine.

    Subclasses set :attr:`name` and :attr:`hosts`, build their instruments in :meth:`instruments`, and
    register REST routes and WebSocket entry points in :meth:`install`. They never hold market or account
    state themselves: that lives in :attr:`engine`.
    """

    name: ClassVar[str]
    hosts: ClassVar[tuple[str, ...]]

    def __init__(self, engine: Engine, hub: WsHub) -> None:
        self.engine = engine
        self.hub = hub

    def instruments(self, today: dt.date) -> list[Instrument]:
        """Every instrument the venue lists today (dated ones re-issued relative to ``today``)."""
        raise NotImplementedError

    def install(self, router: Router) -> None:
        """Register routes (``router.add``) and WebSocket entry points (``router.add_ws``)."""
        raise NotImplementedError

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        """Answer for a path this venue does not serve (override with the venue's own 404)."""
        return web.json_response({"error": f"{request.endpoint} is not emulated"}, status=404)
