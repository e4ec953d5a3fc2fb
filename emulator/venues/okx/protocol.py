"""OKX v5 wire conventions shared by REST and WebSocket: envelopes, error codes, numbers, signing.

Every answer is ``{"code": "0", "msg": "", "data": [...]}`` with numbers as strings. Errors keep OKX's codes
and HTTP statuses, so CCXT's ``exceptions["exact"]`` map (``ccxt/okx.py``) raises what it raises in
production: 501xx authentication errors answer HTTP 401, parameter errors 400, business errors 200.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Container
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from emulator.orders import Reject

# How far OKX lets OK-ACCESS-TIMESTAMP drift from its clock before 50102 "Timestamp request expired".
TIMESTAMP_TOLERANCE_MS = 30_000


class OkxError(Exception):
    """An error answer ``{"code", "msg", "data": []}`` with an HTTP status."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.Response:
        return json_response({"code": self.code, "data": [], "msg": self.msg}, status=self.status)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def ok(data: list[Any]) -> web.Response:
    return json_response({"code": "0", "data": data, "msg": ""})


def empty(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.", status=400)


def param_error(name: str) -> OkxError:
    return OkxError("51000", f"Parameter {name} error", status=400)


def choice(value: Any, name: str, allowed: Container[str]) -> str:
    """A required parameter with a fixed set of values: 50014 when it is empty, 51000 when it is none of
    ``allowed``."""
    text = str(value or "")
    if not text:
        raise empty(name)
    if text not in allowed:
        raise param_error(name)
    return text


def no_instrument() -> OkxError:
    return OkxError("51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist.")


# Order rejections as OKX's per-order sCode/sMsg (CCXT matches sCode exactly: 51008 InsufficientFunds,
# 51016/51020/51121/51006/51203 InvalidOrder, 51001 BadSymbol, 51000 BadRequest; 51169 is not in CCXT's map
# and 59000 maps to ExchangeError: both raise ExchangeError, as in production).
REJECTIONS: dict[Reject, tuple[str, str]] = {
    Reject.UNKNOWN_SYMBOL: ("51001", "Instrument ID, Instrument ID code, or Spread ID doesn't exist."),
    Reject.NOT_TRADABLE: ("51010", "You can't complete this request under your current account mode."),
    Reject.PRICE_PRECISION: ("51000", "Parameter px error"),
    Reject.PRICE_OUT_OF_RANGE: ("51006", "Order price is not within the price limit."),
    Reject.AMOUNT_PRECISION: ("51121", "Order quantity must be a multiple of the lot size."),
    Reject.AMOUNT_TOO_SMALL: ("51020", "Your order should meet or exceed the minimum order amount."),
    Reject.AMOUNT_TOO_LARGE: ("51203", "Order amount exceeds the limit."),
    Reject.NOTIONAL_TOO_SMALL: ("51020", "Your order should meet or exceed the minimum order amount."),
    Reject.INSUFFICIENT_FUNDS: ("51008", "Order failed. Insufficient balance in account."),
    Reject.DUPLICATE_CLIENT_ID: ("51016", "Duplicated clOrdId"),
    Reject.POST_ONLY_WOULD_TAKE: (
        "51000",
        "Parameter ordType error: the post_only order would take liquidity",
    ),
    Reject.ORDER_NOT_FOUND: ("51603", "Order does not exist"),
    Reject.ORDER_NOT_OPEN: (
        "51400",
        "Order cancellation failed as the order has been filled, canceled or does not exist.",
    ),
    # derivatives (emulator/positions.py); settings endpoints map some of these differently (derivatives.py)
    Reject.POSITION_SIDE_INVALID: ("51000", "Parameter posSide error"),
    Reject.REDUCE_ONLY_REJECTED: (
        "51169",
        "Order failed because you don't have any positions in this direction for this contract to reduce "
        "or close.",
    ),
    Reject.LEVERAGE_INVALID: ("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage."),
    Reject.NO_CHANGE: ("59000", "Setting failed. The setting already has that value."),
    Reject.POSITION_OPEN: (
        "59000",
        "Setting failed. Cancel any open orders, close positions, and stop trading bots first.",
    ),
    Reject.ORDERS_OPEN: (
        "59000",
        "Setting failed. Cancel any open orders, close positions, and stop trading bots first.",
    ),
    Reject.NO_POSITION: ("51023", "Position does not exist."),
    Reject.NOT_ISOLATED: ("59300", "Margin call failed. Position does not exist."),
    Reject.MARGIN_TOO_LOW: ("59301", "Margin adjustment failed for exceeding the max limit."),
}


# --- numbers ------------------------------------------------------------------------------------------------


def num(value: Decimal | int | None) -> str:
    """OKX prints plain decimals without trailing zeros (``"73384.8"``, ``"0.00007722"``, ``"0"``)."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def on_step(value: Decimal, step: Decimal) -> str:
    """A price or size on its instrument's grid (trailing zeros dropped, as OKX does)."""
    return num(value.quantize(step) if step.as_tuple().exponent < 0 else value)  # type: ignore[operator]


# --- time and signing ---------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int | None:
    """``2026-11-24T04:30:03.206Z`` -> ms; None if it is not an ISO-8601 UTC time."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def sign(secret: str, prehash: str) -> str:
    """``base64(HMAC-SHA256(secret, prehash))``: REST prehash is ts + METHOD + path[?query] + body; WebSocket
    login is ts + "GET" + "/users/self/verify"."""
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def signature_matches(secret: str, prehash: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, prehash), signature)
