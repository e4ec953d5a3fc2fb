"""Venue-neutral order records and rejection reasons (adapters map :class:`Reject` to their codes)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from emulator.market import Side

OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK"]


class Status(enum.StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


OPEN_STATUSES = frozenset({Status.NEW, Status.PARTIALLY_FILLED})


class Reject(enum.Enum):
    """Why the engine refused an order or an order query."""

    UNKNOWN_SYMBOL = "unknown symbol"
    NOT_TRADABLE = "market is not tradable here"
    PRICE_PRECISION = "price is not a multiple of the tick size"
    PRICE_OUT_OF_RANGE = "price outside the allowed range"
    AMOUNT_PRECISION = "amount is not a multiple of the step size"
    AMOUNT_TOO_SMALL = "amount below the minimum"
    AMOUNT_TOO_LARGE = "amount above the maximum"
    NOTIONAL_TOO_SMALL = "order value below the minimum notional"
    INSUFFICIENT_FUNDS = "insufficient balance"
    DUPLICATE_CLIENT_ID = "client order id already used by an open order"
    POST_ONLY_WOULD_TAKE = "post-only order would take liquidity"
    ORDER_NOT_FOUND = "order not found"
    ORDER_NOT_OPEN = "order is not open"
    # derivatives (emulator/positions.py)
    REDUCE_ONLY_REJECTED = "reduce-only order would not reduce the position"
    POSITION_SIDE_INVALID = "position side does not match the position mode"
    LEVERAGE_INVALID = "leverage outside the allowed range"
    NO_CHANGE = "the setting already has that value"
    POSITION_OPEN = "not allowed while a position is open"
    ORDERS_OPEN = "not allowed while orders are open"
    NO_POSITION = "no open position"
    NOT_ISOLATED = "the position is not in isolated margin mode"
    MARGIN_TOO_LOW = "the remaining margin would be below the initial margin"


class OrderRejected(Exception):
    """An order request the engine refused; ``reason`` decides the venue's error code."""

    def __init__(self, reason: Reject, detail: str = "") -> None:
        super().__init__(detail or reason.value)
        self.reason = reason
        self.detail = detail


@dataclass
class Fill:
    """One execution of an account's order (its ``trade_id`` is also the public trade id)."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    ts_ms: int
    maker: bool
    realised_pnl: Decimal = Decimal(0)  # contracts: PnL this fill realised

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    """One account order. ``extra`` carries venue-specific request fields the adapter echoes back."""

    id: int
    venue: str
    key: str
    symbol: str
    client_id: str
    side: Side
    type: OrderType
    price: Decimal | None
    amount: Decimal | None
    quote_amount: Decimal | None
    time_in_force: TimeInForce
    post_only: bool
    created_ms: int
    status: Status = Status.NEW
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    updated_ms: int = 0
    locked_asset: str = ""
    locked: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    reduce_only: bool = False  # contracts only
    position_side: str = "both"  # contracts only: "both" (one-way mode), "long" / "short" (hedge mode)
    realised_pnl: Decimal = Decimal(0)  # contracts only: PnL realised by this order's fills

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return (self.amount - self.filled) if self.amount is not None else Decimal(0)

    @property
    def average(self) -> Decimal:
        return self.cost / self.filled if self.filled else Decimal(0)
