"""Polling services for the market-data jobs (``markets/tasks.py``).

* :func:`watchlist_tickers_poll`: tickers of the watchlist's symbols whose ticker stream is not
  live (the stream manager is down, reconnecting, or the venue has no stream), written to the
  one cache contract (``markets/cache.py``) with ``source="poll"``. Symbols with a live stream
  are left to the stream, so polling never overwrites fresher data.
* :func:`markets_refresh`: reload each served venue's markets (new listings, changed limits).

Both are idempotent: they overwrite the latest state, and a rerun writes the same state again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from connector_site.jobs import job_connector
from connectors import ConnectorError, NotSupported, TemporaryError
from markets.cache import market_data_get_many, market_data_put
from markets.errors import UnknownExchange
from markets.venues import (
    BACKGROUND,
    MARKETS_REFRESHED_KEY,
    exchange_resolve,
    market_data_environment,
    markets_refresh_publish,
    public_connector,
    served_exchanges,
)
from streams.conf import setting as streams_setting
from streams.models import StreamState, StreamSubscription, WatchlistEntry

__all__ = ["MARKETS_REFRESHED_KEY", "markets_refresh", "watchlist_symbols_to_poll", "watchlist_tickers_poll"]

logger = logging.getLogger(__name__)


def _without_info(ticker: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticker.items() if k != "info"}


def watchlist_symbols_to_poll() -> dict[str, list[str]]:
    """Per exchange, the enabled watchlist symbols whose ticker is not streamed live now.

    Live means: the stream manager reports the ticker subscription live (its health row), or
    the cache holds a stream-written ticker younger than the stale threshold (a manager in
    another process whose health row lags).
    """
    environment = market_data_environment()
    wanted: dict[str, set[str]] = defaultdict(set)
    for exchange, symbol in WatchlistEntry.objects.filter(enabled=True).values_list("exchange", "symbol"):
        wanted[exchange].add(symbol)
    live = {
        (row.exchange, row.symbol)
        for row in StreamSubscription.objects.filter(environment=environment, channel="ticker")
        if row.effective_state() == StreamState.LIVE
    }
    fresh_ms = float(streams_setting("STREAMS_STALE_AFTER_S")) * 1000
    result: dict[str, list[str]] = {}
    for exchange, symbols in sorted(wanted.items()):
        candidates = sorted(s for s in symbols if (exchange, s) not in live)
        cached = market_data_get_many(
            exchange=exchange, environment=environment, channel="ticker", symbols=candidates
        )
        streamed = {s for s, e in cached.items() if e.source == "stream" and e.age_ms() <= fresh_ms}
        todo = [s for s in candidates if s not in streamed]
        if todo:
            result[exchange] = todo
    return result


def watchlist_tickers_poll() -> dict[str, int]:
    """Poll the tickers :func:`watchlist_symbols_to_poll` names (one ``fetch_tickers`` per
    exchange) into the cache; returns how many were written per exchange.

    An exchange the market-data environment does not serve, or a symbol that is not one of
    its markets, is skipped with a warning (an operator's typo must not stop the others).
    """
    written: dict[str, int] = {}
    failures: list[ConnectorError] = []
    for exchange, symbols in watchlist_symbols_to_poll().items():
        try:
            written.update(_poll_exchange(exchange, symbols))
        except ConnectorError as exc:
            # One venue down must not stop the others; a temporary error retries the job.
            logger.warning("watchlist: polling %s failed: %s", exchange, exc.code)
            failures.append(exc)
    _raise_temporary(failures)
    return written


def _raise_temporary(failures: list[ConnectorError]) -> None:
    temporary = [f for f in failures if isinstance(f, TemporaryError)]
    if temporary:
        raise temporary[0]


def _poll_exchange(exchange: str, symbols: list[str]) -> dict[str, int]:
    environment = market_data_environment()
    try:
        exchange_id = exchange_resolve(exchange=exchange)
    except UnknownExchange:
        logger.warning("watchlist: %s is not served by %s; not polled", exchange, environment)
        return {}
    connector = job_connector(public_connector(exchange=exchange_id, budget=BACKGROUND))
    markets = connector.load_markets()
    known = [s for s in symbols if s in markets]
    if len(known) < len(symbols):
        logger.warning("watchlist: not markets of %s: %s", exchange_id, sorted(set(symbols) - set(known)))
    if not known:
        return {}
    tickers = connector.fetch_tickers(known)
    for symbol in known:
        ticker = tickers.get(symbol)
        if ticker is None:
            continue
        market_data_put(
            exchange=exchange_id,
            environment=environment,
            channel="ticker",
            symbol=symbol,
            data=_without_info(dict(ticker)),
            source="poll",
            venue_time_ms=ticker.get("timestamp"),
        )
    return {exchange_id: sum(1 for s in known if s in tickers)}


def markets_refresh() -> dict[str, int]:
    """Reload the markets of every venue the market-data environment serves; returns the
    number of markets per exchange and records when (``MARKETS_REFRESHED_KEY``).

    This refreshes the worker's own market store; the record is the generation every other
    process follows, reloading its markets lazily (``markets.venues``, docs/jobs.md).
    """
    counts: dict[str, int] = {}
    failures: list[ConnectorError] = []
    for exchange in sorted(served_exchanges()):
        try:
            connector = job_connector(public_connector(exchange=exchange, budget=BACKGROUND))
            markets = connector.refresh_markets()
        except NotSupported:
            continue
        except ConnectorError as exc:
            logger.warning("markets: refreshing %s failed: %s", exchange, exc.code)
            failures.append(exc)
            continue
        counts[exchange] = len(markets)
        markets_refresh_publish(connector=connector, count=len(markets))
    _raise_temporary(failures)
    return counts
