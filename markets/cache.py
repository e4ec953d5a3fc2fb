"""The one market-data cache contract, written by the stream manager and pollers, read by the API.

A key per (exchange, environment, channel, symbol); the value is a :class:`MarketDataEntry`
holding the data (JSON-ready: Decimals as strings), where it came from (``stream``,
``poll`` or ``request``), the venue's time, the time we received it and a sequence
number that rises with every write to that key. Readers say how fresh they need it;
concurrent identical misses make one exchange call, not N (:func:`market_data_get_or_fetch`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.core.cache import cache

__all__ = [
    "CHANNELS",
    "SOURCES",
    "MarketDataEntry",
    "cache_key",
    "jsonable",
    "market_data_get",
    "market_data_get_many",
    "market_data_get_or_fetch",
    "market_data_get_or_fetch_many",
    "market_data_put",
    "now_ms",
    "series_symbol",
]

CHANNELS = ("ticker", "orderbook", "trades", "ohlcv", "funding_rate", "option_chain")
SOURCES = ("stream", "poll", "request")
# Entries outlive any sensible max_age so a reader can still show a stale value, flagged.
ENTRY_TTL_SECONDS = 15 * 60
_FILL_LOCK_SECONDS = 10
_WAIT_STEP_SECONDS = 0.02


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def jsonable(value: Any) -> Any:
    """Decimals to strings, recursively; tuples to lists. Money never passes through float."""
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class MarketDataEntry:
    exchange: str
    environment: str
    channel: str
    symbol: str
    data: Any
    source: str
    venue_time_ms: int | None
    received_time_ms: int
    sequence: int

    def age_ms(self, at_ms: int | None = None) -> int:
        """Milliseconds since we received it (not since the venue stamped it)."""
        return max(0, (at_ms if at_ms is not None else now_ms()) - self.received_time_ms)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def series_symbol(symbol: str, timeframe: str) -> str:
    """The ``symbol`` part of the key for a series with a resolution (``ohlcv``): one key per
    market and timeframe, e.g. ``BTC/USDT@1m``. Writers and readers of candles both use it."""
    return f"{symbol}@{timeframe}"


def cache_key(*, exchange: str, environment: str, channel: str, symbol: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown market-data channel {channel!r}")
    return f"md:v1:{exchange}:{environment}:{channel}:{symbol}"


def market_data_put(
    *,
    exchange: str,
    environment: str,
    channel: str,
    symbol: str,
    data: Any,
    source: str,
    venue_time_ms: int | None = None,
    received_time_ms: int | None = None,
    sequence: int | None = None,
) -> MarketDataEntry:
    """Store the latest state for one key. ``sequence`` defaults to the key's next number."""
    if source not in SOURCES:
        raise ValueError(f"unknown market-data source {source!r}")
    key = cache_key(exchange=exchange, environment=environment, channel=channel, symbol=symbol)
    entry = MarketDataEntry(
        exchange=exchange,
        environment=environment,
        channel=channel,
        symbol=symbol,
        data=jsonable(data),
        source=source,
        venue_time_ms=venue_time_ms,
        received_time_ms=received_time_ms if received_time_ms is not None else now_ms(),
        sequence=sequence if sequence is not None else _next_sequence(key),
    )
    cache.set(key, entry.as_dict(), ENTRY_TTL_SECONDS)
    return entry


def market_data_get(*, exchange: str, environment: str, channel: str, symbol: str) -> MarketDataEntry | None:
    stored = cache.get(cache_key(exchange=exchange, environment=environment, channel=channel, symbol=symbol))
    return MarketDataEntry(**stored) if stored else None


def market_data_get_many(
    *, exchange: str, environment: str, channel: str, symbols: list[str]
) -> dict[str, MarketDataEntry]:
    """The stored entries for several symbols of one channel (one cache round trip); absent
    symbols are left out."""
    keys = {
        cache_key(exchange=exchange, environment=environment, channel=channel, symbol=symbol): symbol
        for symbol in symbols
    }
    stored = cache.get_many(list(keys))
    return {keys[key]: MarketDataEntry(**value) for key, value in stored.items() if value}


Accept = Callable[[MarketDataEntry], bool]


def _usable(entry: MarketDataEntry | None, max_age_ms: int, accept: Accept | None) -> bool:
    return entry is not None and entry.age_ms() <= max_age_ms and (accept is None or accept(entry))


