"""OKX v5: spot, perpetual swaps, dated futures and options market data, spot trading, public and private
streams."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from emulator.catalogue import Instrument
from emulator.routing import Router, VenueRequest
from emulator.venues.base import VenueAdapter
from emulator.venues.okx.instruments import load_instruments
from emulator.venues.okx.protocol import json_response
from emulator.venues.okx.rest import REST_HOSTS, OkxRest
from emulator.venues.okx.ws import WS_HOSTS, OkxStreams
from emulator.ws import WsConnection


class OkxAdapter(VenueAdapter):
    """OKX REST (``www.okx.com``, ``aws.okx.com``, ``my.okx.com``) and WebSocket (``ws.okx.com``,
    ``wsaws.okx.com``)."""

    name = "okx"
    hosts = (*REST_HOSTS, *WS_HOSTS)

    def instruments(self, today: dt.date) -> list[Instrument]:
        return load_instruments(today)

    def install(self, router: Router) -> None:
        router.add_hosts(self.name, self.hosts)
        rest = OkxRest(self.engine)
        rest.install(router)
        OkxStreams(self.engine, rest).install(router)

    async def unknown_endpoint(self, request: VenueRequest) -> web.StreamResponse:
        # OKX answers an unknown path with HTTP 404 and an empty body; a JSON body keeps logs readable.
        return json_response(
            {"code": "404", "data": [], "msg": f"{request.method} {request.path} is not emulated"}, status=404
        )

    # --- fault hooks (emulator/faults.py) -----------------------------------------------------------------

    def fault_response(
        self, kind: str, request: VenueRequest, status: int, retry_after: int | None
    ) -> web.StreamResponse | None:
        """OKX's bodies: 50011 "Too Many Requests" (RateLimitExceeded), 50001 for a 503 (OnMaintenance),
        50013 "System is busy" for other 5xx (ExchangeNotAvailable) and, after an order was accepted, 50004
        "Endpoint request timeout" (RequestTimeout: the outcome is unknown, check the order)."""
        if kind == "rate_limit":
            code, msg = "50011", "Too Many Requests"
        elif kind == "error_after_accept":
            code = "50004"
            msg = (
                "Endpoint request timeout (does not indicate success or failure of order, "
                "please check order status)"
            )
        elif status == 503:
            code, msg = "50001", "Service temporarily unavailable. Please try again later."
        else:
            code, msg = "50013", "System is busy, please try again later."
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return web.json_response({"code": code, "data": [], "msg": msg}, status=status, headers=headers)

    def forced_disconnect(self, conn: WsConnection, reason: str) -> tuple[list[Any], int]:
        """OKX announces service upgrades with notice 64008 before it closes the connection."""
        notice = {
            "event": "notice",
            "code": "64008",
            "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
            "connId": conn.state.get("conn_id", ""),
        }
        return [notice], 1001
