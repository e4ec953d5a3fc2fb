"""A circuit breaker per venue and environment, shared by every connector instance.

Why: a venue's rate limits and bans are per egress IP, not per key. Each CCXT instance
throttles only itself, so after a 429/418 another instance (other keys, another thread, the
Celery worker, the web process) would keep calling, and on Binance repeated 429s escalate
to an IP ban for every user behind our address (reliability catalogue B2 #17). A venue in
maintenance (B2 #25) likewise gets one probe now and then instead of every caller's retries.

States, per ``(exchange id, environment)``:

* **closed**: requests go through. Consecutive :class:`~connectors.errors.ExchangeUnavailable`
  answers (5xx, maintenance, timeouts) are counted; any other answer resets the count.
* **open**: every REST request is refused before it is sent with
  :class:`~connectors.errors.CircuitOpen` (a ``RateLimited``, ``retry_after`` = the seconds
  left). It opens for the venue's ``Retry-After`` on a 429/418 that carries one, or after
  ``circuit_failure_threshold`` consecutive failures for ``circuit_cooldown`` seconds,
  doubling on each re-open up to ``circuit_cooldown_cap``.
* **half-open**: once the time is up, one request (whoever comes first, in any process) goes
  through as the probe; the others are refused for ``circuit_probe_wait`` seconds. Any venue
  answer other than a failure closes the circuit; a failure or a new 429 re-opens it.

The state lives in a :class:`CircuitStore`: :class:`LocalCircuitStore` (this process) by
default; the Django project installs a cache-backed one at startup (``install_store``) so
every process shares one ban. A store that fails is ignored (the request is allowed): the
breaker protects the venue, it must never be the outage.

The check sits on the CCXT instance's ``fetch`` (see :func:`guard`), so every REST request
of a synchronous connector passes it: unified and implicit endpoints, market loads, the
connection check. WebSocket streams do not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt

from .environments import Environment
from .errors import CircuitOpen, ExchangeUnavailable, RateLimited, parse_retry_after, translate
from .exchanges import SUPPORTED_EXCHANGES

__all__ = [
    "CircuitBreaker",
    "CircuitPolicy",
    "CircuitStore",
    "LocalCircuitStore",
    "breaker",
    "guard",
    "install_store",
]

logger = logging.getLogger("connectors.circuit")

# Wall-clock seconds: the state is shared between processes, so no monotonic clock.
# Indirection so tests can move time along with the retry decorator's patched sleep.
clock: Callable[[], float] = time.time

KEY_PREFIX = "connectors:circuit:"
# How long a record outlives its open period: the half-open state (and the number of
# re-opens the cool-down grows with) must survive until the next request comes.
KEEP_SECONDS = 600.0
# How long consecutive failures are remembered while closed.
FAILURE_MEMORY_SECONDS = 300.0
# A probe that never reports (its process died) stops blocking others after this long.
PROBE_MARGIN_SECONDS = 5.0
# At most one "store unavailable" warning per this many seconds.
STORE_WARNING_INTERVAL = 60.0

OK, FAILURE, RATE_LIMITED, NEUTRAL = "ok", "failure", "rate_limited", "neutral"


class CircuitStore(Protocol):
    """Where circuit state lives. Values are small dicts of numbers and strings; ``ttl`` is
    in seconds. ``add`` must be atomic (only one caller of many gets True): it elects the
    half-open probe."""

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]: ...

    def set(self, key: str, value: Any, ttl: float) -> None: ...

    def add(self, key: str, value: Any, ttl: float) -> bool: ...

    def delete_many(self, keys: Iterable[str]) -> None: ...


class LocalCircuitStore:
    """The in-process store (thread-safe): shared by every connector of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Any, float]] = {}

    def _live(self, key: str, now: float) -> Any:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._items[key]
            return None
        return item[0]

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            found = {key: self._live(key, now) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def set(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._items[key] = (value, time.monotonic() + ttl)

    def add(self, key: str, value: Any, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._live(key, now) is not None:
                return False
            self._items[key] = (value, now + ttl)
            return True

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)


class CircuitPolicy(Protocol):
    """The knobs, read from the connector at each request (like the retry policy)."""

    exchange_id: str
    environment: Environment
    circuit_failure_threshold: int
    circuit_cooldown: float
    circuit_cooldown_cap: float
    circuit_probe_wait: float


@dataclass(frozen=True)
class Ticket:
    """What :meth:`CircuitBreaker.before` saw, for :meth:`CircuitBreaker.after`."""

    exchange_id: str
    environment: str
    probe: bool
    failures: int

    @property
    def key(self) -> str:
        return state_key(self.exchange_id, self.environment)


def state_key(exchange_id: str, environment: str) -> str:
    return f"{KEY_PREFIX}{exchange_id}:{environment}"


def probe_key(exchange_id: str, environment: str) -> str:
    return f"{KEY_PREFIX}{exchange_id}:{environment}:probe"


def _venues() -> list[tuple[str, str]]:
    return [(exchange_id, env.value) for exchange_id in SUPPORTED_EXCHANGES for env in Environment]


class CircuitBreaker:
    """The breaker over one store. One instance per process (:data:`breaker`)."""

    def __init__(self, store: CircuitStore | None = None) -> None:
        self.store: CircuitStore = store if store is not None else LocalCircuitStore()
        self._store_warned_at = float("-inf")

    # ------------------------------------------------------------------ the request path

    def before(self, policy: CircuitPolicy, *, probe_ttl: float) -> Ticket:
        """Let a request through (returning its ticket) or raise :class:`CircuitOpen`."""
        exchange_id, environment = policy.exchange_id, policy.environment.value
        state = self._get(state_key(exchange_id, environment))
        failures = int(state.get("failures", 0))
        open_until = float(state.get("open_until", 0.0))
        if not open_until:
            return Ticket(exchange_id, environment, probe=False, failures=failures)
        reason = str(state.get("reason", RATE_LIMITED))
        remaining = open_until - clock()
        if remaining > 0:
            raise _refusal(exchange_id, environment, reason, remaining, probing=False)
        if self._add(probe_key(exchange_id, environment), probe_ttl):
            return Ticket(exchange_id, environment, probe=True, failures=failures)
        raise _refusal(exchange_id, environment, reason, policy.circuit_probe_wait, probing=True)

    def after(
        self, ticket: Ticket, outcome: str, policy: CircuitPolicy, *, retry_after: float | None = None
    ) -> None:
        """Record what the venue answered to a request :meth:`before` let through."""
        if outcome == RATE_LIMITED and retry_after:
            self._open(ticket, RATE_LIMITED, retry_after, policy)
        elif outcome == FAILURE:
            self._failed(ticket, policy)
        elif outcome == OK and ticket.probe:
            self._close(ticket)
        elif outcome == OK and ticket.failures:
            state = self._get(ticket.key)
            if state and not state.get("open_until"):
                self._delete(ticket.key)
        elif ticket.probe:  # no verdict (a 429 without Retry-After, our own error): probe again
            self._delete(probe_key(ticket.exchange_id, ticket.environment))

    def _failed(self, ticket: Ticket, policy: CircuitPolicy) -> None:
        state = self._get(ticket.key)
        if ticket.probe:
            self._open(ticket, FAILURE, 0.0, policy)
            return
        if state.get("open_until"):
            return  # opened meanwhile by another request
        failures = int(state.get("failures", 0)) + 1
        if failures >= policy.circuit_failure_threshold > 0:
            self._open(ticket, FAILURE, 0.0, policy)
        else:
            self._set(ticket.key, {**state, "failures": failures}, FAILURE_MEMORY_SECONDS)

    def _open(self, ticket: Ticket, reason: str, seconds: float, policy: CircuitPolicy) -> None:
        current = self._get(ticket.key)
        trips = int(current.get("trips", 0))
        if reason == FAILURE:
            seconds = min(policy.circuit_cooldown_cap, policy.circuit_cooldown * 2**trips)
            trips += 1
        now = clock()
        until = now + seconds
        was_open = bool(current.get("open_until"))
        if not ticket.probe and float(current.get("open_until", 0.0)) >= until:
            return  # already open at least that long
        state = {
            "open_until": until,
            "reason": reason,
            "failures": 0,
            "trips": trips,
            "since": float(current.get("since", now)) if was_open else now,
        }
        self._set(ticket.key, state, seconds + KEEP_SECONDS)
        if ticket.probe:
            self._delete(probe_key(ticket.exchange_id, ticket.environment))
        if not was_open or ticket.probe:
            logger.warning(
                "circuit %s for %s %s: %s, refusing requests for %.1fs",
                "still open" if was_open else "open",
                ticket.exchange_id,
                ticket.environment,
                _describe(reason),
                seconds,
            )

    def _close(self, ticket: Ticket) -> None:
        state = self._get(ticket.key)
        self._delete(ticket.key, probe_key(ticket.exchange_id, ticket.environment))
        opened = float(state.get("since", clock()))
        logger.warning(
            "circuit closed for %s %s: the venue answered again after %.1fs",
            ticket.exchange_id,
            ticket.environment,
            max(0.0, clock() - opened),
        )

    # ------------------------------------------------------------------ operators, tests

    def open_circuits(self) -> list[dict[str, Any]]:
        """Every circuit that is not closed, for operators: ``exchange``, ``environment``,
        ``state`` (``open``; ``half_open``: the next request probes), ``reason`` and
        ``retry_after`` (seconds left)."""
        venues = _venues()
        found = self._get_many([state_key(e, env) for e, env in venues])
        now = clock()
        report = []
        for exchange_id, environment in venues:
            state = found.get(state_key(exchange_id, environment)) or {}
            open_until = float(state.get("open_until", 0.0))
            if not open_until:
                continue
            report.append(
                {
                    "exchange": exchange_id,
                    "environment": environment,
                    "state": "open" if open_until > now else "half_open",
                    "reason": str(state.get("reason")),
                    "retry_after": round(max(0.0, open_until - now), 1),
                }
            )
        return report

    def reset(self) -> None:
        """Close every circuit and forget every count (tests; an operator's last resort)."""
        keys = [key for e, env in _venues() for key in (state_key(e, env), probe_key(e, env))]
        try:
            self.store.delete_many(keys)
        except Exception as exc:
            self._store_failed("reset", exc)

    # ------------------------------------------------------------------ fail-open store access

    def _get(self, key: str) -> dict[str, Any]:
        return dict(self._get_many([key]).get(key) or {})

    def _get_many(self, keys: list[str]) -> dict[str, Any]:
        try:
            return self.store.get_many(keys)
        except Exception as exc:
            self._store_failed("read", exc)
            return {}

    def _set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        try:
            self.store.set(key, value, ttl)
        except Exception as exc:
            self._store_failed("write", exc)

    def _add(self, key: str, ttl: float) -> bool:
        try:
            return self.store.add(key, clock(), ttl)
        except Exception as exc:
            self._store_failed("write", exc)
            return True

    def _delete(self, *keys: str) -> None:
        try:
            self.store.delete_many(keys)
        except Exception as exc:
            self._store_failed("write", exc)

    def _store_failed(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._store_warned_at >= STORE_WARNING_INTERVAL:
            self._store_warned_at = now
            logger.warning(
                "circuit store %s failed (%s); requests are allowed meanwhile", what, type(exc).__name__
            )


def _describe(reason: str) -> str:
    if reason == RATE_LIMITED:
        return "the venue asked us to wait (429/418)"
    return "the venue is failing (5xx/timeouts)"


def _refusal(
    exchange_id: str, environment: str, reason: str, seconds: float, *, probing: bool
) -> CircuitOpen:
    why = "one probe request is in flight" if probing else _describe(reason)
    return CircuitOpen(
        f"not sent: the circuit for {exchange_id} {environment} is open ({why}); "
        f"retry in {max(seconds, 0.0):.1f}s",
        retry_after=max(seconds, 0.0),
        exchange_id=exchange_id,
        environment=environment,
        reason=reason,
    )


#: The process's breaker. Its store is replaced by :func:`install_store`.
breaker = CircuitBreaker()


def install_store(store: CircuitStore) -> None:
    """Keep circuit state in ``store`` from now on (the Django project installs its cache)."""
    breaker.store = store


def classify(exc: BaseException, exchange: Any) -> tuple[str, float | None]:
    """What a failed request says about the venue: (outcome, Retry-After seconds)."""
    if not isinstance(exc, ccxt.BaseError) or isinstance(exc, ccxt.InvalidNonce):
        return NEUTRAL, None  # our own error or clock, not the venue's health
    error = translate(exc)
    if isinstance(error, RateLimited):
        headers = getattr(exchange, "last_response_headers", None) or {}
        retry_after = parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)
        return (RATE_LIMITED, retry_after) if retry_after else (NEUTRAL, None)
    if isinstance(error, ExchangeUnavailable):
        return FAILURE, None
    return OK, None  # the venue answered (an error about the request itself)


def guard(exchange: Any, policy: CircuitPolicy) -> None:
    """Put the breaker in front of every REST request of a synchronous CCXT instance.

    The venue's own exception is re-raised unchanged after it is recorded, so a lost answer
    to an order still becomes ``OutcomeUnknown``; only a request refused here, never sent,
    is :class:`CircuitOpen`.
    """
    send = exchange.fetch

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        timeout = float(getattr(exchange, "timeout", 10_000) or 10_000) / 1000
        ticket = breaker.before(policy, probe_ttl=timeout + PROBE_MARGIN_SECONDS)
        try:
            response = send(url, method, headers, body)
        except BaseException as exc:
            outcome, retry_after = classify(exc, exchange)
            breaker.after(ticket, outcome, policy, retry_after=retry_after)
            raise
        breaker.after(ticket, OK, policy)
        return response

    exchange.fetch = fetch
