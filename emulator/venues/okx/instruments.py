"""OKX instruments (``GET /api/v5/public/instruments``) from the recorded markets.

Spot and perpetual swaps are served as recorded. Dated instruments are re-issued relative to today:

* FUTURES: none are recorded, so each family (BTC-USDT, ETH-USDT linear; BTC-USD, ETH-USD inverse) gets the
  OKX ladder ``this_week``, ``next_week``, ``quarter``, ``next_quarter`` (Fridays 08:00 UTC), built on the raw
  object of the family's perpetual (ETH-USD, not recorded, on BTC-USD's with ETH's contract value and tick).
* OPTION: the recorded ``BTC-USD-241227-60000-P`` is the template of a strike ladder (5 strikes around the
  reference level, calls and puts) for the next two weekly and the next quarterly expiry, for the
  underlyings CCXT loads by default (``BTC-USD``, ``ETH-USD``).
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

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

VENUE = "okx"
INST_TYPES: dict[str, Kind] = {"SPOT": "spot", "SWAP": "swap", "FUTURES": "future", "OPTION": "option"}
KIND_TO_INST_TYPE = {kind: inst_type for inst_type, kind in INST_TYPES.items()}
OPTION_UNDERLYINGS = ("BTC-USD", "ETH-USD")
FUTURE_FAMILIES = ("BTC-USDT", "ETH-USDT", "BTC-USD", "ETH-USD")
# ETH-USD (coin-margined) is not recorded: OKX lists it with a 10 USD contract and a 0.01 tick.
ETH_USD_SWAP = {"ctVal": "10", "tickSz": "0.01"}


def instrument(info: dict[str, Any], market: dict[str, Any] | None = None) -> Instrument:
    """An :class:`Instrument` from one raw OKX instrument (``market``: CCXT's unified one, for fees)."""
    kind = INST_TYPES[info["instType"]]
    if kind == "spot":
        base, quote, settle = info["baseCcy"], info["quoteCcy"], None
    else:
        base, quote = info["uly"].split("-")[:2]
        settle = info["settleCcy"]
    expiry = int(info["expTime"]) if info.get("expTime") else None
    symbol = f"{base}/{quote}" + (f":{settle}" if settle else "")
    if kind == "future" and expiry:
        symbol += "-" + yymmdd(expiry)
    elif kind == "option" and expiry:
        symbol += f"-{yymmdd(expiry)}-{info['stk']}-{info['optType']}"
    fees = market or {}
    default_maker, default_taker = ("0.0008", "0.001") if kind == "spot" else ("0.0002", "0.0005")
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        id=info["instId"],
        kind=kind,
        base=base,
        quote=quote,
        settle=settle,
        price_tick=decimal_or(info["tickSz"]).normalize(),
        amount_step=decimal_or(info["lotSz"]).normalize(),
        min_amount=decimal_or(info["minSz"]),
        max_amount=decimal_or(info.get("maxLmtSz"), "1000000000"),
        maker=Decimal(str(fees.get("maker", default_maker))),
        taker=Decimal(str(fees.get("taker", default_taker))),
        linear=None if kind == "spot" else settle == quote,
        contract_size=decimal_or(info.get("ctVal"), "1"),
        expiry_ms=expiry,
        strike=decimal_or(info["stk"]) if kind == "option" else None,
        option_type=info.get("optType") or None if kind == "option" else None,  # type: ignore[arg-type]
        raw=info,
    )


def yymmdd(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%y%m%d")


def load_instruments(today: dt.date) -> list[Instrument]:
    recorded: dict[str, dict[str, Any]] = load_json("markets", VENUE)
    result: list[Instrument] = []
    swaps: dict[str, dict[str, Any]] = {}
    option_template: dict[str, Any] | None = None
    for market in recorded.values():
        info = market.get("info") or {}
        if info.get("instType") in ("SPOT", "SWAP"):
            result.append(instrument(info, market))
            if info["instType"] == "SWAP":
                swaps[info["instFamily"]] = market
        elif info.get("instType") == "OPTION" and option_template is None:
            option_template = market
    for family in FUTURE_FAMILIES:
        result += _futures(family, swaps, today)
    if option_template is not None:
        for underlying in OPTION_UNDERLYINGS:
            result += _options(underlying, option_template, today)
    return result


def _swap_template(family: str, swaps: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if family in swaps:
        return swaps[family]
    if family == "ETH-USD" and "BTC-USD" in swaps:
        market = copy.deepcopy(swaps["BTC-USD"])
        market["info"].update(
            ETH_USD_SWAP, instFamily="ETH-USD", uly="ETH-USD", instId="ETH-USD-SWAP", settleCcy="ETH"
        )
        return market
    return None


def _futures(family: str, swaps: dict[str, dict[str, Any]], today: dt.date) -> list[Instrument]:
    template = _swap_template(family, swaps)
    if template is None:
        return []
    weeks = weekly_expiries(today, 2)
    dated: dict[dt.date, str] = {}
    for alias, day in (
        ("this_week", weeks[0]),
        ("next_week", weeks[1]),
        *zip(("quarter", "next_quarter"), quarterly_expiries(today, 2), strict=True),
    ):
        dated.setdefault(day, alias)  # a quarterly Friday that is also next week keeps the weekly alias
    result = []
    for day, alias in dated.items():
        info = copy.deepcopy(template["info"])
        expiry = expiry_ms(day)
        info.update(
            alias=alias,
            instId=f"{family}-{day.strftime('%y%m%d')}",
            instType="FUTURES",
            expTime=str(expiry),
            listTime=str(expiry_ms(day - dt.timedelta(days=91 if "quarter" in alias else 14))),
            lever="100" if info.get("lever") in (None, "") else info["lever"],
        )
        result.append(instrument(info, template))
    return result


def _options(underlying: str, template: dict[str, Any], today: dt.date) -> list[Instrument]:
    base = underlying.split("-")[0]
    expiries = sorted({*weekly_expiries(today, 2), *quarterly_expiries(today, 1)})
    result = []
    for day in expiries:
        expiry = expiry_ms(day)
        for strike in strike_ladder(reference_level(base)):
            for option_type in ("C", "P"):
                info = copy.deepcopy(template["info"])
                stk = format(strike, "f")
                info.update(
                    instId=f"{underlying}-{day.strftime('%y%m%d')}-{stk}-{option_type}",
                    uly=underlying,
                    instFamily=underlying,
                    settleCcy=base,
                    ctValCcy=base,
                    expTime=str(expiry),
                    listTime=str(expiry_ms(day - dt.timedelta(days=30))),
                    stk=stk,
                    optType=option_type,
                )
                result.append(instrument(info, template))
    return result


def instruments_payload(instruments: list[Instrument]) -> list[dict[str, Any]]:
    return [i.raw for i in instruments]
