"""Markets, loaded once per (exchange, environment, address) and shared by every instance.

Loading Binance's markets takes several requests and megabytes; doing it per request or per
instance would burn the rate-limit budget. A credential-less CCXT instance loads them (so
no private currency endpoint is called with a user's key) and becomes the *source*; every
connector instance, sync or async, then takes them with CCXT's
``set_markets_from_exchange`` (shared read-only dicts, no copy). ``refresh`` replaces the
source and bumps ``version``; instances notice the new version on their next call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MarketSet", "MarketStore", "market_store"]

logger = logging.getLogger("connectors.markets")

MarketKey = tuple[str, str, str]  # (exchange id, environment, emulator url or "")


@dataclass(frozen=True)
class MarketSet:
    """One loaded set of markets: the CCXT instance holding them and when it was loaded."""

    source: Any
    version: int
    loaded_at: float

    @property
    def markets(self) -> dict[str, Any]:
        return self.source.markets or {}


class MarketStore:
    """Process-wide cache of loaded markets. Thread-safe; one load per key at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_locks: dict[MarketKey, threading.Lock] = {}
        self._sets: dict[MarketKey, MarketSet] = {}
        self._versions = 0

    def _key_lock(self, key: MarketKey) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def peek(self, key: MarketKey) -> MarketSet | None:
        """The loaded set for ``key``, without loading."""
        return self._sets.get(key)

    def get(self, key: MarketKey, load: Callable[[], Any]) -> MarketSet:
        """The loaded set for ``key``; ``load()`` (returning a CCXT instance with markets
        loaded) runs only if nobody loaded them yet, and only in one thread."""
        current = self._sets.get(key)
        if current is not None:
            return current
        with self._key_lock(key):
            current = self._sets.get(key)
            if current is None:
                current = self._store(key, load())
            return current

    def refresh(
        self, key: MarketKey, load: Callable[[], Any], *, seen_version: int | None = None
    ) -> MarketSet:
        """Load again and replace. If another thread refreshed since ``seen_version`` was
        read, its result is used instead of loading twice."""
        with self._key_lock(key):
            current = self._sets.get(key)
            if current is not None and seen_version is not None and current.version != seen_version:
                return current
            return self._store(key, load())

    def _store(self, key: MarketKey, source: Any) -> MarketSet:
        with self._lock:
            self._versions += 1
            market_set = MarketSet(source=source, version=self._versions, loaded_at=time.time())
            self._sets[key] = market_set
        logger.info("markets loaded for %s/%s: %d markets", key[0], key[1], len(market_set.markets))
        return market_set

    def clear(self) -> None:
        """Forget every loaded set (tests, or after changing the emulator's markets)."""
        with self._lock:
            self._sets.clear()


market_store = MarketStore()
