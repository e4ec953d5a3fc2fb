"""Binance user data streams: listen keys, ``/ws/<listenKey>`` and ``/private/ws?listenKey=``, and the
WebSocket API's ``userDataStream.subscribe.signature`` (what CCXT 4.5.90 uses for spot).

* REST (API key only, no signature): ``POST/PUT/DELETE /api/v3/userDataStream`` (spot),
  ``/fapi/v1/listenKey`` (USDⓈ-M), ``/dapi/v1/listenKey`` (COIN-M). A key lives ``listen_key_ttl_ms`` (60 min
  as on Binance; ``server.configure("binance", listen_key_ttl_ms=...)``) after its last keep-alive; then
  its streams get ``listenKeyExpired`` and are closed, and keep-alives answer ``-1125``.
* Streams: spot ``stream.binance.com/ws/<listenKey>``; USDⓈ-M ``fstream.binance.com/ws/<listenKey>`` and
  ``/private/ws?listenKey=<key>`` (CCXT); COIN-M ``dstream.binance.com/ws/<listenKey>``.
* WebSocket API: ``ws-api.binance.com/ws-api/v3`` answers ``userDataStream.subscribe.signature``,
  ``userDataStream.unsubscribe``, ``ping``, ``time``; events come wrapped in
  ``{"subscriptionId": n, "event": {...}}``.

Events, from the engine's account events (``emulator.positions.AccountEvent``): spot ``executionReport`` and
``outboundAccountPosition``; futures ``ORDER_TRADE_UPDATE`` and ``ACCOUNT_UPDATE``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from emulator.catalogue import Instrument
from emulator.engine import Engine
from emulator.orders import Fill, Order
from emulator.positions import AccountEvent, Position
from emulator.routing import Router, VenueRequest
from emulator.venues.binance.futures import _money, futures_order, position_update
from emulator.venues.binance.instruments import COINM, SPOT, USDM, VENUE, Section
from emulator.venues.binance.protocol import MAX_RECV_WINDOW, fmt_price, fmt_qty, json_response
from emulator.ws import Subscription, WsConnection

LISTEN_KEY_TTL_MS = 60 * 60_000
WS_API_HOSTS = ("ws-api.binance.com",)
LISTEN_KEY_PATHS = {
    SPOT: (("api.binance.com", "testnet.binance.vision"), "/api/v3/userDataStream"),
    USDM: (("fapi.binance.com",), "/fapi/v1/listenKey"),
    COINM: (("dapi.binance.com",), "/dapi/v1/listenKey"),
}
EXEC_TYPES = {"new": "NEW", "trade": "TRADE", "canceled": "CANCELED", "expired": "EXPIRED"}
REASONS = {  # AccountEvent.reason -> ACCOUNT_UPDATE "m"
    "order": "ORDER",
    "funding": "FUNDING_FEE",
    "margin": "MARGIN_TRANSFER",
    "settlement": "ORDER",
    "trading_stop": "ORDER",
}


@dataclass
class ListenKey:
    key: str
    api_key: str
    section: Section
    expires_ms: int


def section_of(instrument: Instrument) -> Section:
    if instrument.kind == "spot":
        return SPOT
    return COINM if instrument.linear is False else USDM


class BinanceUserStreams:
    """Listen keys and every user-data connection; fed by ``engine.on_account_event``."""

    def __init__(self, engine: Engine, settings: dict[str, Any]) -> None:
        self.engine = engine
        self.settings = settings
        settings.setdefault("listen_key_ttl_ms", LISTEN_KEY_TTL_MS)
        self.keys: dict[str, ListenKey] = {}
        self.connections: dict[int, WsConnection] = {}
        engine.on_account_event(self.on_event)

    @property
    def ttl_ms(self) -> int:
        return int(self.settings["listen_key_ttl_ms"])

    # --- REST -----------------------------------------------------------------------------------------------

    def install(self, router: Router) -> None:
        for section, (hosts, path) in LISTEN_KEY_PATHS.items():
            for method in ("POST", "PUT", "DELETE"):
                router.add(
                    VENUE,
                    hosts,
                    method,
                    path,
                    self._listen_key_endpoint(section, method),
                    signed=False,
                    params=set(),
                )

    def _listen_key_endpoint(self, section: Section, method: str) -> Any:
        async def endpoint(request: VenueRequest) -> web.StreamResponse:
            api_key = request.headers.get("X-MBX-APIKEY", "")
            if not api_key:
                return json_response({"code": -2014, "msg": "API-key format invalid."}, status=401)
            request.api_key = api_key
            if api_key not in self.engine.accounts:
                return json_response(
                    {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, status=401
                )
            params = dict(request.query() + request.form())
            now = self.engine.clock.now_ms()
            self._expire(now)
            current = next(
                (k for k in self.keys.values() if k.api_key == api_key and k.section is section), None
            )
            if method == "POST":
                if current is None:
                    current = ListenKey(secrets.token_urlsafe(45)[:60], api_key, section, 0)
                    self.keys[current.key] = current
                current.expires_ms = now + self.ttl_ms
                return json_response({"listenKey": current.key})
            named = params.get("listenKey")
            if section is SPOT and not named:
                return json_response(
                    {
                        "code": -1102,
                        "msg": "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
                    },
                    status=400,
                )
            target = self.keys.get(named) if named else current
            if target is None or target.api_key != api_key:
                return json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
            if method == "PUT":
                target.expires_ms = now + self.ttl_ms
                return json_response({"listenKey": target.key} if section is not SPOT else {})
            del self.keys[target.key]
            for conn in list(self.connections.values()):
                if conn.state.get("listen_key") == target.key:
                    conn.close_soon()
            return json_response({})

        return endpoint

    def _expire(self, now: int) -> None:
        for listen_key in [k for k in self.keys.values() if k.expires_ms <= now]:
            del self.keys[listen_key.key]

    # --- streams --------------------------------------------------------------------------------------------

    def attach(self, conn: WsConnection, section: Section, listen_key: str) -> bool:
        """Make ``conn`` a user-data stream if ``listen_key`` is a live key of that API; False otherwise."""
        self._expire(self.engine.clock.now_ms())
        found = self.keys.get(listen_key)
        if found is None or found.section is not section:
            return False
        conn.state.update(user_key=found.api_key, user_sections={section}, listen_key=listen_key)
        self._watch(conn)
        conn.subscriptions["userData"] = Subscription(
            "userData", self._expiry_poll(conn, listen_key), channel="user"
        )
        return True

    def _watch(self, conn: WsConnection) -> None:
        self.connections[conn.id] = conn

    def _expiry_poll(self, conn: WsConnection, listen_key: str) -> Any:
        def poll(now: int) -> list[Any]:
            if conn.id not in self.connections:
                return []
            found = self.keys.get(listen_key)
            if found is not None and found.expires_ms > now:
                return []
            self.keys.pop(listen_key, None)
            self.connections.pop(conn.id, None)
            conn.subscriptions.pop("userData", None)
            conn.send({"e": "listenKeyExpired", "E": now, "listenKey": listen_key})
            conn.close_soon()  # after the event: nothing more comes on this key
            return []

        return poll

    def closed(self, conn: WsConnection) -> None:
        self.connections.pop(conn.id, None)

    # --- WebSocket API --------------------------------------------------------------------------------------

    async def ws_api_open(self, conn: WsConnection) -> None:
        conn.state["ws_api"] = True
        conn.state["section"] = SPOT

    async def ws_api_text(self, conn: WsConnection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send({"id": None, "status": 400, "error": {"code": -1100, "msg": "Malformed request."}})
            return
        request_id = request.get("id") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        params = (request.get("params") if isinstance(request, dict) else None) or {}

        def reply(result: Any = None, status: int = 200, error: tuple[int, str] | None = None) -> None:
            body: dict[str, Any] = {"id": request_id, "status": status}
            if error is not None:
                body["error"] = {"code": error[0], "msg": error[1]}
            else:
                body["result"] = result
            body["rateLimits"] = [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                    "count": 2,
                }
            ]
            conn.send(body)

        if method == "ping":
            reply({})
        elif method == "time":
            reply({"serverTime": self.engine.clock.now_ms()})
        elif method == "userDataStream.subscribe.signature":
            status, error = self._check_signature(params)
            if error is not None:
                reply(status=status, error=error)
                return
            conn.state.update(user_key=params["apiKey"], user_sections={SPOT}, subscription_id=0)
            self._watch(conn)
            reply({"subscriptionId": 0})
        elif method == "userDataStream.unsubscribe":
            self.connections.pop(conn.id, None)
            reply({})
        else:
            reply(status=400, error=(-1100, f"Unknown method {method!r}."))

    def _check_signature(self, params: dict[str, Any]) -> tuple[int, tuple[int, str] | None]:
        api_key = str(params.get("apiKey") or "")
        account = self.engine.accounts.get(api_key)
        if account is None:
            return 401, (-2015, "Invalid API-key, IP, or permissions for action.")
        try:
            timestamp = int(params.get("timestamp") or 0)
            recv_window = int(params.get("recvWindow") or 5000)
        except (TypeError, ValueError):
            return 400, (-1100, "Illegal characters found in parameter 'timestamp'.")
        now = self.engine.clock.now_ms()
        if recv_window > MAX_RECV_WINDOW:
            return 400, (-1131, "recvWindow must be less than 60000")
        if timestamp > now + 1000 or now - timestamp > recv_window:
            return 400, (-1021, "Timestamp for this request is outside of the recvWindow.")
        payload = "&".join(
            f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()) if k != "signature"
        )
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params.get("signature") or "").lower()):
            return 400, (-1022, "Signature for this request is not valid.")
        return 200, None

    # --- events ---------------------------------------------------------------------------------------------

    def on_event(self, event: AccountEvent) -> None:
        if event.venue != VENUE or not self.connections:
            return
        instrument = self._instrument_of(event)
        if instrument is None:
            return
        section = section_of(instrument)
        targets = [
            c
            for c in self.connections.values()
            if c.state.get("user_key") == event.key and section in c.state.get("user_sections", ())
        ]
        if not targets:
            return
        payload = self._payload(event, instrument, section)
        if payload is None:
            return
        for conn in targets:
            if conn.state.get("ws_api"):
                conn.send({"subscriptionId": conn.state.get("subscription_id", 0), "event": payload})
            else:
                conn.send(payload)

    def _instrument_of(self, event: AccountEvent) -> Instrument | None:
        symbol = event.symbol or (event.order.symbol if event.order else "")
        if not symbol and event.positions:
            symbol = event.positions[0].symbol
        return self.engine.catalogue.get(VENUE, symbol) if symbol else None

    def _payload(
        self, event: AccountEvent, instrument: Instrument, section: Section
    ) -> dict[str, Any] | None:
        now = event.ts_ms
        if event.kind == "order" and event.order is not None:
            if section is SPOT:
                return execution_report(event.order, instrument, event.exec_type, event.fill, now)
            return {
                "e": "ORDER_TRADE_UPDATE",
                "T": now,
                "E": now,
                "o": order_trade_update(event.order, instrument, event.exec_type, event.fill),
            }
        wallet = self.engine.wallet(VENUE, event.key)
        if event.kind == "balance":
            if section is SPOT:
                return {
                    "e": "outboundAccountPosition",
                    "E": now,
                    "u": now,
                    "B": [
                        {"a": a, "f": f"{wallet.get(a).free:.8f}", "l": f"{wallet.get(a).locked:.8f}"}
                        for a in event.assets
                    ],
                }
            return self._account_update(event, now, balances=event.assets, positions=())
        if event.kind == "position" and section is not SPOT:
            return self._account_update(event, now, balances=(), positions=event.positions)
        return None

    def _account_update(
        self, event: AccountEvent, now: int, balances: tuple[str, ...], positions: tuple[Position, ...]
    ) -> dict[str, Any]:
        wallet = self.engine.wallet(VENUE, event.key)
        rows = []
        for asset in balances:
            balance = wallet.get(asset)
            rows.append({"a": asset, "wb": _money(balance.total), "cw": _money(balance.total), "bc": "0"})
        return {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": REASONS.get(event.reason, "ORDER"),
                "B": rows,
                "P": [position_update(p, self.engine.market(VENUE, p.symbol).mark_price) for p in positions],
            },
        }


def execution_report(
    order: Order, instrument: Instrument, exec_type: str, fill: Fill | None, now: int
) -> dict[str, Any]:
    def f8(value: Decimal) -> str:
        return f"{value:.8f}"

    return {
        "e": "executionReport",
        "E": now,
        "s": instrument.id,
        "c": order.client_id,
        "S": order.side.upper(),
        "o": order.extra.get("type", order.type.upper()),
        "f": order.time_in_force,
        "q": f8(order.amount if order.amount is not None else order.filled),
        "p": f8(order.price or Decimal(0)),
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": EXEC_TYPES.get(exec_type, exec_type.upper()),
        "X": str(order.status),
        "r": "NONE",
        "i": order.id,
        "l": f8(fill.qty if fill else Decimal(0)),
        "z": f8(order.filled),
        "L": f8(fill.price if fill else Decimal(0)),
        "n": f8(fill.fee if fill else Decimal(0)),
        "N": fill.fee_asset if fill else None,
        "T": fill.ts_ms if fill else order.updated_ms,
        "t": fill.trade_id if fill else -1,
        "v": 0,
        "I": order.id * 2,
        "w": order.is_open,
        "m": bool(fill and fill.maker),
        "M": False,
        "O": order.created_ms,
        "Z": f8(order.cost),
        "Y": f8(fill.quote_qty if fill else Decimal(0)),
        "Q": f8(order.quote_amount or Decimal(0)),
        "W": order.created_ms,
        "V": order.extra.get("stp", "EXPIRE_MAKER"),
    }


def order_trade_update(
    order: Order, instrument: Instrument, exec_type: str, fill: Fill | None
) -> dict[str, Any]:
    row = futures_order(order, instrument)
    return {
        "s": instrument.id,
        "c": order.client_id,
        "S": order.side.upper(),
        "o": row["type"],
        "f": row["timeInForce"],
        "q": row["origQty"],
        "p": row["price"],
        "ap": row["avgPrice"],
        "sp": "0",
        "x": EXEC_TYPES.get(exec_type, exec_type.upper()),
        "X": str(order.status),
        "i": order.id,
        "l": fmt_qty(instrument, fill.qty) if fill else "0",
        "z": row["executedQty"],
        "L": fmt_price(instrument, fill.price) if fill else "0",
        "N": fill.fee_asset if fill else instrument.settle,
        "n": _money(fill.fee) if fill else "0",
        "T": fill.ts_ms if fill else order.updated_ms,
        "t": fill.trade_id if fill else 0,
        "b": "0",
        "a": "0",
        "m": bool(fill and fill.maker),
        "R": order.reduce_only,
        "wt": row["workingType"],
        "ot": row["origType"],
        "ps": row["positionSide"],
        "cp": False,
        "rp": _money(fill.realised_pnl) if fill else "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": row["selfTradePreventionMode"],
        "pm": "NONE",
        "gtd": 0,
    }
