"""Extensions of the market-data cache contract: an acceptance condition beyond age, several
symbols in one fetch, and series keys for candles."""

from __future__ import annotations

import threading
import time

from markets.cache import (
    cache_key,
    market_data_get_or_fetch,
    market_data_get_or_fetch_many,
    market_data_put,
    series_symbol,
)

NAMES = {"exchange": "binance", "environment": "emulator", "channel": "ticker"}


def run_together(target, count: int) -> None:
    """``count`` threads running ``target``, released at once; returns when all are done."""
    start = threading.Barrier(count)

    def released() -> None:
        start.wait()
        target()

    threads = [threading.Thread(target=released) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_fresh_entry_the_reader_does_not_accept_is_fetched_again():
    market_data_put(**NAMES, symbol="BTC/USDT", data={"depth": 5}, source="stream")
    entry = market_data_get_or_fetch(
        **NAMES,
        symbol="BTC/USDT",
        max_age_ms=5_000,
        fetch=lambda: ({"depth": 50}, None),
        accept=lambda e: e.data["depth"] >= 20,
    )
    assert (entry.data, entry.source, entry.sequence) == ({"depth": 50}, "request", 2)


def test_several_symbols_make_one_fetch_for_the_misses_only():
    market_data_put(**NAMES, symbol="BTC/USDT", data={"last": "1"}, source="stream")
    asked: list[list[str]] = []

    def fetch_many(symbols):
        asked.append(symbols)
        return {s: ({"last": "2"}, 7) for s in symbols}

    entries = market_data_get_or_fetch_many(
        **NAMES, symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"], max_age_ms=5_000, fetch_many=fetch_many
    )
    assert asked == [["ETH/USDT", "SOL/USDT"]]
    assert {s: (e.source, e.data["last"]) for s, e in entries.items()} == {
        "BTC/USDT": ("stream", "1"),
        "ETH/USDT": ("request", "2"),
        "SOL/USDT": ("request", "2"),
    }


def test_a_symbol_the_venue_leaves_out_is_left_out_of_the_result():
    entries = market_data_get_or_fetch_many(
        **NAMES,
        symbols=["BTC/USDT", "GONE/USDT"],
        max_age_ms=5_000,
        fetch_many=lambda symbols: {"BTC/USDT": ({"last": "3"}, None)},
    )
    assert list(entries) == ["BTC/USDT"]


def test_concurrent_identical_multi_symbol_misses_make_one_fetch():
    calls: list[list[str]] = []

    def slow_fetch_many(symbols):
        calls.append(symbols)
        time.sleep(0.2)
        return {s: ({"last": "4"}, None) for s in symbols}

    results = []

    def read():
        results.append(
            market_data_get_or_fetch_many(
                **NAMES, symbols=["BTC/USDT", "ETH/USDT"], max_age_ms=5_000, fetch_many=slow_fetch_many
            )
        )

    run_together(read, 6)
    assert calls == [["BTC/USDT", "ETH/USDT"]]
    assert all(set(r) == {"BTC/USDT", "ETH/USDT"} for r in results)


def test_a_candle_series_has_one_key_per_market_and_timeframe():
    assert series_symbol("BTC/USDT", "1m") == "BTC/USDT@1m"
    one = cache_key(
        exchange="okx", environment="live", channel="ohlcv", symbol=series_symbol("BTC/USDT", "1m")
    )
    five = cache_key(
        exchange="okx", environment="live", channel="ohlcv", symbol=series_symbol("BTC/USDT", "5m")
    )
    assert one != five


def test_callers_released_together_never_split_an_identical_multi_symbol_miss():
    # Callers interleaving their per-symbol locks used to split one set into several fetches.
    for round_ in range(10):
        names = {**NAMES, "environment": f"split-{round_}"}
        calls: list[list[str]] = []

        def slow_fetch_many(symbols, calls=calls):
            calls.append(symbols)
            time.sleep(0.05)
            return {s: ({"last": "5"}, None) for s in symbols}

        def read(names=names, fetch=slow_fetch_many):
            market_data_get_or_fetch_many(
                **names, symbols=["XRP/USDT", "BTC/USDT", "ETH/USDT"], max_age_ms=5_000, fetch_many=fetch
            )

        run_together(read, 6)
        assert calls == [["BTC/USDT", "ETH/USDT", "XRP/USDT"]], round_