def market_data_get_or_fetch(
    *,
    exchange: str,
    environment: str,
    channel: str,
    symbol: str,
    max_age_ms: int,
    fetch: Callable[[], tuple[Any, int | None]],
    accept: Accept | None = None,
) -> MarketDataEntry:
    """The cached entry if it is young enough, else one ``fetch()`` shared by concurrent callers.

    ``fetch`` returns ``(data, venue_time_ms)``. The first caller to miss takes a short
    cache lock (``add`` is atomic on Redis and on the database cache) and fetches; the
    others wait for its write instead of calling the venue themselves. If the filler
    fails or takes too long, a waiter fetches for itself rather than fail.

    ``accept`` adds a condition on a fresh entry beyond its age (an order book deep enough
    for the depth asked for); an entry it refuses counts as a miss.
    """
    names = {"exchange": exchange, "environment": environment, "channel": channel, "symbol": symbol}
    entry = market_data_get(**names)
    if _usable(entry, max_age_ms, accept):
        return entry  # type: ignore[return-value]
    key = cache_key(**names)
    with _local_lock(key):  # threads of one process queue here instead of polling the cache
        entry = market_data_get(**names)
        if _usable(entry, max_age_ms, accept):
            return entry  # type: ignore[return-value]
        lock_key = f"{key}:filling"
        if cache.add(lock_key, 1, _FILL_LOCK_SECONDS):
            try:
                return _fetch_and_put(names, fetch)
            finally:
                cache.delete(lock_key)
        deadline = time.monotonic() + _FILL_LOCK_SECONDS
        while time.monotonic() < deadline:
            time.sleep(_WAIT_STEP_SECONDS)
            entry = market_data_get(**names)
            if _usable(entry, max_age_ms, accept):
                return entry  # type: ignore[return-value]
            if cache.get(lock_key) is None:
                break
        return _fetch_and_put(names, fetch)


def market_data_get_or_fetch_many(
    *,
    exchange: str,
    environment: str,
    channel: str,
    symbols: list[str],
    max_age_ms: int,
    fetch_many: Callable[[list[str]], dict[str, tuple[Any, int | None]]],
) -> dict[str, MarketDataEntry]:
    """:func:`market_data_get_or_fetch` for several symbols of one channel, with one
    ``fetch_many(missing)`` call for the misses (e.g. one ``fetch_tickers``).

    ``fetch_many`` returns ``{symbol: (data, venue_time_ms)}``; a symbol it leaves out is
    left out of the result too. Each missing symbol is filled by whoever takes its lock
    first, so concurrent identical requests still make one venue call per symbol set.
    """
    names: dict[str, Any] = {"exchange": exchange, "environment": environment, "channel": channel}
    found = market_data_get_many(**names, symbols=symbols)
    result = {s: e for s, e in found.items() if _usable(e, max_age_ms, None)}
    missing = [s for s in symbols if s not in result]
    if not missing:
        return result
    locks = {s: f"{cache_key(**names, symbol=s)}:filling" for s in missing}
    mine = [s for s in missing if cache.add(locks[s], 1, _FILL_LOCK_SECONDS)]
    try:
        if mine:
            result.update(_fetch_many_and_put(names, mine, fetch_many))
    finally:
        cache.delete_many([locks[s] for s in mine])
    waiting = [s for s in missing if s not in mine]
    deadline = time.monotonic() + _FILL_LOCK_SECONDS
    while waiting and time.monotonic() < deadline:
        time.sleep(_WAIT_STEP_SECONDS)
        still_filling = cache.get_many([locks[s] for s in waiting])
        found = market_data_get_many(**names, symbols=waiting)
        result.update({s: e for s, e in found.items() if _usable(e, max_age_ms, None)})
        waiting = [s for s in waiting if s not in result and locks[s] in still_filling]
    # A filler that failed (or a wait that timed out) leaves symbols without an entry: fetch
    # them ourselves rather than fail, as the single-symbol version does.
    leftover = [s for s in missing if s not in result and s not in mine]
    if leftover:
        result.update(_fetch_many_and_put(names, leftover, fetch_many))
    return result


def _fetch_many_and_put(
    names: dict[str, Any],
    symbols: list[str],
    fetch_many: Callable[[list[str]], dict[str, tuple[Any, int | None]]],
) -> dict[str, MarketDataEntry]:
    fetched = fetch_many(symbols)
    return {
        symbol: market_data_put(**names, symbol=symbol, data=data, source="request", venue_time_ms=venue_ms)
        for symbol, (data, venue_ms) in fetched.items()
        if symbol in symbols
    }


def _fetch_and_put(names: dict[str, Any], fetch: Callable[[], tuple[Any, int | None]]) -> MarketDataEntry:
    data, venue_time_ms = fetch()
    return market_data_put(**names, data=data, source="request", venue_time_ms=venue_time_ms)


def _next_sequence(key: str) -> int:
    counter = f"{key}:seq"
    try:
        return int(cache.incr(counter))
    except ValueError:  # first write for this key
        if cache.add(counter, 1, None):
            return 1
        return int(cache.incr(counter))


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _local_lock(key: str) -> threading.Lock:
    with _local_locks_guard:
        return _local_locks.setdefault(key, threading.Lock())
