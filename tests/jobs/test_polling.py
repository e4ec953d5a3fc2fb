"""Polling: watchlist tickers that are not streaming go into the market-data cache; markets refresh."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def watchlist(emulator: Any) -> list[str]:
    from streams.models import WatchlistEntry

    WatchlistEntry.objects.all().delete()
    symbols = ["BTC/USDT", "ETH/USDT"]
    for position, symbol in enumerate(symbols):
        WatchlistEntry.objects.create(exchange="binance", channel="ticker", symbol=symbol, position=position)
    return symbols


def ticker_entry(symbol: str) -> Any:
    from markets.cache import market_data_get

    return market_data_get(exchange="binance", environment="emulator", channel="ticker", symbol=symbol)


def streaming_live(symbol: str) -> None:
    from streams.models import StreamState, StreamSubscription

    now = timezone.now()
    StreamSubscription.objects.create(
        exchange="binance",
        environment="emulator",
        channel="ticker",
        symbol=symbol,
        state=StreamState.LIVE,
        last_message_at=now,
        updated_at=now,
    )


def test_it_polls_the_tickers_of_watchlist_symbols_into_the_cache(
    watchlist: list[str], emulator: Any
) -> None:
    from markets.polling import watchlist_tickers_poll

    written = watchlist_tickers_poll()

    assert written == {"binance": 2}
    for symbol in watchlist:
        entry = ticker_entry(symbol)
        assert entry is not None and entry.source == "poll"
        assert entry.data["symbol"] == symbol and entry.data["last"]
        assert "info" not in entry.data


def test_a_symbol_whose_stream_is_live_is_left_to_the_stream(watchlist: list[str]) -> None:
    from markets.polling import watchlist_symbols_to_poll, watchlist_tickers_poll

    streaming_live("BTC/USDT")

    assert watchlist_symbols_to_poll() == {"binance": ["ETH/USDT"]}
    watchlist_tickers_poll()
    assert ticker_entry("BTC/USDT") is None
    assert ticker_entry("ETH/USDT").source == "poll"


def test_a_stream_whose_health_went_stale_is_polled_again(watchlist: list[str]) -> None:
    from markets.polling import watchlist_symbols_to_poll
    from streams.models import StreamSubscription

    streaming_live("BTC/USDT")
    StreamSubscription.objects.update(last_message_at=timezone.now() - timedelta(minutes=5))

    assert watchlist_symbols_to_poll() == {"binance": ["BTC/USDT", "ETH/USDT"]}


def test_a_fresh_stream_entry_in_the_cache_is_not_overwritten_by_a_poll(watchlist: list[str]) -> None:
    from markets.cache import market_data_put
    from markets.polling import watchlist_tickers_poll

    market_data_put(
        exchange="binance",
        environment="emulator",
        channel="ticker",
        symbol="BTC/USDT",
        data={"x": 1},
        source="stream",
    )

    watchlist_tickers_poll()

    assert ticker_entry("BTC/USDT").source == "stream"
    assert ticker_entry("ETH/USDT").source == "poll"


def test_an_unknown_symbol_on_the_watchlist_does_not_stop_the_others(watchlist: list[str]) -> None:
    from markets.polling import watchlist_tickers_poll
    from streams.models import WatchlistEntry

    WatchlistEntry.objects.create(exchange="binance", channel="ticker", symbol="NOPE/USDT", position=9)

    assert watchlist_tickers_poll() == {"binance": 2}
    assert ticker_entry("NOPE/USDT") is None


def test_markets_refresh_reloads_each_served_venue_and_records_when(emulator: Any) -> None:
    from django.core.cache import cache

    from markets.polling import MARKETS_REFRESHED_KEY, markets_refresh

    counts = markets_refresh()

    assert set(counts) == set(emulator.adapters) & {"binance", "okx", "bybit"}
    assert counts["binance"] > 0
    record = cache.get(MARKETS_REFRESHED_KEY.format(exchange="binance", environment="emulator"))
    assert record["count"] == counts["binance"]
