"""The public (credential-less) connector for market data, and which venues it can reach.

Public market data comes from the environment ``settings.MARKET_DATA_ENVIRONMENT`` names:
the emulator in the embedded default, the live venues in production. Every market-data
read goes through :func:`public_connector`, so the environment, the emulator address and
the retry budget are decided in one place.

Markets refreshed in one process (the daily job, in a worker) reach every other one: the job
publishes a generation stamp per (exchange, environment) in the shared cache
(:func:`markets_refresh_publish`), and every process's market store follows it
(:func:`follow_market_refreshes`, from ``MarketsConfig.ready`` and again at each connector
hand-out, here and in ``accounts.services.account_connector``), reloading lazily when it
changed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from connectors import SUPPORTED_EXCHANGES, Connector, Environment, create_connector
from connectors.exchanges import normalise_exchange_id
from connectors.markets import MarketKey, market_store
from markets.cache import now_ms
from markets.errors import UnknownExchange

__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "MARKETS_REFRESHED_KEY",
    "RetryBudget",
    "exchange_resolve",
    "follow_market_refreshes",
    "market_data_environment",
    "markets_refresh_publish",
    "public_connector",
    "served_exchanges",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryBudget:
    """How long a caller may wait on a venue: per request (``timeout``, seconds) and across
    retries (see ``connectors/retry.py``)."""

    retries: int
    backoff_base: float
    backoff_cap: float
    max_retry_after: float
    timeout: float


# A web request waits at most ~0.2 s for one retry and never sleeps on a venue's long
# Retry-After: under daphne every sync view shares one thread, so a sleeping request would
# stall all others. The caller gets a 429/503 with Retry-After instead and decides.
# A venue that hangs costs a request at most two 5 s timeouts (CCXT's default is 10 s each).
INTERACTIVE = RetryBudget(retries=1, backoff_base=0.2, backoff_cap=0.2, max_retry_after=1.0, timeout=5.0)
# Pollers and tasks may wait longer (the connector's own defaults).
BACKGROUND = RetryBudget(retries=3, backoff_base=0.5, backoff_cap=8.0, max_retry_after=10.0, timeout=10.0)


def market_data_environment() -> str:
    return Environment(settings.MARKET_DATA_ENVIRONMENT).value


def public_connector(*, exchange: str, budget: RetryBudget | None = None) -> Connector:
    """The credential-less connector of ``exchange`` (an allow-listed id) in the market-data
    environment, with ``budget`` (default :data:`INTERACTIVE`) applied to its timeout and
    retries.

    The factory reuses one instance per thread, so the budget is set on every hand-out:
    whoever calls next in this thread gets the budget they asked for.
    """
    budget = budget or INTERACTIVE
    follow_market_refreshes()
    connector = create_connector(
        exchange, environment=market_data_environment(), emulator_url=settings.EMULATOR_URL
    )
    connector.retries = budget.retries
    connector.backoff_base = budget.backoff_base
    connector.backoff_cap = budget.backoff_cap
    connector.max_retry_after = budget.max_retry_after
    connector.exchange.timeout = int(budget.timeout * 1000)  # CCXT counts milliseconds
    return connector


# ------------------------------------------------------------------ markets refreshed elsewhere

# Cache key (format with exchange, environment) of the last market refresh: {count, at_ms, at}.
# Its at_ms is the markets generation every process follows.
MARKETS_REFRESHED_KEY = "markets:refreshed:{exchange}:{environment}"


def _published_generation(key: MarketKey) -> Any:
    record = cache.get(MARKETS_REFRESHED_KEY.format(exchange=key[0], environment=key[1]))
    return record.get("at_ms") if isinstance(record, dict) else None


def follow_market_refreshes() -> None:
    """Have this process's market store reload a venue's markets after a refresh published by
    another process (:func:`markets_refresh_publish`): it reads the stamp at most once per
    ``MARKETS_REFRESH_CHECK_SECONDS`` per venue, then loads lazily. Called at every connector
    hand-out (cheap: two assignments), so the setting applies without a restart."""
    every = settings.MARKETS_REFRESH_CHECK_SECONDS
    market_store.follow_generation(_published_generation, every=float(every))


def markets_refresh_publish(*, connector: Connector, count: int) -> dict[str, Any]:
    """Record that ``connector``'s markets were just refreshed (``count`` markets): the stamp
    every other process follows. This process already holds them, so its store is told the new
    generation rather than loading them again."""
    exchange, environment, _ = connector.market_key
    record = {"count": count, "at_ms": now_ms(), "at": timezone.now().isoformat()}
    cache.set(MARKETS_REFRESHED_KEY.format(exchange=exchange, environment=environment), record, None)
    market_store.loaded_generation(connector.market_key, record["at_ms"])
    return record


# ------------------------------------------------------------------ which venues are served

_SERVED_TTL_SECONDS = 30.0
_served_lock = threading.Lock()
_served: dict[str, tuple[float, frozenset[str] | None]] = {}


def _emulated_venues(emulator_url: str) -> frozenset[str] | None:
    """The venues the emulator at ``emulator_url`` serves (its ``/_emulator/health``), cached
    briefly; None when it cannot be asked (then every venue is tried and fails as the venue
    would, with a 503)."""
    now = time.monotonic()
    with _served_lock:
        cached = _served.get(emulator_url)
        if cached is not None and now - cached[0] < _SERVED_TTL_SECONDS:
            return cached[1]
    venues: frozenset[str] | None
    try:
        # Only settings.EMULATOR_URL is ever asked, never an address from a request.
        with urllib.request.urlopen(f"{emulator_url.rstrip('/')}/_emulator/health", timeout=2) as answer:  # noqa: S310
            body: Any = json.load(answer)
        venues = frozenset(str(v) for v in body.get("venues", []))
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("emulator health not readable at %s: %s", emulator_url, type(exc).__name__)
        venues = None
    with _served_lock:
        # A failed probe is remembered briefly only, so a starting emulator is noticed soon.
        _served[emulator_url] = (now if venues is not None else now - _SERVED_TTL_SECONDS + 2, venues)
    return venues


def served_exchanges() -> frozenset[str]:
    """Allow-listed exchanges the market-data environment can serve: all of them live or on
    testnets, only the emulated ones on the emulator."""
    if market_data_environment() != Environment.EMULATOR.value:
        return frozenset(SUPPORTED_EXCHANGES)
    venues = _emulated_venues(settings.EMULATOR_URL)
    if venues is None:
        return frozenset(SUPPORTED_EXCHANGES)
    return frozenset(SUPPORTED_EXCHANGES) & venues


def exchange_resolve(*, exchange: str) -> str:
    """The allow-listed id for ``exchange`` (case and CCXT aliases resolved) if market data
    can be served for it here; :class:`UnknownExchange` otherwise."""
    resolved = normalise_exchange_id(exchange) if isinstance(exchange, str) and len(exchange) <= 40 else None
    if resolved is None:
        raise UnknownExchange(
            f"exchange {str(exchange)[:40]!r} is not supported; supported: {', '.join(SUPPORTED_EXCHANGES)}"
        )
    if resolved not in served_exchanges():
        raise UnknownExchange(
            f"{resolved} is not served by the market-data environment ({market_data_environment()}); "
            f"served: {', '.join(sorted(served_exchanges())) or 'none'}"
        )
    return resolved


def clear_served_cache() -> None:
    """Forget what the emulator said it serves (tests)."""
    with _served_lock:
        _served.clear()
