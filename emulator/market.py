"""Venue-neutral market data: price walks, order books, public trades, candles, 24 h statistics, funding.

Prices live on each instrument's tick grid as ``Decimal``; only the random walk itself is a float (it is a
stochastic process, not money). Everything is deterministic for a given seed: each walk, book and candle
history draws from its own ``random.Random`` seeded from (seed, venue, name).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from emulator.catalogue import Instrument

Side = Literal["buy", "sell"]

MINUTE_MS = 60_000
HISTORY_CANDLES = 1500  # Binance serves at most 1000 klines per call; keep a margin for startTime queries.
BOOK_LEVELS = 100  # per side
TRADE_MEMORY = 2000
DIFF_MEMORY = 4096
FUNDING_PERIOD_MS = 8 * 3600_000


OPTION_VOLATILITY = 0.6  # annualised, for every option premium


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def rng_for(seed: int, *parts: object) -> random.Random:
    """A ``random.Random`` whose stream depends only on the seed and the given names (stable across runs)."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - simulation, not crypto


def snap(value: Decimal, step: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    """Round ``value`` to a multiple of ``step``."""
    return (value / step).to_integral_value(rounding=rounding) * step


class PriceWalk:
    """Mean-reverting random walk of the log price around a reference level (one per venue and base asset).

    ``step()`` is called once per tick (every 100-250 ms); sigma is per tick, so a day of ticks moves the
    price by a few percent, like a liquid crypto pair.
    """

    def __init__(
        self, level: Decimal, rng: random.Random, sigma: float = 5e-5, reversion: float = 2e-5
    ) -> None:
        self.level = float(level)
        self.value = float(level)
        self.rng = rng
        self.sigma = sigma
        self.reversion = reversion
        self.held = False

    def step(self) -> float:
        if not self.held:
            pull = -self.reversion * math.log(self.value / self.level)
            self.value *= math.exp(pull + self.rng.gauss(0.0, self.sigma))
        return self.value

    def next_interval_ms(self) -> int:
        return self.rng.randint(100, 250)


@dataclass
class BookDiff:
    """One book change: update ids ``first..last`` and the new quantity of each touched level (0 = gone)."""

    first: int
    last: int
    ts_ms: int
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]


class OrderBook:
    """A synthetic L2 book. Every change bumps ``update_id`` and is kept in a bounded diff history, so a REST
    snapshot (``update_id`` plus levels) and a diff stream (first/last ids) always line up."""

    def __init__(self, first_update_id: int) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.update_id = first_update_id
        self.ts_ms = 0
        self.diffs: deque[BookDiff] = deque(maxlen=DIFF_MEMORY)

    def apply(self, bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], ts_ms: int) -> None:
        if not bids and not asks:
            return
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for price, qty in changes.items():
                if qty > 0:
                    side[price] = qty
                else:
                    side.pop(price, None)
        first = self.update_id + 1
        # Venues advance the id by more than one per event; one per touched level is a faithful stand-in.
        self.update_id += len(bids) + len(asks)
        self.ts_ms = ts_ms
        self.diffs.append(BookDiff(first, self.update_id, ts_ms, bids, asks))

    def levels(self, side: Side, limit: int | None = None) -> list[tuple[Decimal, Decimal]]:
        book = self.bids if side == "buy" else self.asks
        prices = sorted(book, reverse=side == "buy")[:limit]
        return [(p, book[p]) for p in prices]

    def best(self, side: Side) -> tuple[Decimal, Decimal] | None:
        book = self.bids if side == "buy" else self.asks
        if not book:
            return None
        price = max(book) if side == "buy" else min(book)
        return price, book[price]

    def diffs_after(self, update_id: int) -> list[BookDiff] | None:
        """Diffs with ids above ``update_id``; ``None`` if the history no longer reaches back that far."""
        if update_id >= self.update_id:
            return []
        if not self.diffs or self.diffs[0].first > update_id + 1:
            return None
        return [d for d in self.diffs if d.last > update_id]


@dataclass
class Trade:
    """A public trade (also the id space of the account fills on that market)."""

    id: int
    price: Decimal
    qty: Decimal
    ts_ms: int
    taker_side: Side


