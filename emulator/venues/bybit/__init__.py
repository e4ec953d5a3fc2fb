"""Bybit (v5, unified trading account): market data, spot trading, public and private streams."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.routing import Router, VenueRequest
from emulator.venues.base import VenueAdapter, gateway_page
from emulator.venues.bybit.instruments import VENUE, load_instruments
from emulator.venues.bybit.protocol import BybitError
from emulator.venues.bybit.rest import HOSTS as REST_HOSTS
from emulator.venues.bybit.rest import BybitRest
from emulator.venues.bybit.ws import HOSTS as WS_HOSTS
from emulator.venues.bybit.ws import BybitStreams


class BybitAdapter(VenueAdapter):
    """Bybit REST (``api.bybit.com``, ``api-testnet.bybit.com``) and WebSockets (``stream.bybit.com``)."""

    name = VENUE
    hosts = (*REST_HOSTS, *WS_HOSTS)

    def instruments(self, today: dt.date) -> list[Instrument]:
        return load_instruments(today)

    def install(self, router: Router) -> None:
        router.add_hosts(self.name, self.hosts)
        rest = BybitRest(self.engine)
        rest.install(router)
        BybitStreams(self.engine, rest).install(router)

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        # Bybit answers an unknown path with 404; retCode 10017 is its "route not found" code.
        error = BybitError(10017, f"Route not found: {request.method} {request.path} is not emulated", 404)
        return error.response(self.engine.clock.now_ms())

    def fault_response(
        self, kind: str, request: VenueRequest, status: int, retry_after: int | None
    ) -> web.StreamResponse | None:
        """Rate limits answer retCode 10006 (CCXT: RateLimitExceeded) with the injected status; 5xx are the
        gateway's HTML pages, so CCXT maps the status (a JSON body without retCode is an ExchangeError)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if kind == "rate_limit":
            body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
            return web.json_response(
                body | {"time": self.engine.clock.now_ms()}, status=status, headers=headers
            )
        return gateway_page(status, headers)
