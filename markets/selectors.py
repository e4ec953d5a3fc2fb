"""Market-data reads: cache-first, through the one cache contract (``markets/cache.py``).

Every read validates its input against the venue (allow-listed exchange served by the
market-data environment, a loaded market, a timeframe the venue has) before anything is
fetched or cached, then asks :func:`~markets.cache.market_data_get_or_fetch` with the
channel's freshness: a young enough entry (from the stream manager, a poller or an earlier
request) is returned as is; otherwise one venue call is shared by concurrent callers. If that
call fails for a temporary reason (the venue down, timing out or rate-limiting us, or our
circuit breaker refusing to call it: any :class:`~connectors.TemporaryError`), the last value
held for the key answers instead, flagged ``stale``, up to the stale horizon
(:func:`~markets.cache.stale_horizon_ms`); input errors and the venue refusing the request
are never masked.

What each channel's cached ``data`` holds (CCXT's unified shapes, JSON-ready, without the
venue's raw ``info``; writers other than these selectors should keep to it):

* ``ticker``: a CCXT ticker.
* ``orderbook``: ``{symbol, bids, asks, timestamp, nonce, depth}``; ``depth`` is the number
  of levels asked of the venue (absent: the entry is as deep as its shorter side).
* ``trades``: ``{trades: [CCXT trade, ...] oldest first, limit}``; ``limit`` is the number
  asked of the venue (a bare list is read as ``limit = len(list)``).
* ``ohlcv`` (key ``series_symbol(symbol, timeframe)``): ``{candles: [[ms, o, h, l, c, v], ...],
  limit}``.
* ``funding_rate``: a CCXT funding rate. ``option_chain`` (key: the currency): CCXT's option
  chain, ``{symbol: option}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from django.conf import settings

from connectors import SUPPORTED_EXCHANGES, InvalidInput, NotSupported, TemporaryError
from connectors.exchanges import DISPLAY_NAMES
from markets.cache import (
    MarketDataEntry,
    jsonable,
    market_data_get_or_fetch,
    market_data_get_or_fetch_many,
    now_ms,
    series_symbol,
)
from markets.errors import UnknownCurrency, UnknownSymbol, UnknownTimeframe
from markets.venues import exchange_resolve, market_data_environment, public_connector, served_exchanges

__all__ = [
    "BOOK_DEPTHS",
    "MAX_AGE_MS",
    "MAX_TICKERS",
    "OHLCV_LIMITS",
    "TRADE_LIMITS",
    "exchange_list",
    "exchange_market_list",
    "market_funding_rate_get",
    "market_ohlcv_get",
    "market_option_chain_get",
    "market_order_book_get",
    "market_ticker_get",
    "market_tickers_get",
    "market_trades_get",
]

# How old a cached answer may be, per channel, before a request refetches it.
# settings.MARKET_DATA_MAX_AGE_MS may override single channels.
DEFAULT_MAX_AGE_MS: dict[str, int] = {
    "ticker": 2_000,
    "orderbook": 1_000,
    "trades": 2_000,
    "ohlcv": 30_000,
    "funding_rate": 60_000,
    "option_chain": 5_000,
}
MAX_AGE_MS = DEFAULT_MAX_AGE_MS  # the names the API documents

# Depths asked of the venue: a request for n levels fetches the smallest step >= n, so a few
# cache entries serve every limit, each depth is valid on every venue, and the request weight
# stays low (Binance: 5 up to 100 levels, 25 beyond). API4: these bound what a caller can ask.
BOOK_DEPTHS = (5, 10, 20, 50, 100)
TRADE_LIMITS = (20, 50, 100)
OHLCV_LIMITS = (100, 300)  # OKX serves at most 300 candles per request
MAX_TICKERS = 50
# Venues that serve fewer recent trades per request than our top step (Bybit spot: 60).
_TRADES_FETCH_CAP = {"bybit": 60}
# The venue failures on which the last value held answers, flagged stale.
_STALE_ON = (TemporaryError,)


def max_age_ms(channel: str) -> int:
    overrides = getattr(settings, "MARKET_DATA_MAX_AGE_MS", None) or {}
    return int(overrides.get(channel, DEFAULT_MAX_AGE_MS[channel]))


def _limit_check(limit: int, steps: tuple[int, ...]) -> None:
    # Checked before any venue call: the largest step bounds what a caller may ask (API4).
    if not 1 <= limit <= steps[-1]:
        raise InvalidInput(f"limit must be between 1 and {steps[-1]}", field="limit")


def _step(value: int, steps: tuple[int, ...]) -> int:
    return next(step for step in steps if step >= value)


def _without_info(value: Any) -> Any:
    """Drop the venue's raw payload (``info``): unvalidated, venue-specific and large (API10)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "info"}
    return value


