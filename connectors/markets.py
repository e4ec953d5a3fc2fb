"""Markets, loaded once per (exchange, environment, address) and shared by every instance.

Loading Binance's markets takes several requests and megabytes; doing it per request or per
instance would burn the rate-limit budget. A credential-less CCXT instance loads them (so
no private currency endpoint is called with a user's key) and becomes the *source*; every
connector instance, sync or async, then takes them with CCXT's
``set_markets_from_exchange`` (shared read-only dicts, no copy). ``refresh`` replaces the
source and bumps ``version``; instances notice the new version on their next call.

A refresh in *another* process (the daily job runs in a worker) reaches this one through a
*generation*: :meth:`MarketStore.follow_generation` gives the store a reader of the key's
shared generation (the Django side reads a stamp in its shared cache; this package knows no
framework). Every ``peek``/``get`` asks it at most once per ``every`` seconds per key, never
on an event loop (there it asks from a worker thread and a later call acts on the answer);
a generation other than the one the markets were loaded at makes the next ``get`` load them
again, lazily. If that load fails, the markets already loaded stay in use until the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
    """One loaded set of markets: the CCXT instance holding them, when it was loaded, and the
    shared generation it was loaded at (None: none was published, or none is followed)."""

    source: Any
    version: int
    loaded_at: float
    generation: Any = None

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
        self._generation: Callable[[MarketKey], Any] | None = None
        self._check_every = 30.0
        self._next_check: dict[MarketKey, float] = {}  # monotonic time of the key's next check
        self._due: dict[MarketKey, Any] = {}  # a newer generation seen, not loaded yet

    def _key_lock(self, key: MarketKey) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def follow_generation(self, read: Callable[[MarketKey], Any] | None, *, every: float = 30.0) -> None:
        """Reload markets that were refreshed elsewhere: ``read(key)`` returns the key's current
        shared generation (any value compared with ``==``; None: none published), asked at most
        once per ``every`` seconds per key. ``None`` stops following."""
        every = max(0.0, float(every))
        if read is self._generation and every == self._check_every:
            return  # the usual case: every hand-out says the same again
        with self._lock:
            self._generation = read
            self._check_every = every
            self._next_check.clear()  # a shorter interval applies now, not after the longer one
            if read is None:
                self._due.clear()

    def peek(self, key: MarketKey) -> MarketSet | None:
        """The loaded set for ``key``, without loading; None too when a newer generation was
        published (the caller's ``get`` loads it)."""
        current = self._sets.get(key)
        if current is not None and self._generation is not None and self._outdated(key, current):
            return None
        return current

    def get(self, key: MarketKey, load: Callable[[], Any]) -> MarketSet:
        """The loaded set for ``key``; ``load()`` (returning a CCXT instance with markets
        loaded) runs only if nobody loaded them yet or a newer generation is due, and only in
        one thread."""
        current = self._sets.get(key)
        if current is not None and key not in self._due:
            return current
        with self._key_lock(key):
            current = self._sets.get(key)
            due = self._due.get(key)
            if current is not None and due is None:
                return current
            # Read before loading: a refresh published meanwhile is then seen at the next check.
            generation = due if current is not None else self._read_generation(key)
            try:
                source = load()
            except Exception as exc:
                if current is None:
                    raise
                # A failed reload must not become an outage: keep the markets we have and
                # try again at the next check (the generation still differs then).
                self._due.pop(key, None)
                logger.warning(
                    "markets of %s/%s: reload after a refresh elsewhere failed (%s); keeping the loaded ones",
                    key[0],
                    key[1],
                    type(exc).__name__,
                )
                return current
            self._due.pop(key, None)
            return self._store(key, source, generation)

    def loaded_generation(self, key: MarketKey, generation: Any) -> None:
        """The markets loaded for ``key`` are those of ``generation``: the process that just
        refreshed them and published ``generation`` does not load them once more."""
        with self._lock:
            current = self._sets.get(key)
            if current is not None:
                self._sets[key] = dataclasses.replace(current, generation=generation)
            self._due.pop(key, None)

    def _read_generation(self, key: MarketKey) -> Any:
        read = self._generation
        if read is None:
            return None
        try:
            return read(key)
        except Exception as exc:  # the shared cache is down: keep what we have
            logger.info("markets generation of %s/%s not readable: %s", key[0], key[1], type(exc).__name__)
            return None

    def _outdated(self, key: MarketKey, current: MarketSet) -> bool:
        """Whether a newer generation is due, asking the reader when the key's check is due.
        Cheap on every call: a dict lookup and a clock read between checks."""
        if key in self._due:
            return True
        now = time.monotonic()
        if now < self._next_check.get(key, 0.0):
            return False
        with self._lock:
            if now < self._next_check.get(key, 0.0):
                return False  # another thread took this check
            self._next_check[key] = now + self._check_every
        loop = asyncio._get_running_loop()
        if loop is not None:
            # Never block an event loop on the shared cache (Django's database cache refuses
            # async contexts anyway): ask from a worker thread; a later call acts on it.
            with contextlib.suppress(RuntimeError):  # a loop shutting down: the next check asks
                loop.run_in_executor(None, self._check, key, current)
            return False
        return self._check(key, current)

    def _check(self, key: MarketKey, current: MarketSet) -> bool:
        generation = self._read_generation(key)
        if generation is None or generation == current.generation:
            return False
        with self._lock:
            if self._sets.get(key) is not current:
                return False  # loaded again meanwhile
            self._due[key] = generation
        logger.info("markets of %s/%s were refreshed elsewhere: reloading", key[0], key[1])
        return True

    def refresh(
        self, key: MarketKey, load: Callable[[], Any], *, seen_version: int | None = None
    ) -> MarketSet:
        """Load again and replace. If another thread refreshed since ``seen_version`` was
        read, its result is used instead of loading twice."""
        with self._key_lock(key):
            current = self._sets.get(key)
            if current is not None and seen_version is not None and current.version != seen_version:
                return current
            generation = self._read_generation(key)
            market_set = self._store(key, load(), generation)
            self._due.pop(key, None)
            return market_set

    def _store(self, key: MarketKey, source: Any, generation: Any = None) -> MarketSet:
        with self._lock:
            self._versions += 1
            market_set = MarketSet(
                source=source, version=self._versions, loaded_at=time.time(), generation=generation
            )
            self._sets[key] = market_set
        logger.info("markets loaded for %s/%s: %d markets", key[0], key[1], len(market_set.markets))
        return market_set

    def clear(self) -> None:
        """Forget every loaded set (tests, or after changing the emulator's markets)."""
        with self._lock:
            self._sets.clear()
            self._due.clear()
            self._next_check.clear()


market_store = MarketStore()
