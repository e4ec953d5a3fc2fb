"""The one market-data cache contract, written by the stream manager and pollers, read by the API.

A key per (exchange, environment, channel, symbol); the value is a :class:`MarketDataEntry`
holding the data (JSON-ready: Decimals as strings), where it came from (``stream``,
``poll`` or ``request``), the venue's time, the time we received it and a sequence
number that rises with every write to that key. Readers say how fresh they need it;
concurrent identical misses make one exchange call, not N (:func:`market_data_get_or_fetch`).

Freshness and retention are separate: a reader's ``max_age_ms`` decides when an entry is
refetched, while the cache keeps it much longer (:func:`retention_seconds`), so that when the
venue fails a reader can still answer with the last value it holds, flagged ``stale``, up to
the stale horizon (``settings.MARKET_DATA_STALE_HORIZON_S``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
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
    "retention_seconds",
    "series_symbol",
    "stale_horizon_ms",
]

logger = logging.getLogger(__name__)

CHANNELS = ("ticker", "orderbook", "trades", "ohlcv", "funding_rate", "option_chain")
SOURCES = ("stream", "poll", "request")
# Entries outlive any sensible max_age so a reader can still show a stale value, flagged:
# they are kept at least this long, and always past the stale horizon.
ENTRY_TTL_SECONDS = 15 * 60
_FILL_LOCK_SECONDS = 10
_WAIT_STEP_SECONDS = 0.02


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stale_horizon_ms() -> int:
    """How old the last value may be and still answer, flagged stale, while the venue fails
    (``settings.MARKET_DATA_STALE_HORIZON_S``; 0 never answers stale)."""
    return max(0, int(float(settings.MARKET_DATA_STALE_HORIZON_S) * 1000))


def retention_seconds() -> int:
    """How long the cache keeps an entry: far beyond any freshness, and past the stale horizon
    (a minute's margin), so the horizon, not an expiry, decides when a stale value stops."""
    return max(ENTRY_TTL_SECONDS, math.ceil(stale_horizon_ms() / 1000) + 60)


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
    # Describes an answer, not the entry, so it is never stored: the venue failed and this is
    # the last value held for the key, older than the reader's freshness (age_ms says how old).
    stale: bool = False

    def age_ms(self, at_ms: int | None = None) -> int:
        """Milliseconds since we received it (not since the venue stamped it)."""
        return max(0, (at_ms if at_ms is not None else now_ms()) - self.received_time_ms)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stored(self) -> dict[str, Any]:
        """What the cache holds for it (without ``stale``)."""
        return {name: value for name, value in asdict(self).items() if name in _STORED_FIELDS}

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> MarketDataEntry:
        # Keys this version does not know (a newer writer's, during a rolling deploy) are
        # ignored rather than turning every read of the key into an error.
        return cls(**{name: value for name, value in stored.items() if name in _STORED_FIELDS})


_STORED_FIELDS = frozenset(f.name for f in dataclasses.fields(MarketDataEntry)) - {"stale"}


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
    cache.set(key, entry.stored(), retention_seconds())
    return entry


def market_data_get(*, exchange: str, environment: str, channel: str, symbol: str) -> MarketDataEntry | None:
    stored = cache.get(cache_key(exchange=exchange, environment=environment, channel=channel, symbol=symbol))
    return MarketDataEntry.from_stored(stored) if stored else None


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
    return {keys[key]: MarketDataEntry.from_stored(value) for key, value in stored.items() if value}


Accept = Callable[[MarketDataEntry], bool]
StaleOn = tuple[type[Exception], ...]


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
    stale_on: StaleOn = (),
    stale_ms: int | None = None,
) -> MarketDataEntry:
    """The cached entry if it is young enough, else one ``fetch()`` shared by concurrent callers.

    ``fetch`` returns ``(data, venue_time_ms)``. The first caller to miss takes a short
    cache lock (``add`` is atomic on Redis and on the database cache) and fetches; the
    others wait for its write instead of calling the venue themselves. If the filler
    fails or takes too long, a waiter fetches for itself rather than fail.

    ``accept`` adds a condition on a fresh entry beyond its age (an order book deep enough
    for the depth asked for); an entry it refuses counts as a miss.

    When ``fetch`` raises one of ``stale_on`` (the venue's temporary failures), the last
    entry held for the key answers instead, flagged ``stale``, if it is at most ``stale_ms``
    old (default: :func:`stale_horizon_ms`) and ``accept`` takes it; otherwise, and on any
    other error, the error propagates.
    """
    names = {"exchange": exchange, "environment": environment, "channel": channel, "symbol": symbol}
    try:
        return _get_or_fetch(names, max_age_ms, fetch, accept)
    except stale_on as exc:
        # Read again: a stream or poller may have written a newer value while the fetch failed.
        entry = _last_known(market_data_get(**names), max_age_ms, accept, stale_ms)
        if entry is None:
            raise
        _log_stale(names, exc, [entry])
        return entry


