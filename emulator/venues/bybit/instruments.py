"""Bybit (v5) instruments from the recorded markets, plus the dated contracts and options re-issued for today.

Bybit lists every market under one ``/v5/market/instruments-info`` endpoint split by ``category``: ``spot``,
``linear`` (USDT perpetuals and USDT dated futures), ``inverse`` (coin-margined perpetuals and futures) and
``option`` (USDT-settled European options). Venue ids are unique per category only (``BTCUSDT`` is both the
spot pair and the linear perpetual), so the category is derived from the instrument.

Recorded markets: 7 spot pairs, 8 USDT perpetuals, 2 inverse perpetuals and 3 options of an expiry long past
(30 May 2025; two of them without their raw object). Dated markets are synthesised relative to ``today``:

* USDT dated futures ``BTCUSDT-26JUN26`` / ``ETHUSDT-26JUN26`` for the next two quarterly expiries, built on
  the raw object of the same pair's perpetual (``contractType`` ``LinearFutures``, ``deliveryTime``);
* inverse quarterly futures ``BTCUSDM26`` (Bybit's month-code names) from ``BTCUSD``;
* options on BTC, ETH and SOL for the next weekly and the next quarterly expiry: five strikes around the
  reference level, calls and puts, built on the recorded ``SOL-30MAY25-90-P-USDT`` object with each base's
  recorded tick and lot sizes.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from emulator.catalogue import (
    Instrument,
    Kind,
    decimal_or,
    expiry_ms,
    load_json,
    quarterly_expiries,
    reference_level,
    strike_ladder,
    weekly_expiries,
)

VENUE = "bybit"

Category = Literal["spot", "linear", "inverse", "option"]
CATEGORIES: tuple[Category, ...] = ("spot", "linear", "inverse", "option")
KINDS: dict[Category, tuple[Kind, ...]] = {
    "spot": ("spot",),
    "linear": ("swap", "future"),
    "inverse": ("swap", "future"),
    "option": ("option",),
}

MONTH_CODES = "FGHJKMNQUVXZ"  # inverse futures: BTCUSD + month code + 2-digit year (BTCUSDM26)
LINEAR_FUTURE_BASES = ("BTC", "ETH")
INVERSE_FUTURE_BASES = ("BTC",)
OPTION_BASES = ("BTC", "ETH", "SOL")
# Per-base option filters as Bybit lists them (tick/lot sizes from the recorded markets).
OPTION_FILTERS: dict[str, dict[str, dict[str, str]]] = {
    "BTC": {
        "priceFilter": {"minPrice": "5", "maxPrice": "10000000", "tickSize": "5"},
        "lotSizeFilter": {"maxOrderQty": "500", "minOrderQty": "0.01", "qtyStep": "0.01"},
    },
    "ETH": {
        "priceFilter": {"minPrice": "0.1", "maxPrice": "10000000", "tickSize": "0.1"},
        "lotSizeFilter": {"maxOrderQty": "10000", "minOrderQty": "0.1", "qtyStep": "0.1"},
    },
    "SOL": {
        "priceFilter": {"minPrice": "0.01", "maxPrice": "3000", "tickSize": "0.01"},
        "lotSizeFilter": {"maxOrderQty": "100000", "minOrderQty": "1", "qtyStep": "1"},
    },
}


def category_of(instrument: Instrument) -> Category:
    if instrument.kind == "spot":
        return "spot"
    if instrument.kind == "option":
        return "option"
    return "linear" if instrument.linear else "inverse"


def day_code(day: dt.date) -> str:
    """``26JUN26``: Bybit's expiry in dated symbols."""
    return day.strftime("%d%b%y").upper()


def _spot(symbol: str, market: dict[str, Any]) -> Instrument:
    info = market["info"]
    lot, price = info["lotSizeFilter"], info["priceFilter"]
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        id=info["symbol"],
        kind="spot",
        base=market["base"],
        quote=market["quote"],
        settle=None,
        price_tick=decimal_or(price["tickSize"]).normalize(),
        amount_step=decimal_or(lot["basePrecision"]).normalize(),
        min_amount=decimal_or(lot["minOrderQty"]),
        max_amount=decimal_or(lot["maxOrderQty"]),
        min_notional=decimal_or(lot.get("minOrderAmt")),
        maker=Decimal("0.001"),
        taker=Decimal("0.001"),
        raw=info,
    )


def _contract(
    symbol: str, info: dict[str, Any], base: str, quote: str, settle: str, linear: bool
) -> Instrument:
    lot, price = info["lotSizeFilter"], info["priceFilter"]
    delivery = int(info.get("deliveryTime") or 0)
    kind: Kind = "future" if delivery else "swap"
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        id=info["symbol"],
        kind=kind,
        base=base,
        quote=quote,
        settle=settle,
        price_tick=decimal_or(price["tickSize"]).normalize(),
        amount_step=decimal_or(lot["qtyStep"]).normalize(),
        min_amount=decimal_or(lot["minOrderQty"]),
        max_amount=decimal_or(lot["maxOrderQty"]),
        min_notional=decimal_or(lot.get("minNotionalValue")) if linear else Decimal(0),
        min_price=decimal_or(price.get("minPrice")),
        max_price=decimal_or(price.get("maxPrice")),
        maker=Decimal("0.0002"),
        taker=Decimal("0.00055"),
        linear=linear,
        contract_size=Decimal(1),
        expiry_ms=delivery or None,
        raw=info,
    )


