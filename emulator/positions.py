"""Venue-neutral derivatives state: per (venue, key) settings, positions, income; account events.

Contracts are counted in the venue's own contracts (``Instrument.contract_size`` units of the base for linear
contracts, of the quote/USD for inverse ones). Money is in the instrument's settle asset (USDT for linear,
the base coin for inverse) and lives in the key's :class:`~emulator.accounts.Wallet` on that venue: the
margin of positions and of open orders is *locked* there, realised PnL, fees and funding move *free*.

* linear:  notional = contracts * size * price;  PnL = contracts * size * (exit - entry)
* inverse: notional = contracts * size / price;  PnL = contracts * size * (1/entry - 1/exit)

Positions are signed (``size > 0`` long, ``< 0`` short). In one-way mode each symbol has one position with
``side == "both"``; in hedge mode two legs, ``"long"`` (size >= 0) and ``"short"`` (size <= 0).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from emulator.catalogue import Instrument

if TYPE_CHECKING:
    from emulator.orders import Fill, Order

PositionSide = Literal["both", "long", "short"]
MarginMode = Literal["cross", "isolated"]
TriggerBy = Literal["mark", "last", "index"]

DEFAULT_LEVERAGE = Decimal(20)  # Binance's default for a new symbol
MAX_LEVERAGE = Decimal(125)
MAINT_MARGIN_RATE = Decimal("0.004")  # first bracket of BTCUSDT on Binance

ZERO = Decimal(0)


def notional(instrument: Instrument, contracts: Decimal, price: Decimal) -> Decimal:
    """Value of ``contracts`` (absolute) at ``price``, in the settle asset."""
    contracts = abs(contracts)
    if instrument.linear is False:
        return contracts * instrument.contract_size / price if price else ZERO
    return contracts * instrument.contract_size * price


def pnl(instrument: Instrument, size: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
    """Profit of a signed position ``size`` opened at ``entry`` and valued at ``exit_price``."""
    if not size or not entry or not exit_price:
        return ZERO
    if instrument.linear is False:
        return size * instrument.contract_size * (1 / entry - 1 / exit_price)
    return size * instrument.contract_size * (exit_price - entry)


def average_entry(
    instrument: Instrument, size: Decimal, entry: Decimal, qty: Decimal, price: Decimal
) -> Decimal:
    """Entry price after adding ``qty`` (absolute) at ``price`` to ``size`` (absolute) at ``entry``:
    weighted by contracts for linear, harmonic (weighted by value) for inverse contracts."""
    total = size + qty
    if not total:
        return ZERO
    if instrument.linear is False:
        return total / ((size / entry if entry else ZERO) + qty / price)
    return (size * entry + qty * price) / total


@dataclass
class Position:
    venue: str
    key: str
    symbol: str
    side: PositionSide
    instrument: Instrument
    margin_mode: MarginMode
    leverage: Decimal
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    margin: Decimal = ZERO  # locked in the wallet for this position (isolated: its whole margin)
    realised_pnl: Decimal = ZERO
    funding: Decimal = ZERO  # cumulative funding received (negative: paid)
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trigger_by: TriggerBy = "mark"
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def settle(self) -> str:
        return self.instrument.settle or self.instrument.quote

    @property
    def contracts(self) -> Decimal:
        return abs(self.size)

    @property
    def direction(self) -> Literal["long", "short", "flat"]:
        return "long" if self.size > 0 else "short" if self.size < 0 else "flat"

    def notional(self, price: Decimal) -> Decimal:
        return notional(self.instrument, self.size, price)

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        return pnl(self.instrument, self.size, self.entry_price, mark)

    def initial_margin(self, mark: Decimal) -> Decimal:
        return self.notional(mark) / self.leverage if self.leverage else ZERO

    def maintenance_margin(self, mark: Decimal) -> Decimal:
        return self.notional(mark) * MAINT_MARGIN_RATE

    def liquidation_price(self, collateral: Decimal) -> Decimal:
        """Approximate price at which ``collateral`` (isolated: the position margin; cross: the wallet
        balance of the settle asset) minus the loss falls to the maintenance margin. 0: none."""
        if not self.size or self.instrument.linear is False:
            return ZERO
        qty = self.contracts * self.instrument.contract_size
        if self.size > 0:
            price = (self.entry_price * qty - collateral) / (qty * (1 - MAINT_MARGIN_RATE))
        else:
            price = (self.entry_price * qty + collateral) / (qty * (1 + MAINT_MARGIN_RATE))
        return max(ZERO, price)


@dataclass
class Income:
    """One ledger line of a derivatives account (Binance ``/fapi/v1/income``, Bybit/OKX bills)."""

    id: int
    ts_ms: int
    symbol: str
    kind: Literal["REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "INSURANCE_CLEAR", "TRANSFER"]
    amount: Decimal
    asset: str
    trade_id: int | None = None
    rate: Decimal | None = None  # FUNDING_FEE: the rate applied


@dataclass
class DerivativesAccount:
    """Settings and positions of one key on one venue."""

    hedged: bool = False  # position mode: False one-way ("both"), True hedge ("long"/"short")
    leverage: dict[str, Decimal] = field(default_factory=dict)  # symbol -> leverage
    margin_mode: dict[str, MarginMode] = field(default_factory=dict)  # symbol -> cross/isolated
    positions: dict[tuple[str, PositionSide], Position] = field(default_factory=dict)
    income: list[Income] = field(default_factory=list)

    _income_ids = itertools.count(1)

    def leverage_of(self, symbol: str) -> Decimal:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def margin_mode_of(self, symbol: str) -> MarginMode:
        return self.margin_mode.get(symbol, "cross")

    def flat(self, venue: str, key: str, instrument: Instrument, side: PositionSide) -> Position:
        """A flat position of (symbol, side) with the symbol's settings, not kept (venues that list a symbol's
        rows even when flat)."""
        mode, leverage = self.margin_mode_of(instrument.symbol), self.leverage_of(instrument.symbol)
        return Position(venue, key, instrument.symbol, side, instrument, mode, leverage)

    def position(self, venue: str, key: str, instrument: Instrument, side: PositionSide) -> Position:
        """The position of (symbol, side), created flat with the symbol's settings."""
        found = self.positions.get((instrument.symbol, side))
        if found is None:
            found = self.positions[(instrument.symbol, side)] = self.flat(venue, key, instrument, side)
        return found

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        return [p for p in self.positions.values() if p.size and (symbol is None or p.symbol == symbol)]

    def of_symbol(self, symbol: str) -> list[Position]:
        return [p for p in self.positions.values() if p.symbol == symbol]

    def record(
        self,
        ts_ms: int,
        symbol: str,
        kind: str,
        amount: Decimal,
        asset: str,
        trade_id: int | None = None,
        rate: Decimal | None = None,
    ) -> Income:
        line = Income(next(self._income_ids), ts_ms, symbol, kind, amount, asset, trade_id, rate)  # type: ignore[arg-type]
        self.income.append(line)
        return line


@dataclass
class AccountEvent:
    """A change of one key's account, delivered to ``Engine.account_listeners`` (private streams).

    ``kind``: ``"order"`` (``order``, ``exec_type`` "new" | "trade" | "canceled" | "expired", ``fill`` for
    trades), ``"balance"`` (``assets`` whose balance changed), ``"position"`` (``positions`` that changed).
    ``reason`` says why: "order", "funding", "margin", "settlement", "trading_stop". ``symbol``: the
    instrument the change came from.
    """

    venue: str
    key: str
    kind: Literal["order", "balance", "position"]
    ts_ms: int
    reason: str = "order"
    order: Order | None = None
    exec_type: str = ""
    fill: Fill | None = None
    assets: tuple[str, ...] = ()
    positions: tuple[Position, ...] = ()
    symbol: str = ""  # the instrument the change came from (balance events: tells spot from futures)