def _market(connector: Any, symbol: str, *, field: str = "symbol") -> dict[str, Any]:
    markets = connector.load_markets()
    market = markets.get(symbol) if isinstance(symbol, str) else None
    if market is None:
        raise UnknownSymbol(f"{str(symbol)[:60]!r} is not a market of {connector.exchange_id}", field=field)
    return market  # type: ignore[no-any-return]


def _get(
    *,
    exchange: str,
    channel: str,
    symbol: str,
    max_age: int | None,
    fetch: Callable[[], tuple[Any, int | None]],
    accept: Callable[[MarketDataEntry], bool] | None = None,
) -> MarketDataEntry:
    return market_data_get_or_fetch(
        exchange=exchange,
        environment=market_data_environment(),
        channel=channel,
        symbol=symbol,
        max_age_ms=max_age if max_age is not None else max_age_ms(channel),
        fetch=fetch,
        accept=accept,
        stale_on=_STALE_ON,
    )


# ------------------------------------------------------------------ exchanges and markets


_capabilities: dict[tuple[str, str], dict[str, bool]] = {}


def _exchange_capabilities(exchange_id: str) -> dict[str, bool]:
    """What the installed CCXT and our venue module offer; fixed for the process's life, so
    computed once per environment (building 13 CCXT instances per thread is not free)."""
    key = (exchange_id, market_data_environment())
    if key not in _capabilities:
        try:
            _capabilities[key] = public_connector(exchange=exchange_id).capabilities()
        except NotSupported:  # e.g. the sandbox environment of a venue without a testnet
            _capabilities[key] = {}
    return _capabilities[key]


def exchange_list() -> list[dict[str, Any]]:
    """Every allow-listed exchange: id, display name, whether market data is served for it in
    this environment, and its capabilities (CCXT's ``has`` plus our extras; no venue call)."""
    served = served_exchanges()
    result = []
    for exchange_id in SUPPORTED_EXCHANGES:
        capabilities = _exchange_capabilities(exchange_id)
        result.append(
            {
                "id": exchange_id,
                "name": DISPLAY_NAMES[exchange_id],
                "environment": market_data_environment(),
                "market_data": exchange_id in served and bool(capabilities),
                "capabilities": capabilities,
            }
        )
    return result


def exchange_market_list(
    *, exchange: str, type: str | None = None, quote: str | None = None, search: str | None = None
) -> list[dict[str, Any]]:
    """The venue's markets (loaded once per process), filtered, sorted by symbol."""
    exchange = exchange_resolve(exchange=exchange)
    markets = public_connector(exchange=exchange).load_markets()
    needle = search.lower() if search else None
    rows = [
        market
        for symbol, market in markets.items()
        if (type is None or market.get("type") == type)
        and (quote is None or market.get("quote") == quote)
        and (needle is None or needle in symbol.lower() or needle in str(market.get("id", "")).lower())
    ]
    return sorted(rows, key=lambda market: market["symbol"])


# ------------------------------------------------------------------ market data


def market_ticker_get(*, exchange: str, symbol: str, max_age: int | None = None) -> MarketDataEntry:
    """The ticker of one market, at most ``max_age`` ms old (default: the channel's)."""
    exchange = exchange_resolve(exchange=exchange)
    connector = public_connector(exchange=exchange)
    _market(connector, symbol)

    def fetch() -> tuple[Any, int | None]:
        ticker = _without_info(connector.fetch_ticker(symbol))
        return ticker, ticker.get("timestamp")

    return _get(exchange=exchange, channel="ticker", symbol=symbol, max_age=max_age, fetch=fetch)


