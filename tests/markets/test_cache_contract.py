"""The market-data cache contract shared by the stream manager, pollers and the API."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from markets.cache import market_data_get, market_data_get_or_fetch, market_data_put

KEY = {"exchange": "binance", "environment": "emulator", "channel": "ticker", "symbol": "BTC/USDT"}


def test_a_written_entry_reads_back_with_its_source_times_and_string_decimals():
    market_data_put(
        **KEY, data={"last": Decimal("65000.10"), "bid": None}, source="stream", venue_time_ms=1000
    )
    entry = market_data_get(**KEY)
    assert entry is not None
    assert entry.data == {"last": "65000.10", "bid": None}
    assert (entry.source, entry.venue_time_ms, entry.sequence) == ("stream", 1000, 1)
    assert 0 <= entry.age_ms() < 1000


def test_sequence_rises_with_every_write_to_the_same_key():
    sequences = [market_data_put(**KEY, data={}, source="poll").sequence for _ in range(3)]
    other = market_data_put(**{**KEY, "symbol": "ETH/USDT"}, data={}, source="poll")
    assert sequences == [1, 2, 3]
    assert other.sequence == 1


def test_unknown_channels_and_sources_are_refused():
    with pytest.raises(ValueError, match="channel"):
        market_data_put(**{**KEY, "channel": "gossip"}, data={}, source="poll")
    with pytest.raises(ValueError, match="source"):
        market_data_put(**KEY, data={}, source="rumour")


def test_a_fresh_entry_is_served_without_fetching():
    market_data_put(**KEY, data={"last": "1"}, source="stream")

    def fetch():
        raise AssertionError("must not fetch")

    assert market_data_get_or_fetch(**KEY, max_age_ms=5_000, fetch=fetch).data == {"last": "1"}


def test_a_stale_entry_is_refetched_and_marked_as_a_request():
    market_data_put(**KEY, data={"last": "1"}, source="stream", received_time_ms=0)
    entry = market_data_get_or_fetch(**KEY, max_age_ms=1_000, fetch=lambda: ({"last": "2"}, 42))
    assert (entry.data, entry.source, entry.venue_time_ms) == ({"last": "2"}, "request", 42)


def test_concurrent_identical_misses_make_one_fetch():
    calls = []

    def slow_fetch():
        calls.append(1)
        time.sleep(0.2)
        return {"last": "3"}, None

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(market_data_get_or_fetch(**KEY, max_age_ms=5_000, fetch=slow_fetch))
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert [r.data for r in results] == [{"last": "3"}] * 8
