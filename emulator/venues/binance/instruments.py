"""Binance instruments from the recorded markets, and the three ``exchangeInfo`` documents.

Binance splits its markets over three APIs, each on its own host: spot (``api.binance.com/api/v3``),
USDⓈ-M futures (``fapi.binance.com/fapi/v1``) and COIN-M futures (``dapi.binance.com/dapi/v1``). A
:class:`Section` describes one of them; the same venue id (``BTCUSDT``) exists in spot and USDⓈ-M.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from emulator.catalogue import Instrument, Kind, expiry_ms, load_json, quarterly_expiries

VENUE = "binance"


@dataclass(frozen=True)
class Section:
    """One of Binance's three market APIs."""

    name: str
    kinds: tuple[Kind, ...]
    linear: bool | None  # None: spot

    def owns(self, instrument: Instrument) -> bool:
        return instrument.kind in self.kinds and instrument.linear == self.linear


SPOT = Section("spot", ("spot",), None)
USDM = Section("usdm", ("swap", "future"), True)
COINM = Section("coinm", ("swap", "future"), False)


def _filters(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["filterType"]: f for f in info.get("filters", [])}


def _instrument(symbol: str, market: dict[str, Any], info: dict[str, Any]) -> Instrument:
    filters = _filters(info)
    price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    kind: Kind = market["type"]
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        id=info["symbol"],
        kind=kind,
        base=market["base"],
        quote=market["quote"],
        settle=market.get("settle"),
        price_tick=Decimal(price["tickSize"]).normalize(),
        amount_step=Decimal(lot["stepSize"]).normalize(),
        min_amount=Decimal(lot["minQty"]),
        max_amount=Decimal(lot["maxQty"]),
        min_notional=Decimal(notional.get("minNotional", notional.get("notional", "0"))),
        min_price=Decimal(price["minPrice"]),
        max_price=Decimal(price["maxPrice"]),
        maker=Decimal(str(market.get("maker", "0.001"))),
        taker=Decimal(str(market.get("taker", "0.001"))),
        linear=market.get("linear"),
        contract_size=Decimal(str(market.get("contractSize") or 1)),
        expiry_ms=int(info["deliveryDate"]) if kind == "future" else None,
        raw=info,
    )


def load_instruments(today: dt.date) -> list[Instrument]:
    """Recorded spot and perpetual markets as they are; the recorded quarterly (``BTC/USDT:USDT-231229``,
    recorded without its raw object) is re-issued for the current and next quarter, built on the raw
    object of the same pair's perpetual. The recorded option needs eapi, which is not served."""
    recorded: dict[str, dict[str, Any]] = load_json("markets", VENUE)
    instruments = []
    for symbol, market in recorded.items():
        if market["type"] in ("spot", "swap") and market.get("info"):
            instruments.append(_instrument(symbol, market, market["info"]))
    for symbol, market in recorded.items():
        if market["type"] != "future":
            continue
        perpetual = recorded[symbol.split("-")[0]]
        for contract_type, day in zip(
            ("CURRENT_QUARTER", "NEXT_QUARTER"), quarterly_expiries(today), strict=True
        ):
            info = copy.deepcopy(perpetual["info"])
            suffix = day.strftime("%y%m%d")
            info.update(
                symbol=f"{info['pair']}_{suffix}",
                contractType=contract_type,
                deliveryDate=str(expiry_ms(day)),
                onboardDate=str(expiry_ms(day - dt.timedelta(days=180))),
            )
            dated = dict(market, type="future", contractSize=perpetual.get("contractSize"))
            instruments.append(_instrument(f"{symbol.rsplit('-', 1)[0]}-{suffix}", dated, info))
    return instruments


RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def exchange_info(section: Section, instruments: list[Instrument], now_ms: int) -> dict[str, Any]:
    """The section's ``exchangeInfo`` document (top-level keys as the real one)."""
    document: dict[str, Any] = {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
    }
    if section is USDM:
        document["futuresType"] = "U_MARGINED"
        document["assets"] = [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "0"}
            for a in sorted({i.settle for i in instruments if i.settle})
        ]
    document["symbols"] = [i.raw for i in instruments]
    return document