def market_tickers_get(
    *, exchange: str, symbols: list[str], max_age: int | None = None
) -> list[MarketDataEntry]:
    """Tickers of several markets (at most :data:`MAX_TICKERS`), in the order asked; one venue
    call (``fetch_tickers``) for all the ones not fresh in the cache."""
    exchange = exchange_resolve(exchange=exchange)
    symbols = list(dict.fromkeys(symbols))
    if not symbols or len(symbols) > MAX_TICKERS:
        raise InvalidInput(f"give between 1 and {MAX_TICKERS} symbols", field="symbols")
    connector = public_connector(exchange=exchange)
    for symbol in symbols:
        _market(connector, symbol, field="symbols")

    def fetch_many(missing: list[str]) -> dict[str, tuple[Any, int | None]]:
        tickers = connector.fetch_tickers(missing)
        return {
            symbol: (_without_info(ticker), ticker.get("timestamp"))
            for symbol, ticker in tickers.items()
            if symbol in missing
        }

    entries = market_data_get_or_fetch_many(
        exchange=exchange,
        environment=market_data_environment(),
        channel="ticker",
        symbols=symbols,
        max_age_ms=max_age if max_age is not None else max_age_ms("ticker"),
        fetch_many=fetch_many,
        stale_on=_STALE_ON,
    )
    return [entries[symbol] for symbol in symbols if symbol in entries]


def _book_depth(entry: MarketDataEntry) -> int:
    data = entry.data if isinstance(entry.data, dict) else {}
    depth = data.get("depth")
    if isinstance(depth, int):
        return depth
    return min(len(data.get("bids") or []), len(data.get("asks") or []))


def market_order_book_get(
    *, exchange: str, symbol: str, limit: int = 20, max_age: int | None = None
) -> MarketDataEntry:
    """The top ``limit`` levels per side (1..100). The cache holds one book per market, as deep
    as the deepest recent request (a step of :data:`BOOK_DEPTHS`); shallower requests slice it."""
    exchange = exchange_resolve(exchange=exchange)
    _limit_check(limit, BOOK_DEPTHS)
    connector = public_connector(exchange=exchange)
    _market(connector, symbol)
    depth = _step(limit, BOOK_DEPTHS)

    def fetch() -> tuple[Any, int | None]:
        book: dict[str, Any] = dict(connector.fetch_order_book(symbol, depth))
        book["depth"] = depth
        return book, book.get("timestamp")

    entry = _get(
        exchange=exchange,
        channel="orderbook",
        symbol=symbol,
        max_age=max_age,
        fetch=fetch,
        accept=lambda e: _book_depth(e) >= limit,
    )
    data = dict(entry.data)
    data["bids"] = list(data.get("bids") or [])[:limit]
    data["asks"] = list(data.get("asks") or [])[:limit]
    return dataclasses.replace(entry, data=data)


def _rows_of(data: Any, key: str) -> tuple[list[Any], int]:
    """The rows of a cached ``{key: [...], limit}`` entry and how many were asked of the venue
    (a bare list, as other writers may leave it, counts as asked for its length)."""
    if isinstance(data, list):
        return data, len(data)
    if isinstance(data, dict):
        rows = list(data.get(key) or [])
        return rows, int(data.get("limit") or len(rows))
    return [], 0


def market_trades_get(
    *, exchange: str, symbol: str, limit: int = 50, max_age: int | None = None
) -> MarketDataEntry:
    """The most recent ``limit`` public trades (1..100), oldest first."""
    exchange = exchange_resolve(exchange=exchange)
    _limit_check(limit, TRADE_LIMITS)
    connector = public_connector(exchange=exchange)
    _market(connector, symbol)
    step = _step(limit, TRADE_LIMITS)

    def fetch() -> tuple[Any, int | None]:
        trades = [
            _without_info(t)
            for t in connector.fetch_trades(symbol, None, min(step, _TRADES_FETCH_CAP.get(exchange, step)))
        ]
        trades.sort(key=lambda t: t.get("timestamp") or 0)
        return {"trades": trades, "limit": step}, (trades[-1].get("timestamp") if trades else None)

    entry = _get(
        exchange=exchange,
        channel="trades",
        symbol=symbol,
        max_age=max_age,
        fetch=fetch,
        accept=lambda e: _rows_of(e.data, "trades")[1] >= limit,
    )
    trades, _ = _rows_of(entry.data, "trades")
    return dataclasses.replace(entry, data={"trades": trades[-limit:], "limit": limit})


