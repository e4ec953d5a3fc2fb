"""Binance wire conventions shared by REST and WebSocket: errors, numbers, parameters, signing."""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from emulator.catalogue import Instrument
from emulator.orders import Reject

NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
MAX_RECV_WINDOW = 60_000
FUTURE_TOLERANCE_MS = 1_000  # Binance rejects timestamps more than 1 s ahead of its clock

INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


class BinanceError(Exception):
    """An error answer: ``{"code": code, "msg": msg}`` with an HTTP status (usually 400)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.Response:
        return json_response({"code": self.code, "msg": self.msg}, status=self.status)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


# The real messages CCXT matches on (binance.py "exceptions"): -2010 with "Account has insufficient balance
# for requested action." becomes InsufficientFunds, "Filter failure: LOT_SIZE"/"PRICE_FILTER" in the body
# becomes InvalidOrder, -2011/-2013 become OrderNotFound.
REJECTIONS: dict[Reject, tuple[int, str]] = {
    Reject.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    Reject.NOT_TRADABLE: (-2010, "This symbol is not permitted for this account."),
    Reject.PRICE_PRECISION: (-1013, "Filter failure: PRICE_FILTER"),
    Reject.PRICE_OUT_OF_RANGE: (-1013, "Filter failure: PRICE_FILTER"),
    Reject.AMOUNT_PRECISION: (-1013, "Filter failure: LOT_SIZE"),
    Reject.AMOUNT_TOO_SMALL: (-1013, "Filter failure: LOT_SIZE"),
    Reject.AMOUNT_TOO_LARGE: (-1013, "Filter failure: LOT_SIZE"),
    Reject.NOTIONAL_TOO_SMALL: (-1013, "Filter failure: NOTIONAL"),
    Reject.INSUFFICIENT_FUNDS: (-2010, "Account has insufficient balance for requested action."),
    Reject.DUPLICATE_CLIENT_ID: (-2010, "Duplicate order sent."),
    Reject.POST_ONLY_WOULD_TAKE: (-2010, "Order would immediately match and take."),
    Reject.ORDER_NOT_FOUND: (-2013, "Order does not exist."),
    Reject.ORDER_NOT_OPEN: (-2011, "Unknown order sent."),
}


def rejection(reason: Reject) -> BinanceError:
    code, msg = REJECTIONS[reason]
    return BinanceError(code, msg)


# --- numbers ------------------------------------------------------------------------------------------------


def fmt_spot(value: Decimal) -> str:
    """Spot prints every price and quantity with 8 decimals (``"73369.84000000"``)."""
    return f"{value:.8f}"


def fmt_step(value: Decimal, step: Decimal) -> str:
    """Futures print at the instrument's own precision (``"42651.10"``, ``"470.672"``)."""
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:.{places}f}"


def fmt_price(instrument: Instrument, value: Decimal) -> str:
    return fmt_spot(value) if instrument.kind == "spot" else fmt_step(value, instrument.price_tick)


def fmt_qty(instrument: Instrument, value: Decimal) -> str:
    return fmt_spot(value) if instrument.kind == "spot" else fmt_step(value, instrument.amount_step)


# --- parameters ---------------------------------------------------------------------------------------------


class Params:
    """Query and form parameters of one request, checked against the names the endpoint reads.

    Binance answers -1104 when a request carries a parameter the endpoint does not read, -1102 for a missing
    one and -1100 for a malformed number.
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.values: dict[str, str] = {}
        for name, value in pairs:
            self.values[name] = value

    def check_known(self, accepted: frozenset[str]) -> None:
        unread = [n for n in self.values if n not in accepted]
        if unread:
            sent = len(self.values)
            raise BinanceError(
                -1104,
                f"Not all sent parameters were read; read '{sent - len(unread)}' parameter(s) "
                f"but was sent '{sent}'.",
            )

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise mandatory(name)
            return None
        return value

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        raw = self.text(name, required)
        if raw is None:
            return None
        if not NUMBER.match(raw):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is "
                f"'^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
            )
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None

    def integer(self, name: str, required: bool = False) -> int | None:
        raw = self.text(name, required)
        if raw is None:
            return None
        if not raw.lstrip("-").isdigit():
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'."
            )
        return int(raw)

    def symbols(self) -> list[str] | None:
        """The ``symbols`` parameter, a JSON array of ids (``["BTCUSDT","ETHUSDT"]``)."""
        raw = self.text("symbols")
        if raw is None:
            return None
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is "
                '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
            )
        return parsed


# --- signing ------------------------------------------------------------------------------------------------


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split ``a=1&signature=xx`` into the signed part and the signature."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify_signature(secret: str, query_string: str, body: str) -> bool | None:
    """Binance signs ``totalParams`` = query string + request body (without ``signature``) with
    hex HMAC-SHA256. Returns None when no signature was sent."""
    query, sig_in_query = strip_signature(query_string)
    body_part, sig_in_body = strip_signature(body)
    signature = sig_in_query or sig_in_body
    if not signature:
        return None
    expected = hmac.new(secret.encode(), (query + body_part).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())
