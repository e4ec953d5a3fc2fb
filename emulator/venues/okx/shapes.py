"""OKX JSON shapes of engine objects (shared by REST and WebSocket): tickers, book rows, trades, candles,
orders, fills, balances, funding, option greeks."""

from __future__ import annotations

import hashlib
import math
import zlib
from decimal import Decimal
from typing import Any

from emulator.catalogue import Instrument
from emulator.market import OPTION_VOLATILITY, Candle, Market, Trade, bucket_start
from emulator.orders import Fill, Order, Status
from emulator.venues.okx.instruments import KIND_TO_INST_TYPE
from emulator.venues.okx.protocol import num, on_step

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# OKX bar names -> bucket length. Bars of 6 h and more exist as "<bar>utc" (UTC-aligned, CCXT's default) and
# "<bar>" (aligned to UTC+8); both are served UTC-aligned. Months aggregate calendar months of daily candles.
BARS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1H": HOUR_MS,
    "2H": 2 * HOUR_MS,
    "4H": 4 * HOUR_MS,
}
for _bar, _ms in {
    "6H": 6 * HOUR_MS,
    "12H": 12 * HOUR_MS,
    "1D": DAY_MS,
    "2D": 2 * DAY_MS,
    "3D": 3 * DAY_MS,
    "1W": 7 * DAY_MS,
}.items():
    BARS[_bar] = BARS[_bar + "utc"] = _ms
MONTH_BARS = {"1M": 1, "1Mutc": 1, "3M": 3, "3Mutc": 3}


def inst_type(instrument: Instrument) -> str:
    return KIND_TO_INST_TYPE[instrument.kind]


def px(instrument: Instrument, value: Decimal) -> str:
    return on_step(value, instrument.price_tick)


def sz(instrument: Instrument, value: Decimal) -> str:
    return on_step(value, instrument.amount_step)


def order_count(price: Decimal, qty: Decimal) -> str:
    """A stable, plausible number of orders behind one book level (OKX's fourth column)."""
    digest = hashlib.blake2b(f"{price}:{qty}".encode(), digest_size=2).digest()
    return str(1 + digest[0] % 12)


