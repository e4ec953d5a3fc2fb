"""Instrument catalogue: the venue-neutral description of every market the emulator lists.

Venue adapters build :class:`Instrument` objects from their recorded markets (``data/ccxt-static/markets``)
and keep the raw venue object in ``raw`` so they can serialise it back in the venue's own shape. The engine
only reads the neutral fields (tick sizes, limits, fees, expiry, ...).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

DATA_DIR = Path(__file__).parent / "data"

Kind = Literal["spot", "swap", "future", "option"]


@dataclass
class Instrument:
    """One tradable market on one venue (unified CCXT symbol plus the venue's own id)."""

    venue: str
    symbol: str
    id: str
    kind: Kind
    base: str
    quote: str
    settle: str | None
    price_tick: Decimal
    amount_step: Decimal
    min_amount: Decimal
    max_amount: Decimal
    min_notional: Decimal = Decimal(0)
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)
    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")
    linear: bool | None = None
    contract_size: Decimal = Decimal(1)
    expiry_ms: int | None = None
    strike: Decimal | None = None
    option_type: Literal["C", "P"] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def contract(self) -> bool:
        return self.kind != "spot"


class Catalogue:
    """All instruments of all venues, indexed by (venue, unified symbol) and (venue, venue id)."""

    def __init__(self) -> None:
        self._by_symbol: dict[tuple[str, str], Instrument] = {}
        self._by_id: dict[tuple[str, str, str], Instrument] = {}

    def add(self, instrument: Instrument) -> None:
        self._by_symbol[(instrument.venue, instrument.symbol)] = instrument
        # Venue ids are only unique per market kind (Binance: BTCUSDT is both spot and the USDT-M perp).
        self._by_id[(instrument.venue, instrument.kind, instrument.id)] = instrument

    def get(self, venue: str, symbol: str) -> Instrument | None:
        return self._by_symbol.get((venue, symbol))

    def by_id(self, venue: str, venue_id: str, kinds: tuple[Kind, ...]) -> Instrument | None:
        for kind in kinds:
            found = self._by_id.get((venue, kind, venue_id))
            if found is not None:
                return found
        return None

    def of(self, venue: str, *kinds: Kind) -> list[Instrument]:
        return [i for (v, _), i in self._by_symbol.items() if v == venue and (not kinds or i.kind in kinds)]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_symbol.values())


@cache
def decimal_or(value: Any, default: str = "0") -> Decimal:
    """A recorded number (string or number) as a Decimal; ``default`` when it is missing or empty."""
    return Decimal(str(value)) if value not in (None, "") else Decimal(default)


def load_json(kind: str, venue: str) -> Any:
    """Load one recorded file, e.g. ``load_json("markets", "binance")``."""
    return json.loads((DATA_DIR / "ccxt-static" / kind / f"{venue}.json").read_text(encoding="utf-8"))


@cache
def reference_levels() -> dict[str, Decimal]:
    """Price level of each base currency in its quote (USD-like) currency; see data/README.md."""
    raw = json.loads((DATA_DIR / "levels.json").read_text(encoding="utf-8"))
    return {code: Decimal(entry["level"]) for code, entry in raw.items()}


def reference_level(base: str) -> Decimal:
    return reference_levels().get(base, Decimal(1))


# --- dated instruments -------------------------------------------------------------------------------------


def last_friday(year: int, month: int) -> dt.date:
    last_day = calendar.monthrange(year, month)[1]
    day = dt.date(year, month, last_day)
    return day - dt.timedelta(days=(day.weekday() - calendar.FRIDAY) % 7)


def quarterly_expiries(today: dt.date, count: int = 2) -> list[dt.date]:
    """The next ``count`` quarterly expiries (last Friday of Mar/Jun/Sep/Dec) strictly after ``today``."""
    result: list[dt.date] = []
    year, month = today.year, today.month
    while len(result) < count:
        if month % 3 == 0:
            candidate = last_friday(year, month)
            if candidate > today:
                result.append(candidate)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return result


def weekly_expiries(today: dt.date, count: int = 2) -> list[dt.date]:
    """The next ``count`` Fridays strictly after ``today`` (option venues list weeklies)."""
    first = today + dt.timedelta(days=(calendar.FRIDAY - today.weekday()) % 7 or 7)
    return [first + dt.timedelta(weeks=i) for i in range(count)]


def expiry_ms(day: dt.date, hour_utc: int = 8) -> int:
    """Expiry timestamp in ms; Binance, OKX and Bybit all settle dated contracts at 08:00 UTC."""
    moment = dt.datetime(day.year, day.month, day.day, hour_utc, tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def strike_ladder(level: Decimal, count: int = 5, step_ratio: Decimal = Decimal("0.05")) -> list[Decimal]:
    """``count`` strikes centred on ``level``, about ``step_ratio`` apart, on a 2-significant-digit grid."""
    raw_step = level * step_ratio
    exponent = raw_step.adjusted() - 1
    step = raw_step.scaleb(-exponent).quantize(Decimal(1)).scaleb(exponent)
    centre = (level / step).quantize(Decimal(1)) * step
    half = count // 2
    return [(centre + step * (i - half)).normalize() for i in range(count) if centre + step * (i - half) > 0]