def _option(
    base: str, day: dt.date, strike: Decimal, letter: Literal["C", "P"], template: dict
) -> Instrument:
    strike_text = format(strike, "f")
    code = day_code(day)
    info = copy.deepcopy(template)
    info.update(
        symbol=f"{base}-{code}-{strike_text}-{letter}-USDT",
        baseCoin=base,
        quoteCoin="USDT",
        settleCoin="USDT",
        optionsType="Call" if letter == "C" else "Put",
        launchTime=str(expiry_ms(day - dt.timedelta(days=28))),
        deliveryTime=str(expiry_ms(day)),
        displayName=f"{base}USDT-{code}-{strike_text}-{letter}",
        **copy.deepcopy(OPTION_FILTERS[base]),
    )
    lot, price = info["lotSizeFilter"], info["priceFilter"]
    return Instrument(
        venue=VENUE,
        symbol=f"{base}/USDT:USDT-{day.strftime('%y%m%d')}-{strike_text}-{letter}",
        id=info["symbol"],
        kind="option",
        base=base,
        quote="USDT",
        settle="USDT",
        price_tick=decimal_or(price["tickSize"]).normalize(),
        amount_step=decimal_or(lot["qtyStep"]).normalize(),
        min_amount=decimal_or(lot["minOrderQty"]),
        max_amount=decimal_or(lot["maxOrderQty"]),
        min_price=decimal_or(price["minPrice"]),
        max_price=decimal_or(price["maxPrice"]),
        maker=Decimal("0.0002"),
        taker=Decimal("0.0003"),
        linear=True,
        expiry_ms=expiry_ms(day),
        strike=strike,
        option_type=letter,
        raw=info,
    )


def option_expiries(today: dt.date) -> list[dt.date]:
    """The next weekly (Friday) and the next quarterly expiry (distinct)."""
    days = [weekly_expiries(today, 1)[0]]
    for day in quarterly_expiries(today, 2):
        if day not in days:
            days.append(day)
            break
    return days


def load_instruments(today: dt.date) -> list[Instrument]:
    recorded: dict[str, dict[str, Any]] = load_json("markets", VENUE)
    instruments: list[Instrument] = []
    perpetuals: dict[tuple[str, bool], dict[str, Any]] = {}
    option_template: dict[str, Any] | None = None
    for symbol, market in recorded.items():
        info = market.get("info")
        if not info:
            continue
        if market["type"] == "spot":
            instruments.append(_spot(symbol, market))
        elif market["type"] == "swap":
            linear = bool(market["linear"])
            instruments.append(
                _contract(symbol, info, market["base"], market["quote"], market["settle"], linear)
            )
            perpetuals[(market["base"], linear)] = info
        elif market["type"] == "option":
            option_template = info
    assert option_template is not None, "the recorded bybit markets carry one option with its raw object"
    return instruments + _futures(today, perpetuals) + _options(today, option_template)


def _futures(today: dt.date, perpetuals: dict[tuple[str, bool], dict[str, Any]]) -> list[Instrument]:
    instruments = []
    quarters = quarterly_expiries(today, 2)
    for base in LINEAR_FUTURE_BASES:
        for day in quarters:
            info = _dated(perpetuals[(base, True)], f"{base}USDT-{day_code(day)}", "LinearFutures", day)
            symbol = f"{base}/USDT:USDT-{day.strftime('%y%m%d')}"
            instruments.append(_contract(symbol, info, base, "USDT", "USDT", True))
    for base in INVERSE_FUTURE_BASES:
        for day in quarters:
            venue_id = f"{base}USD{MONTH_CODES[day.month - 1]}{day.strftime('%y')}"
            info = _dated(perpetuals[(base, False)], venue_id, "InverseFutures", day)
            symbol = f"{base}/USD:{base}-{day.strftime('%y%m%d')}"
            instruments.append(_contract(symbol, info, base, "USD", base, False))
    return instruments


def _options(today: dt.date, template: dict[str, Any]) -> list[Instrument]:
    letters: tuple[Literal["C", "P"], ...] = ("C", "P")
    return [
        _option(base, day, strike, letter, template)
        for base in OPTION_BASES
        for day in option_expiries(today)
        for strike in strike_ladder(reference_level(base))
        for letter in letters
    ]


def _dated(perpetual: dict[str, Any], venue_id: str, contract_type: str, day: dt.date) -> dict[str, Any]:
    info = copy.deepcopy(perpetual)
    info.update(
        symbol=venue_id,
        contractType=contract_type,
        launchTime=str(expiry_ms(day - dt.timedelta(days=180))),
        deliveryTime=str(expiry_ms(day)),
        deliveryFeeRate="0.0005",
        fundingInterval=0,
        displayName="",
    )
    return info


def instruments_payload(
    category: Category, instruments: list[Instrument], limit: int, cursor: int
) -> dict[str, Any]:
    """The ``result`` of ``/v5/market/instruments-info``: a page of raw objects and the next cursor."""
    page = instruments[cursor : cursor + limit]
    result: dict[str, Any] = {"category": category, "list": [i.raw for i in page]}
    if category != "spot":
        more = cursor + limit < len(instruments)
        result["nextPageCursor"] = str(cursor + limit) if more else ""
    return result
