"""Binance: spot, USDⓈ-M and COIN-M market data, spot trading, public streams."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.routing import Router, VenueRequest
from emulator.venues.base import VenueAdapter, gateway_page
from emulator.venues.binance.instruments import load_instruments
from emulator.venues.binance.rest import COINM_HOSTS, SPOT_HOSTS, USDM_HOSTS, BinanceRest
from emulator.venues.binance.user import LISTEN_KEY_TTL_MS, WS_API_HOSTS, BinanceUserStreams
from emulator.venues.binance.ws import HOSTS as WS_HOSTS
from emulator.venues.binance.ws import BinanceStreams
from emulator.ws import WsConnection


class BinanceAdapter(VenueAdapter):
    """Binance REST (``api``/``fapi``/``dapi`` hosts) and public WebSocket streams."""

    name = "binance"
    hosts = (*SPOT_HOSTS, *USDM_HOSTS, *COINM_HOSTS, *WS_HOSTS, *WS_API_HOSTS)
    default_settings = {"listen_key_ttl_ms": LISTEN_KEY_TTL_MS}

    def instruments(self, today: dt.date) -> list[Instrument]:
        return load_instruments(today)

    def install(self, router: Router) -> None:
        router.add_hosts(self.name, self.hosts)
        BinanceRest(self.engine).install(router)
        self.user_streams = BinanceUserStreams(self.engine, self.settings)
        self.user_streams.install(router)
        BinanceStreams(self.engine, self.user_streams).install(router)

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        # Binance's gateway answers an unknown path with a bare 404 page, which CCXT reports as BadRequest/
        # ExchangeError by status; a JSON body keeps it readable in logs.
        return web.json_response(
            {"code": -1, "msg": f"{request.method} {request.path} is not emulated"}, status=404
        )

    # --- fault hooks --------------------------------------------------------------------------------------

    def fault_response(
        self, kind: str, request: VenueRequest, status: int, retry_after: int | None
    ) -> web.StreamResponse | None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if kind == "rate_limit" and status == 418:
            until = self.engine.clock.now_ms() + (retry_after or 120) * 1000
            body = {
                "code": -1003,
                "msg": f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
            }
            return web.json_response(body, status=418, headers=headers)
        if kind == "rate_limit":
            body = {
                "code": -1003,
                "msg": "Too many requests; current limit of IP(127.0.0.1) request weight per 1 minute is "
                "6000. Please use WebSocket Streams for live updates to avoid polling the API.",
            }
            return web.json_response(body, status=status, headers=headers)
        return gateway_page(status, headers)

    def forced_disconnect(self, conn: WsConnection, reason: str) -> tuple[list[Any], int]:
        """``shutdown``: the ``serverShutdown`` event (market and user-data streams), then a close frame;
        ``lifetime``: the 24 h cut, a bare close frame."""
        if reason == "lifetime":
            return [], 1000
        event = {"e": "serverShutdown", "E": self.engine.clock.now_ms()}
        return [{"subscriptionId": 0, "event": event} if conn.state.get("ws_api") else event], 1001
