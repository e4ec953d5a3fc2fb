"""Return shapes of the connectors: CCXT's unified structures, with ``Decimal`` for money.

Field names are CCXT's (so its documentation applies); numbers that are money or quantities
are ``Decimal`` (converted from CCXT's floats via ``Decimal(str(x))``), timestamps are
``int`` milliseconds. ``info`` keeps the venue's raw object for callers that need an extra.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, TypedDict

__all__ = [
    "Balance",
    "BalanceEntry",
    "FundingRate",
    "Order",
    "OrderBook",
    "Position",
    "Ticker",
    "Trade",
    "to_decimal",
    "to_decimals",
]


class Ticker(TypedDict, total=False):
    symbol: str
    timestamp: int | None
    datetime: str | None
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    high: Decimal | None
    low: Decimal | None
    open: Decimal | None
    close: Decimal | None
    baseVolume: Decimal | None
    quoteVolume: Decimal | None
    percentage: Decimal | None
    info: Any


class OrderBook(TypedDict, total=False):
    symbol: str
    bids: list[list[Decimal]]
    asks: list[list[Decimal]]
    timestamp: int | None
    nonce: int | None


class Trade(TypedDict, total=False):
    id: str | None
    order: str | None
    symbol: str
    timestamp: int | None
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal | None
    fee: dict[str, Any] | None
    takerOrMaker: str | None
    info: Any


class Order(TypedDict, total=False):
    id: str
    clientOrderId: str | None
    symbol: str
    type: str
    side: str
    status: str | None
    price: Decimal | None
    average: Decimal | None
    amount: Decimal | None
    filled: Decimal | None
    remaining: Decimal | None
    cost: Decimal | None
    timestamp: int | None
    lastTradeTimestamp: int | None
    reduceOnly: bool | None
    info: Any


class BalanceEntry(TypedDict):
    free: Decimal | None
    used: Decimal | None
    total: Decimal | None


class Balance(TypedDict):
    timestamp: int | None
    balances: dict[str, BalanceEntry]


class Position(TypedDict, total=False):
    symbol: str
    side: str | None
    contracts: Decimal | None
    contractSize: Decimal | None
    entryPrice: Decimal | None
    markPrice: Decimal | None
    notional: Decimal | None
    leverage: Decimal | None
    unrealizedPnl: Decimal | None
    liquidationPrice: Decimal | None
    marginMode: str | None
    takeProfitPrice: Decimal | None
    stopLossPrice: Decimal | None
    timestamp: int | None
    info: Any


class FundingRate(TypedDict, total=False):
    symbol: str
    fundingRate: Decimal | None
    fundingTimestamp: int | None
    nextFundingRate: Decimal | None
    nextFundingTimestamp: int | None
    markPrice: Decimal | None
    indexPrice: Decimal | None
    interval: str | None
    timestamp: int | None
    info: Any


def to_decimal(value: Any) -> Decimal | None:
    """``Decimal`` from a CCXT number (float, int or numeric string); None for None/NaN/inf."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(str(value))
    if isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except ArithmeticError:
            return None
        return result if result.is_finite() else None
    return None


def _is_time_key(key: str) -> bool:
    lowered = key.lower()
    return lowered.endswith("timestamp") or lowered in {"nonce", "expiry", "id", "seq"}


def to_decimals(value: Any, key: str | None = None) -> Any:
    """Convert a CCXT structure: floats become ``Decimal`` everywhere; ints become ``Decimal``
    under keys that are not timestamps or nonces; ``info`` (the raw venue object) is kept
    as is. Lists keep their ints (OHLCV rows start with an int timestamp)."""
    if isinstance(value, dict):
        return {k: (v if k == "info" else to_decimals(v, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [to_decimals(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return to_decimal(value)
    if isinstance(value, int) and key is not None and not _is_time_key(key):
        return Decimal(value)
    return value
