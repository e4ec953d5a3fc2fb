"""Binance: spot, USDⓈ-M and COIN-M market data, spot trading, public streams."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.routing import Router, VenueRequest
from emulator.venues.base import VenueAdapter
from emulator.venues.binance.instruments import load_instruments
from emulator.venues.binance.rest import COINM_HOSTS, SPOT_HOSTS, USDM_HOSTS, BinanceRest
from emulator.venues.binance.ws import HOSTS as WS_HOSTS
from emulator.venues.binance.ws import BinanceStreams


class BinanceAdapter(VenueAdapter):
    """Binance REST (``api``/``fapi``/``dapi`` hosts) and public WebSocket streams."""

    name = "binance"
    hosts = (*SPOT_HOSTS, *USDM_HOSTS, *COINM_HOSTS, *WS_HOSTS)

    def instruments(self, today: dt.date) -> list[Instrument]:
        return load_instruments(today)

    def install(self, router: Router) -> None:
        router.add_hosts(self.name, self.hosts)
        BinanceRest(self.engine).install(router)
        BinanceStreams(self.engine).install(router)

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        # Binance's gateway answers an unknown path with a bare 404 page, which CCXT reports as BadRequest/
        # ExchangeError by status; a JSON body keeps it readable in logs.
        return web.json_response(
            {"code": -1, "msg": f"{request.method} {request.path} is not emulated"}, status=404
        )