@dataclass
class Candle:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    trades: int = 0
    taker_buy_volume: Decimal = Decimal(0)
    taker_buy_quote: Decimal = Decimal(0)
    first_trade_id: int = -1
    last_trade_id: int = -1

    def add(self, trade: Trade) -> None:
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        self.volume += trade.qty
        self.quote_volume += trade.qty * trade.price
        self.trades += 1
        if trade.taker_side == "buy":
            self.taker_buy_volume += trade.qty
            self.taker_buy_quote += trade.qty * trade.price
        if self.first_trade_id < 0:
            self.first_trade_id = trade.id
        self.last_trade_id = trade.id

    def merged(self, later: Candle) -> Candle:
        """This candle followed by ``later`` (same bucket of a larger timeframe)."""
        return Candle(
            self.open_ms,
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            self.volume + later.volume,
            self.quote_volume + later.quote_volume,
            self.trades + later.trades,
            self.taker_buy_volume + later.taker_buy_volume,
            self.taker_buy_quote + later.taker_buy_quote,
            self.first_trade_id if self.first_trade_id >= 0 else later.first_trade_id,
            later.last_trade_id if later.last_trade_id >= 0 else self.last_trade_id,
        )


def bucket_start(ts_ms: int, tf_ms: int) -> int:
    if tf_ms == 7 * 86_400_000:
        # Weekly candles open on Monday 00:00 UTC; the epoch was a Thursday.
        offset = 4 * 86_400_000
        return (ts_ms - offset) // tf_ms * tf_ms + offset
    return ts_ms // tf_ms * tf_ms