def book_rows(instrument: Instrument, levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[px(instrument, p), sz(instrument, q), "0", order_count(p, q) if q else "0"] for p, q in levels]


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's book checksum: CRC32 of the first 25 bids and asks interleaved as ``bidPx:bidSz:askPx:askSz``,
    as a signed 32-bit integer."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def contract_volume_ccy(instrument: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """Contracts -> base currency (OKX's ``volCcy`` of derivatives)."""
    if instrument.linear is False and instrument.kind != "option":
        return qty * instrument.contract_size / price if price else Decimal(0)
    return qty * instrument.contract_size


def ticker(instrument: Instrument, market: Market, now: int) -> dict[str, Any]:
    stats = market.ticker(now)
    bid = market.book.best("buy") or (stats.last, Decimal(0))
    ask = market.book.best("sell") or (stats.last, Decimal(0))
    if instrument.kind == "spot":
        vol, vol_ccy = stats.volume, stats.quote_volume
    else:
        vol, vol_ccy = stats.volume, contract_volume_ccy(instrument, stats.volume, stats.vwap)
    day_utc0 = bucket_start(now, DAY_MS)
    day_utc8 = day_utc0 - 8 * HOUR_MS if now - day_utc0 < 16 * HOUR_MS else day_utc0 + 16 * HOUR_MS
    return {
        "instType": inst_type(instrument),
        "instId": instrument.id,
        "last": px(instrument, stats.last),
        "lastSz": sz(instrument, stats.last_qty),
        "askPx": px(instrument, ask[0]),
        "askSz": sz(instrument, ask[1]),
        "bidPx": px(instrument, bid[0]),
        "bidSz": sz(instrument, bid[1]),
        "open24h": px(instrument, stats.open),
        "high24h": px(instrument, stats.high),
        "low24h": px(instrument, stats.low),
        "volCcy24h": num(vol_ccy.quantize(Decimal("0.00000001"))),
        "vol24h": sz(instrument, vol),
        "ts": str(now),
        "sodUtc0": px(instrument, _open_at(market, day_utc0, now, stats.open)),
        "sodUtc8": px(instrument, _open_at(market, day_utc8, now, stats.open)),
    }


def _open_at(market: Market, ts: int, now: int, fallback: Decimal) -> Decimal:
    candles = market.candles(MINUTE_MS, now, start_ms=ts, end_ms=ts, limit=1)
    return candles[0].open if candles else fallback


def trade(instrument: Instrument, t: Trade) -> dict[str, Any]:
    return {
        "instId": instrument.id,
        "side": t.taker_side,
        "sz": sz(instrument, t.qty),
        "px": px(instrument, t.price),
        "source": "0",
        "tradeId": str(t.id),
        "ts": str(t.ts_ms),
    }


def candle_row(instrument: Instrument, c: Candle, confirmed: bool) -> list[str]:
    """``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``: spot volumes in base and quote; derivatives
    in contracts, base currency and quote currency."""
    if instrument.kind == "spot":
        vol, vol_ccy, vol_quote = c.volume, c.quote_volume, c.quote_volume
    else:
        vol = c.volume
        vol_ccy = contract_volume_ccy(instrument, c.volume, c.close)
        vol_quote = vol_ccy * c.close
    eight = Decimal("0.00000001")
    return [
        str(c.open_ms),
        px(instrument, c.open),
        px(instrument, c.high),
        px(instrument, c.low),
        px(instrument, c.close),
        sz(instrument, vol),
        num(vol_ccy.quantize(eight)),
        num(vol_quote.quantize(eight)),
        "1" if confirmed else "0",
    ]


def month_candles(market: Market, months: int, now: int, limit: int) -> list[tuple[int, Candle]]:
    """Calendar-month (or quarter) candles merged from daily ones, oldest first."""
    import datetime as dt

    def month_start(ms: int) -> int:
        day = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        month = (day.month - 1) // months * months + 1
        return int(dt.datetime(day.year, month, 1, tzinfo=dt.UTC).timestamp() * 1000)

    merged: dict[int, Candle] = {}
    for c in market.candles(DAY_MS, now, limit=1500):
        key = month_start(c.open_ms)
        merged[key] = (
            merged[key].merged(c)
            if key in merged
            else Candle(key, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades)
        )
    return sorted(merged.items())[-limit:]


# --- orders -------------------------------------------------------------------------------------------------

STATES = {
    Status.NEW: "live",
    Status.PARTIALLY_FILLED: "partially_filled",
    Status.FILLED: "filled",
    Status.CANCELED: "canceled",
    Status.EXPIRED: "canceled",
}


def order_state(order: Order) -> str:
    return STATES[order.status]


def order(order: Order, instrument: Instrument) -> dict[str, Any]:
    """``GET /api/v5/trade/order`` item (also orders-pending, orders-history and the ``orders`` channel)."""
    extra = order.extra
    last = order.fills[-1] if order.fills else None
    fee = sum((f.fee for f in order.fills), Decimal(0))
    fee_ccy = last.fee_asset if last else (instrument.base if order.side == "buy" else instrument.quote)
    if instrument.kind != "spot":
        fee_ccy = instrument.settle or fee_ccy
    return {
        "accFillSz": sz(instrument, order.filled),
        "algoClOrdId": "",
        "algoId": "",
        "attachAlgoClOrdId": "",
        "attachAlgoOrds": [],
        "avgPx": px(instrument, order.average) if order.filled else "",
        "cTime": str(order.created_ms),
        "cancelSource": "1" if order.status == Status.CANCELED else "",
        "cancelSourceReason": "Order canceled by user" if order.status == Status.CANCELED else "",
        "category": "normal",
        "ccy": "",
        "clOrdId": extra.get("clOrdId", ""),
        "fee": num(-fee) if fee else "0",
        "feeCcy": fee_ccy,
        "fillPx": px(instrument, last.price) if last else "",
        "fillSz": sz(instrument, last.qty) if last else "0",
        "fillTime": str(last.ts_ms) if last else "",
        "instId": instrument.id,
        "instType": inst_type(instrument),
        "isTpLimit": "false",
        "lever": "" if instrument.kind == "spot" else extra.get("lever", "1"),
        "linkedAlgoOrd": {"algoId": ""},
        "ordId": str(order.id),
        "ordType": extra.get("ordType", order.type),
        "pnl": num(order.realised_pnl),
        "posSide": extra.get("posSide") or "net",
        "px": px(instrument, order.price) if order.price is not None else "",
        "pxType": "",
        "pxUsd": "",
        "pxVol": "",
        "quickMgnType": "",
        "rebate": "0",
        "rebateCcy": instrument.quote if instrument.kind == "spot" else (instrument.settle or ""),
        "reduceOnly": "true" if extra.get("reduceOnly") else "false",
        "side": order.side,
        "slOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "source": "",
        "state": order_state(order),
        "stpId": "",
        "stpMode": extra.get("stpMode", "cancel_maker"),
        "sz": extra.get("sz") or sz(instrument, order.amount or Decimal(0)),
        "tag": extra.get("tag", ""),
        "tdMode": extra.get("tdMode", "cash"),
        "tgtCcy": extra.get("tgtCcy", ""),
        "tpOrdPx": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tradeId": str(last.trade_id) if last else "",
        "uTime": str(order.updated_ms),
    }


def fill(fill: Fill, bill_id: int, order: Order | None, instrument: Instrument) -> dict[str, Any]:
    rate = instrument.maker if fill.maker else instrument.taker
    return {
        "side": fill.side,
        "fillSz": sz(instrument, fill.qty),
        "fillPx": px(instrument, fill.price),
        "fillPxVol": "",
        "fillFwdPx": "",
        "fee": num(-fill.fee),
        "fillPnl": num(fill.realised_pnl),
        "ordId": str(fill.order_id),
        "feeRate": num(-rate),
        "instType": inst_type(instrument),
        "fillPxUsd": "",
        "instId": instrument.id,
        "clOrdId": order.extra.get("clOrdId", "") if order else "",
        "posSide": (order.extra.get("posSide") or "net") if order else "net",
        "billId": str(bill_id),
        "subType": ("1" if fill.side == "buy" else "2") if instrument.kind == "spot" else "",
        "fillMarkVol": "",
        "tag": order.extra.get("tag", "") if order else "",
        "fillTime": str(fill.ts_ms),
        "execType": "M" if fill.maker else "T",
        "fillIdxPx": "",
        "tradeId": str(fill.trade_id),
        "fillMarkPx": "",
        "feeCcy": fill.fee_asset,
        "ts": str(fill.ts_ms),
    }


def bill_id(index: int) -> int:
    """Fills are numbered per key in the order they happened (OKX's billId grows with time)."""
    return 600_000_000_000_000_000 + index


# --- balances -----------------------------------------------------------------------------------------------

DETAIL_BLANKS = (
    "accAvgPx",
    "clSpotInUseAmt",
    "imr",
    "maxSpotInUse",
    "mgnRatio",
    "mmr",
    "notionalLever",
    "openAvgPx",
    "rewardBal",
    "spotBal",
    "spotInUseAmt",
    "spotUpl",
    "spotUplRatio",
    "totalPnl",
    "totalPnlRatio",
)
DETAIL_ZEROS = (
    "borrowFroz",
    "colBorrAutoConversion",
    "crossLiab",
    "fixedBal",
    "interest",
    "isoEq",
    "isoLiab",
    "isoUpl",
    "liab",
    "maxLoan",
    "smtSyncEq",
    "spotCopyTradingEq",
    "spotIsoBal",
    "stgyEq",
    "twap",
    "upl",
    "uplLiab",
)


# Per-currency derivatives figures of ``account/balance`` (``notional`` only feeds the account totals).
DERIVATIVE_FIGURES = ("upl", "imr", "mmr", "isoEq", "isoUpl", "ordFrozen", "notional")


def balance_detail(
    ccy: str,
    free: Decimal,
    locked: Decimal,
    usd_price: Decimal,
    now: int,
    figures: dict[str, Decimal] | None = None,
) -> dict[str, Any]:
    """One ``details`` item. ``figures`` (derivatives, see :data:`DERIVATIVE_FIGURES`): without them all the
    locked balance is frozen by orders (spot)."""
    total = free + locked
    eight = Decimal("0.00000001")
    upl = figures["upl"] if figures else Decimal(0)
    equity = total + upl
    detail: dict[str, Any] = {name: "" for name in DETAIL_BLANKS}
    detail.update({name: "0" for name in DETAIL_ZEROS})
    detail.update(
        availBal=num(free),
        availEq=num(free),
        cashBal=num(total),
        ccy=ccy,
        collateralEnabled=True,
        collateralRestrict=False,
        disEq=num((equity * usd_price).quantize(eight)),
        eq=num(equity),
        eqUsd=num((equity * usd_price).quantize(eight)),
        frozenBal=num(locked),
        ordFrozen=num(figures["ordFrozen"]) if figures else num(locked),
        uTime=str(now),
    )
    if figures:
        detail.update(
            upl=num(upl.quantize(eight)),
            imr=num(figures["imr"].quantize(eight)),
            mmr=num(figures["mmr"].quantize(eight)),
            isoEq=num(figures["isoEq"].quantize(eight)),
            isoUpl=num(figures["isoUpl"].quantize(eight)),
            mgnRatio=num((equity / figures["mmr"]).quantize(eight)) if figures["mmr"] else "",
            notionalLever=num((figures["notional"] / equity).quantize(eight)) if equity else "",
        )
    return dict(sorted(detail.items()))


# --- funding and options ------------------------------------------------------------------------------------


def funding_rate(instrument: Instrument, market: Market, now: int) -> dict[str, Any]:
    funding_time = market.next_funding_ms(now)
    rate = market.funding_rate()
    return {
        "formulaType": "withRate",
        "fundingRate": num(rate),
        "fundingTime": str(funding_time),
        "impactValue": "",
        "instId": instrument.id,
        "instType": "SWAP",
        "interestRate": "0.0001",
        "maxFundingRate": "0.0075",
        "method": "current_period",
        "minFundingRate": "-0.0075",
        "nextFundingRate": "",
        "nextFundingTime": str(funding_time + 8 * HOUR_MS),
        "premium": num(Decimal(repr(round(market.premium, 8)))),
        "settFundingRate": num(market.funding_history(now, 1)[-1][1]),
        "settState": "settled",
        "ts": str(now),
    }


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def greeks(instrument: Instrument, market: Market, now: int) -> dict[str, Any]:
    """``public/opt-summary`` item: Black-Scholes greeks at the same flat volatility the engine prices with
    (``*BS`` in USD terms, the plain ones in coin terms as OKX quotes them)."""
    spot = float(market.index_price)
    strike = float(instrument.strike or 1)
    years = max(HOUR_MS, (instrument.expiry_ms or now) - now) / (365 * DAY_MS)
    vol = OPTION_VOLATILITY
    spread = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + spread * spread / 2) / spread
    pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
    call = instrument.option_type != "P"
    delta_bs = _cdf(d1) if call else _cdf(d1) - 1
    gamma_bs = pdf / (spot * spread)
    vega_bs = spot * pdf * math.sqrt(years) / 100
    theta_bs = -spot * pdf * vol / (2 * math.sqrt(years)) / 365
    premium_coin = float(market.mid)
    coin = lambda x: f"{x:.8f}"  # noqa: E731
    return {
        "askVol": coin(vol + 0.01),
        "bidVol": coin(vol - 0.01),
        "delta": coin(delta_bs - premium_coin),
        "deltaBS": coin(delta_bs),
        "fwdPx": px(instrument, market.index_price),
        "gamma": coin(gamma_bs * spot),
        "gammaBS": coin(gamma_bs),
        "instId": instrument.id,
        "instType": "OPTION",
        "lever": coin(spot / max(premium_coin * spot, 1e-9) if premium_coin else 0.0),
        "markVol": coin(vol),
        "realVol": coin(vol),
        "theta": coin(theta_bs / spot),
        "thetaBS": coin(theta_bs),
        "ts": str(now),
        "uly": instrument.raw.get("uly", ""),
        "vega": coin(vega_bs / spot),
        "vegaBS": coin(vega_bs),
        "volLv": coin(vol),
    }