def _get_or_fetch(
    names: dict[str, Any],
    max_age_ms: int,
    fetch: Callable[[], tuple[Any, int | None]],
    accept: Accept | None,
) -> MarketDataEntry:
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
    stale_on: StaleOn = (),
    stale_ms: int | None = None,
) -> dict[str, MarketDataEntry]:
    """:func:`market_data_get_or_fetch` for several symbols of one channel, with one
    ``fetch_many(missing)`` call for the misses (e.g. one ``fetch_tickers``).

    ``fetch_many`` returns ``{symbol: (data, venue_time_ms)}``; a symbol it leaves out is
    left out of the result too. Each missing symbol is filled by whoever takes its lock
    first, so concurrent identical requests still make one venue call per symbol set.

    When the fetch raises one of ``stale_on``, the answer is the last entries held, the ones
    past ``max_age_ms`` flagged ``stale``, provided every symbol has one at most ``stale_ms``
    old; otherwise the error propagates (one symbol without a value fails the whole read,
    as the venue's error would have).
    """
    names: dict[str, Any] = {"exchange": exchange, "environment": environment, "channel": channel}
    try:
        return _get_or_fetch_many(names, symbols, max_age_ms, fetch_many)
    except stale_on as exc:
        # Read again: a stream or poller may have written newer values while the fetch failed.
        held = market_data_get_many(**names, symbols=symbols)
        answers = {s: _last_known(held.get(s), max_age_ms, None, stale_ms) for s in symbols}
        found = {s: e for s, e in answers.items() if e is not None}
        if len(found) < len(symbols):
            raise
        _log_stale(names, exc, list(found.values()))
        return found


def _get_or_fetch_many(
    names: dict[str, Any],
    symbols: list[str],
    max_age_ms: int,
    fetch_many: Callable[[list[str]], dict[str, tuple[Any, int | None]]],
) -> dict[str, MarketDataEntry]:
    found = market_data_get_many(**names, symbols=symbols)
    result = {s: e for s, e in found.items() if _usable(e, max_age_ms, None)}
    missing = [s for s in symbols if s not in result]
    if not missing:
        return result
    locks = {s: f"{cache_key(**names, symbol=s)}:filling" for s in missing}
    # Locks are taken in one order, and a caller stops at the first one another caller holds:
    # of N identical requests one takes them all and makes the one venue call, instead of
    # two interleaving callers splitting the symbols into two calls.
    mine: list[str] = []
    for symbol in sorted(missing):
        if not cache.add(locks[symbol], 1, _FILL_LOCK_SECONDS):
            break
        mine.append(symbol)
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
        waiting = [s for s in waiting if s not in result]
        # While another caller holds any of these locks it is filling them (whoever holds the
        # first takes the next ones right after); once none is held, fetch what is left.
        if not still_filling:
            break
    # A filler that failed (or a wait that timed out) leaves symbols without an entry: fetch
    # them ourselves rather than fail, as the single-symbol version does.
    leftover = [s for s in missing if s not in result and s not in mine]
    if leftover:
        result.update(_fetch_many_and_put(names, leftover, fetch_many))
    return result


# ------------------------------------------------------------------ the last known value


def _last_known(
    entry: MarketDataEntry | None, max_age_ms: int, accept: Accept | None, stale_ms: int | None
) -> MarketDataEntry | None:
    """``entry`` as an answer while the venue fails: as is if still fresh, flagged stale if
    within the horizon, None if absent, too old or not what the reader asked for."""
    if entry is None or (accept is not None and not accept(entry)):
        return None
    age = entry.age_ms()
    if age <= max_age_ms:
        return entry
    horizon = stale_horizon_ms() if stale_ms is None else stale_ms
    return dataclasses.replace(entry, stale=True) if age <= horizon else None


def _log_stale(names: dict[str, Any], exc: BaseException, entries: list[MarketDataEntry]) -> None:
    stale = [e for e in entries if e.stale]
    if stale:
        logger.info(
            "%s %s: venue failed (%s); answering %d stale value(s), oldest %d ms",
            names["exchange"],
            names["channel"],
            type(exc).__name__,
            len(stale),
            max(e.age_ms() for e in stale),
        )


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