def market_ohlcv_get(
    *,
    exchange: str,
    symbol: str,
    timeframe: str = "1m",
    since: int | None = None,
    limit: int = 100,
    max_age: int | None = None,
) -> MarketDataEntry:
    """Candles ``[ms, open, high, low, close, volume]``, oldest first (1..300).

    Without ``since`` the latest candles are served from the cache (one entry per market and
    timeframe). With ``since`` the answer is history and is fetched for this request alone
    (``source`` ``request``, ``sequence`` 0): caching every ``since`` a caller can invent
    would let one token fill the cache (API4).
    """
    exchange = exchange_resolve(exchange=exchange)
    _limit_check(limit, OHLCV_LIMITS)
    connector = public_connector(exchange=exchange)
    _market(connector, symbol)
    timeframes = connector.exchange.timeframes or {}
    if timeframe not in timeframes:
        raise UnknownTimeframe(
            f"{exchange} has no {str(timeframe)[:10]!r} candles; it has: {', '.join(timeframes)}"
        )
    if since is not None:
        candles = connector.fetch_ohlcv(symbol, timeframe, since, limit)
        return MarketDataEntry(
            exchange=exchange,
            environment=market_data_environment(),
            channel="ohlcv",
            symbol=symbol,
            data={"candles": jsonable(candles[:limit]), "limit": limit},
            source="request",
            venue_time_ms=None,
            received_time_ms=now_ms(),
            sequence=0,
        )
    step = _step(limit, OHLCV_LIMITS)

    def fetch() -> tuple[Any, int | None]:
        return {"candles": connector.fetch_ohlcv(symbol, timeframe, None, step), "limit": step}, None

    entry = _get(
        exchange=exchange,
        channel="ohlcv",
        symbol=series_symbol(symbol, timeframe),
        max_age=max_age,
        fetch=fetch,
        accept=lambda e: _rows_of(e.data, "candles")[1] >= limit,
    )
    candles, _ = _rows_of(entry.data, "candles")
    return dataclasses.replace(entry, symbol=symbol, data={"candles": candles[-limit:], "limit": limit})


def market_funding_rate_get(*, exchange: str, symbol: str, max_age: int | None = None) -> MarketDataEntry:
    """The current and next funding rate of a perpetual swap."""
    exchange = exchange_resolve(exchange=exchange)
    connector = public_connector(exchange=exchange)
    market = _market(connector, symbol)
    if not market.get("swap"):
        raise InvalidInput(
            f"{symbol} is not a perpetual swap; funding rates exist only for swaps", field="symbol"
        )

    def fetch() -> tuple[Any, int | None]:
        rate = _without_info(connector.fetch_funding_rate(symbol))
        return rate, rate.get("timestamp")

    return _get(exchange=exchange, channel="funding_rate", symbol=symbol, max_age=max_age, fetch=fetch)


def market_option_chain_get(
    *, exchange: str = "okx", currency: str, max_age: int | None = None
) -> MarketDataEntry:
    """Every listed option on ``currency`` (``BTC``) with its prices and greeks-free stats."""
    exchange = exchange_resolve(exchange=exchange)
    connector = public_connector(exchange=exchange)
    if not hasattr(connector, "fetch_option_chain"):
        raise NotSupported(f"{exchange} offers no option chain here", field="exchange")
    currency = currency.upper()
    markets = connector.load_markets()
    if not any(m.get("option") and currency in (m.get("base"), m.get("baseId")) for m in markets.values()):
        raise UnknownCurrency(f"{exchange} lists no options on {currency[:10]!r}")

    def fetch() -> tuple[Any, int | None]:
        chain = connector.fetch_option_chain(currency)
        return {symbol: _without_info(option) for symbol, option in chain.items()}, None

    return _get(exchange=exchange, channel="option_chain", symbol=currency, max_age=max_age, fetch=fetch)