@dataclass
class TickerStats:
    """Rolling 24 h statistics as every venue's ticker reports them."""

    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    last_qty: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_ms: int
    close_ms: int
    first_trade_id: int
    last_trade_id: int
    count: int

    @property
    def change(self) -> Decimal:
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        return (self.change / self.open * 100).quantize(Decimal("0.001")) if self.open else Decimal(0)

    @property
    def vwap(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume else self.last


@dataclass
class Market:
    """Live state of one instrument (book, trades, candles, derived prices), driven by walk ticks."""

    instrument: Instrument
    walk: PriceWalk
    seed: int
    started_ms: int
    book: OrderBook = field(init=False)
    trades: deque[Trade] = field(init=False)
    live_1m: dict[int, Candle] = field(init=False)
    premium: float = 0.0
    held: bool = False

    def __post_init__(self) -> None:
        self.rng = rng_for(self.seed, self.instrument.venue, self.instrument.symbol, "book")
        self.book = OrderBook(first_update_id=self.rng.randint(10**9, 2 * 10**9))
        self.trades = deque(maxlen=TRADE_MEMORY)
        self.next_trade_id = self.rng.randint(10**8, 2 * 10**8)
        self.live_1m = {}
        self._history: dict[int, list[Candle]] = {}
        self._history_index_cache: dict[int, dict[int, Candle]] = {}
        self._ticker_cache: tuple[int, Candle] | None = None
        self.initial_price = self.price_from_index(self.walk.value)
        self.last_trade: Trade | None = None
        self.mid = self.initial_price
        self.regenerate_book(self.started_ms)
        self._seed_trades()

    # --- prices --------------------------------------------------------------------------------------------

    @property
    def tick(self) -> Decimal:
        return self.instrument.price_tick

    def price_from_index(self, index: float) -> Decimal:
        if self.instrument.kind == "option":
            return max(self.tick, snap(Decimal(repr(self.option_premium(index))), self.tick))
        factor = 1.0 + self.basis()
        return max(self.tick, snap(Decimal(repr(index * factor)), self.tick))

    def option_premium(self, index: float) -> float:
        """Black-Scholes premium (zero rates, flat ``OPTION_VOLATILITY``) of an option on the walk, in quote
        units; inverse options (premium in the base asset) divide by the index. Time to expiry is measured
        from start-up, so premiums do not decay within a session."""
        instrument = self.instrument
        strike = float(instrument.strike or 0)
        years = max(3600_000, (instrument.expiry_ms or 0) - self.started_ms) / (365 * 86_400_000)
        spread = OPTION_VOLATILITY * math.sqrt(years)
        d1 = (math.log(index / strike) + spread * spread / 2) / spread if strike > 0 else math.inf
        d2 = d1 - spread
        call = index * _normal_cdf(d1) - strike * _normal_cdf(d2)
        premium = call if instrument.option_type != "P" else call - index + strike  # put-call parity
        return max(0.0, premium) / (index if instrument.linear is False else 1.0)

    def basis(self) -> float:
        """Premium of this market over the walk: 0 for spot, small for perps, carry for dated futures."""
        if self.instrument.kind == "swap":
            return self.premium
        if self.instrument.kind == "future" and self.instrument.expiry_ms:
            years = max(0, self.instrument.expiry_ms - self.started_ms) / (365 * 86_400_000)
            return 0.05 * years
        return 0.0

    @property
    def index_price(self) -> Decimal:
        return snap(Decimal(repr(self.walk.value)), self.tick)

    @property
    def mark_price(self) -> Decimal:
        return self.mid

    @property
    def last_price(self) -> Decimal:
        return self.last_trade.price if self.last_trade else self.mid

    # --- ticking ------------------------------------------------------------------------------------------

    def on_tick(self, now_ms: int) -> None:
        """Move to the walk's new value: reshape the book around the new mid and print some public trades."""
        if self.instrument.kind == "swap":
            self.premium = min(0.002, max(-0.002, self.premium * 0.98 + self.rng.gauss(0.0, 2e-5)))
        self.mid = self.price_from_index(self.walk.value)
        self.regenerate_book(now_ms)
        for _ in range(self.rng.choice((0, 1, 1, 2, 3))):
            side: Side = self.rng.choice(("buy", "sell"))
            best = self.book.best("sell" if side == "buy" else "buy")
            if best is None:
                continue
            qty = snap(best[1] * Decimal(repr(self.rng.uniform(0.01, 0.3))), self.instrument.amount_step)
            if qty > 0:
                self.record_trade(best[0], qty, side, now_ms)

    def _seed_trades(self, count: int = 20) -> None:
        """A minute of trades before start-up, so trade lists are never empty on a fresh venue."""
        for i in range(count):
            side: Side = self.rng.choice(("buy", "sell"))
            best = self.book.best("sell" if side == "buy" else "buy")
            if best is None:  # one-sided book (an option worth one tick): buyers lift the asks
                side, best = "buy", self.book.best("sell")
            assert best is not None
            qty = max(
                self.instrument.amount_step,
                snap(best[1] * Decimal(repr(self.rng.uniform(0.01, 0.3))), self.instrument.amount_step),
            )
            self.record_trade(best[0], qty, side, self.started_ms - 60_000 + i * 3000)

    def level_step(self) -> Decimal:
        ticks = max(1, round(float(self.mid) * 2e-5 / float(self.tick)))
        return self.tick * ticks

    def level_qty(self, depth: int) -> Decimal:
        notional = 20_000 * (1 + depth / 10) * self.rng.uniform(0.2, 1.8)
        # An inverse contract is worth contract_size quote units; anything else contract_size base units.
        unit_value = float(self.instrument.contract_size)
        if self.instrument.linear is not False:
            unit_value *= float(self.mid)
        qty = Decimal(repr(notional / unit_value))
        return max(self.instrument.amount_step, snap(qty, self.instrument.amount_step))

    def regenerate_book(self, now_ms: int) -> None:
        """Re-centre the book on ``self.mid``: keep quantities of surviving levels, add/remove the edges,
        refresh a couple of random levels. Only the differences become a book diff."""
        step = self.level_step()
        best_bid = snap(self.mid - self.tick, step)
        targets = {
            "buy": [best_bid - step * i for i in range(BOOK_LEVELS)],
            "sell": [best_bid + step * (i + 1) for i in range(BOOK_LEVELS)],
        }
        changes: dict[str, dict[Decimal, Decimal]] = {"buy": {}, "sell": {}}
        for side, current in (("buy", self.book.bids), ("sell", self.book.asks)):
            wanted = [p for p in targets[side] if p > 0]
            wanted_set = set(wanted)
            for price in current:
                if price not in wanted_set:
                    changes[side][price] = Decimal(0)
            for depth, price in enumerate(wanted):
                if price not in current:
                    changes[side][price] = self.level_qty(depth)
            for _ in range(2 if wanted else 0):  # a side can be empty (an option worth one tick has no bids)
                depth = self.rng.randrange(len(wanted))
                changes[side][wanted[depth]] = self.level_qty(depth)
        self.book.apply(changes["buy"], changes["sell"], now_ms)

    def record_trade(self, price: Decimal, qty: Decimal, taker_side: Side, now_ms: int) -> Trade:
        trade = Trade(self.next_trade_id, price, qty, now_ms, taker_side)
        self.next_trade_id += 1
        self.trades.append(trade)
        self.last_trade = trade
        minute = bucket_start(now_ms, MINUTE_MS)
        candle = self.live_1m.get(minute)
        if candle is None:
            candle = self.live_1m[minute] = Candle(minute, price, price, price, price)
        candle.add(trade)
        return trade

    def take(
        self,
        side: Side,
        now_ms: int,
        qty: Decimal | None = None,
        quote: Decimal | None = None,
        limit_price: Decimal | None = None,
    ) -> list[tuple[Decimal, Decimal]]:
        """Consume liquidity from the opposite side of the book as a taker; returns the (price, qty) fills.

        Stops at ``qty`` base units, ``quote`` quote units, or a level beyond ``limit_price``.
        The consumed levels shrink (a book diff), and each fill prints a public trade.
        """
        fills: list[tuple[Decimal, Decimal]] = []
        remaining_qty, remaining_quote = qty, quote
        changes: dict[Decimal, Decimal] = {}
        for price, available in self.book.levels("sell" if side == "buy" else "buy"):
            if limit_price is not None and (price > limit_price if side == "buy" else price < limit_price):
                break
            if remaining_qty is not None:
                fill = min(available, remaining_qty)
            else:
                assert remaining_quote is not None
                fill = min(available, snap(remaining_quote / price, self.instrument.amount_step))
            if fill <= 0:
                break
            fills.append((price, fill))
            changes[price] = available - fill
            if remaining_qty is not None:
                remaining_qty -= fill
                if remaining_qty <= 0:
                    break
            else:
                assert remaining_quote is not None
                remaining_quote -= fill * price
        if changes:
            bids, asks = ({}, changes) if side == "buy" else (changes, {})
            self.book.apply(bids, asks, now_ms)
        return fills

    def estimate_cost(self, side: Side, qty: Decimal) -> Decimal | None:
        """Quote needed to take ``qty`` now (``None`` if the book is too thin)."""
        total, remaining = Decimal(0), qty
        for price, available in self.book.levels("sell" if side == "buy" else "buy"):
            fill = min(available, remaining)
            total += fill * price
            remaining -= fill
            if remaining <= 0:
                return total
        return None

    # --- trades and candles -------------------------------------------------------------------------------

    def trades_after(self, trade_id: int) -> list[Trade]:
        return [t for t in self.trades if t.id > trade_id]

    def history(self, tf_ms: int) -> list[Candle]:
        """Synthetic candles before start-up, oldest first; the last one is the bucket containing the start
        and closes at the initial price. Each timeframe is drawn independently (deterministic per seed)."""
        cached = self._history.get(tf_ms)
        if cached is not None:
            return cached
        rng = rng_for(self.seed, self.instrument.venue, self.instrument.symbol, "history", tf_ms)
        sigma = 0.033 * math.sqrt(tf_ms / 86_400_000)  # ~3 % a day
        level = math.log(float(self.initial_price))
        close = level
        candles: list[Candle] = []
        open_ms = bucket_start(self.started_ms, tf_ms)
        minutes = tf_ms / MINUTE_MS
        for _ in range(HISTORY_CANDLES):
            open_ = close + rng.gauss(0.0, sigma) - 0.02 * (close - level)
            o, c = math.exp(open_), math.exp(close)
            hi = max(o, c) * (1 + abs(rng.gauss(0.0, sigma / 2)))
            lo = min(o, c) * (1 - abs(rng.gauss(0.0, sigma / 2)))
            volume = 50_000 * minutes * rng.uniform(0.5, 1.5) / c
            o_, h_, l_, c_ = (max(self.tick, snap(Decimal(repr(x)), self.tick)) for x in (o, hi, lo, c))
            candle = Candle(open_ms, o_, h_, l_, c_)
            candle.volume = snap(Decimal(repr(volume)), self.instrument.amount_step)
            candle.quote_volume = (candle.volume * candle.close).quantize(Decimal("0.00000001"))
            candle.trades = max(1, int(minutes * rng.uniform(20, 80)))
            candle.taker_buy_volume = snap(
                candle.volume * Decimal(repr(rng.uniform(0.3, 0.7))), self.instrument.amount_step
            )
            candle.taker_buy_quote = (candle.taker_buy_volume * candle.close).quantize(Decimal("0.00000001"))
            candles.append(candle)
            close = open_
            open_ms = bucket_start(open_ms - 1, tf_ms)
        candles.reverse()
        self._history[tf_ms] = candles
        return candles

    def candles(
        self,
        tf_ms: int,
        now_ms: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles of one timeframe: synthetic history, then buckets built from live trades (one per bucket
        up to now; a bucket without trades is flat at the previous close). From ``start_ms`` forwards if
        given, else the latest ``limit`` up to ``end_ms``/now."""
        history = self.history(tf_ms)
        first, last = history[0].open_ms, bucket_start(now_ms, tf_ms)
        if end_ms is not None:
            last = min(last, bucket_start(end_ms, tf_ms))
        if start_ms is not None:
            lo = max(first, bucket_start(start_ms, tf_ms))
            hi = min(last, lo + (limit - 1) * tf_ms)
        else:
            hi = last
            lo = max(first, hi - (limit - 1) * tf_ms)
        if lo > hi:
            return []
        by_open = self._history_index(tf_ms)
        live_start = history[-1].open_ms
        result: list[Candle] = []
        previous = by_open.get(lo - tf_ms)
        bucket = lo
        while bucket <= hi:
            candle = by_open.get(bucket)
            if bucket >= live_start:
                for minute in range(
                    max(bucket, bucket_start(self.started_ms, MINUTE_MS)),
                    min(bucket + tf_ms, now_ms + 1),
                    MINUTE_MS,
                ):
                    piece = self.live_1m.get(minute)
                    if piece is not None:
                        candle = candle.merged(piece) if candle is not None else piece
            if candle is None:
                close = previous.close if previous is not None else self.initial_price
                candle = Candle(bucket, close, close, close, close)
            result.append(candle)
            previous = candle
            bucket += tf_ms
        return result

    def _history_index(self, tf_ms: int) -> dict[int, Candle]:
        index = self._history_index_cache.get(tf_ms)
        if index is None:
            index = self._history_index_cache[tf_ms] = {c.open_ms: c for c in self.history(tf_ms)}
        return index

    def ticker(self, now_ms: int) -> TickerStats:
        """Rolling 24 h window from 1-minute candles; the window aggregate is recomputed at most once a
        second (it spans 1440 candles), the last price always reflects the latest trade."""
        cached = self._ticker_cache
        if cached is None or now_ms - cached[0] >= 1000:
            window = self.candles(MINUTE_MS, now_ms, start_ms=now_ms - 86_400_000 + MINUTE_MS, limit=1440)
            total = window[0]
            for candle in window[1:]:
                total = total.merged(candle)
            cached = self._ticker_cache = (now_ms, total)
        total = cached[1]
        last = self.last_trade
        return TickerStats(
            open=total.open,
            high=max(total.high, self.last_price),
            low=min(total.low, self.last_price),
            last=self.last_price,
            last_qty=last.qty if last else Decimal(0),
            volume=total.volume,
            quote_volume=total.quote_volume,
            open_ms=now_ms - 86_400_000,
            close_ms=now_ms,
            first_trade_id=total.first_trade_id,
            last_trade_id=last.id if last else total.last_trade_id,
            count=total.trades,
        )

    # --- funding ------------------------------------------------------------------------------------------

    def funding_rate(self) -> Decimal:
        """Current (predicted) funding rate of a perpetual: the interest leg plus the premium, clamped."""
        rate = 0.0001 + max(-0.0074, min(0.0074, self.premium / 3))
        return Decimal(repr(rate)).quantize(Decimal("0.00000001"))

    def next_funding_ms(self, now_ms: int) -> int:
        return (now_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS

    def funding_history(self, now_ms: int, limit: int = 100) -> list[tuple[int, Decimal]]:
        """Settled funding (time, rate) pairs, oldest first; deterministic per seed and period."""
        last = now_ms // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS
        result = []
        for i in range(limit):
            ts = last - i * FUNDING_PERIOD_MS
            rate = 0.0001 + rng_for(self.seed, self.instrument.venue, self.instrument.symbol, ts).gauss(
                0, 5e-5
            )
            result.append((ts, Decimal(repr(rate)).quantize(Decimal("0.00000001"))))
        return result[::-1]
