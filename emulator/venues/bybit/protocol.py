"""Bybit v5 wire conventions shared by REST and WebSocket: envelope, errors, numbers, ids, signing."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from emulator.catalogue import Instrument
from emulator.orders import Reject
from emulator.venues.bybit.instruments import Category

DEFAULT_RECV_WINDOW = 5000
FUTURE_TOLERANCE_MS = 1000  # Bybit accepts timestamps up to 1 s ahead of its clock

# REST kline intervals (also the WebSocket kline topic's interval): minutes, D, W. Monthly is not emulated.
INTERVALS_MS = {
    "1": 60_000,
    "3": 180_000,
    "5": 300_000,
    "15": 900_000,
    "30": 1_800_000,
    "60": 3_600_000,
    "120": 7_200_000,
    "240": 14_400_000,
    "360": 21_600_000,
    "720": 43_200_000,
    "D": 86_400_000,
    "W": 604_800_000,
}


class BybitError(Exception):
    """An error answer ``{"retCode": code, "retMsg": msg, "result": {}, ...}``. Bybit answers business and
    authentication errors with HTTP 200 and the code in the body; an unknown path is a 404."""

    def __init__(self, code: int, msg: str, status: int = 200, result: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status
        self.result = result or {}  # e.g. set-margin-mode's {"reasons": [...]}

    def response(self, now_ms: int) -> web.Response:
        body = {"retCode": self.code, "retMsg": self.msg, "result": self.result, "retExtInfo": {}}
        body["time"] = now_ms
        return json_response(body, status=self.status)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def envelope(result: Any, now_ms: int, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": 0, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}


def params_error(detail: str) -> BybitError:
    return BybitError(10001, detail)


# --- rejections -------------------------------------------------------------------------------------------
# The codes CCXT maps (bybit.py "exceptions"): spot orders answer 170xxx, contracts 110xxx/10001.
# 170131/110007 -> InsufficientFunds, 170213/110001 -> OrderNotFound, 170134..170141/110072 -> InvalidOrder,
# "Not supported symbols" -> BadSymbol.

SPOT_REJECTIONS: dict[Reject, tuple[int, str]] = {
    Reject.UNKNOWN_SYMBOL: (10001, "Not supported symbols"),
    Reject.NOT_TRADABLE: (170157, "The trading pair is not available for api trading."),
    Reject.PRICE_PRECISION: (170134, "Order price decimal too long."),
    Reject.PRICE_OUT_OF_RANGE: (170132, "Order price too high."),
    Reject.AMOUNT_PRECISION: (170137, "Order quantity has too many decimals."),
    Reject.AMOUNT_TOO_SMALL: (170136, "Order quantity lower than the minimum."),
    Reject.AMOUNT_TOO_LARGE: (170135, "Order quantity exceeded upper limit."),
    Reject.NOTIONAL_TOO_SMALL: (170140, "Order value exceeded lower limit."),
    Reject.INSUFFICIENT_FUNDS: (170131, "Insufficient balance."),
    Reject.DUPLICATE_CLIENT_ID: (170141, "Duplicate clientOrderId."),
    Reject.POST_ONLY_WOULD_TAKE: (170218, "The LIMIT-MAKER order is rejected due to invalid price."),
    Reject.ORDER_NOT_FOUND: (170213, "Order does not exist."),
    Reject.ORDER_NOT_OPEN: (170213, "Order does not exist."),
}
CONTRACT_REJECTIONS: dict[Reject, tuple[int, str]] = {
    Reject.UNKNOWN_SYMBOL: (10001, "Not supported symbols"),
    Reject.NOT_TRADABLE: (110032, "This symbol is not tradable here."),
    Reject.PRICE_PRECISION: (10001, "The number of decimals of the price exceeds the limit."),
    Reject.PRICE_OUT_OF_RANGE: (110003, "Order price exceeds the allowable range."),
    Reject.AMOUNT_PRECISION: (10001, "Qty invalid."),
    Reject.AMOUNT_TOO_SMALL: (10001, "The number of contracts exceeds minimum limit allowed"),
    Reject.AMOUNT_TOO_LARGE: (10001, "The number of contracts exceeds maximum limit allowed"),
    Reject.NOTIONAL_TOO_SMALL: (110094, "Order does not meet minimum order value"),
    Reject.INSUFFICIENT_FUNDS: (110007, "ab not enough for new order"),
    Reject.DUPLICATE_CLIENT_ID: (110072, "OrderLinkedID is duplicate"),
    Reject.POST_ONLY_WOULD_TAKE: (110032, "Illegal order"),
    Reject.ORDER_NOT_FOUND: (110001, "Order does not exist."),
    Reject.ORDER_NOT_OPEN: (110001, "Order does not exist."),
    # derivatives (order placement; the setting endpoints map the engine's refusals themselves)
    Reject.REDUCE_ONLY_REJECTED: (110017, "current position is zero, cannot fix reduce-only order qty"),
    Reject.POSITION_SIDE_INVALID: (10001, "position idx not match position mode"),
    Reject.LEVERAGE_INVALID: (10001, "leverage invalid"),
    Reject.NO_CHANGE: (10001, "not modified"),
    Reject.POSITION_OPEN: (110024, "You have an existing position, so position mode cannot be switched"),
    Reject.ORDERS_OPEN: (110028, "Open orders exist, so you cannot change position mode"),
    Reject.NO_POSITION: (110033, "Margin cannot be set without open position"),
    Reject.NOT_ISOLATED: (110015, "the position is in cross_margin"),
    Reject.MARGIN_TOO_LOW: (110011, "Any adjustments made will trigger immediate liquidation"),
}


def rejection(category: Category, reason: Reject, detail: str = "") -> BybitError:
    code, msg = (SPOT_REJECTIONS if category == "spot" else CONTRACT_REJECTIONS)[reason]
    if reason is Reject.NOT_TRADABLE and detail:
        msg = detail  # e.g. the engine's "derivatives trading is not emulated yet"
    return BybitError(code, msg)


# --- numbers and ids --------------------------------------------------------------------------------------


def places(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


def fmt(value: Decimal, step: Decimal) -> str:
    """A number printed at the precision of ``step`` (``"51444.40"`` for a 0.10 tick)."""
    return f"{value:.{places(step)}f}"


def fmt_plain(value: Decimal, max_places: int = 8) -> str:
    """A computed amount (turnover, fees, balances) without trailing zeros (``"0.0679239"``)."""
    text = f"{value.quantize(Decimal(1).scaleb(-max_places)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def price(instrument: Instrument, value: Decimal) -> str:
    return fmt(value, instrument.price_tick)


def qty(instrument: Instrument, value: Decimal) -> str:
    return fmt(value, instrument.amount_step)


def order_id(category: Category, engine_id: int) -> str:
    """Spot order ids are long digit strings; contract and option ids are UUIDs (reversible here)."""
    return str(engine_id) if category == "spot" else str(uuid.UUID(int=engine_id))


def parse_order_id(category: Category, text: str) -> int | None:
    try:
        return int(text) if category == "spot" else uuid.UUID(text).int
    except ValueError:
        return None


def exec_id(category: Category, trade_id: int) -> str:
    return str(trade_id) if category == "spot" else str(uuid.UUID(int=trade_id))


# --- signing ----------------------------------------------------------------------------------------------


def rest_signature(secret: str, timestamp: str, key: str, recv_window: str, payload: str) -> str:
    """``X-BAPI-SIGN``: hex HMAC-SHA256 of timestamp + key + recvWindow + (query string | JSON body)."""
    message = f"{timestamp}{key}{recv_window}{payload}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def ws_signature(secret: str, expires: str) -> str:
    """WebSocket ``auth``: hex HMAC-SHA256 of ``GET/realtime`` + expires."""
    return hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
