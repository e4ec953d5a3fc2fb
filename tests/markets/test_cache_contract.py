"""The market-data cache contract shared by the stream manager, pollers and the API."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from markets.cache import (
    market_data_get,
    market_data_get_or_fetch,
    market_data_get_or_fetch_many,
    market_data_put,
    now_ms,
    retention_seconds,
    stale_horizon_ms,
)

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


# ------------------------------------------------------------------ the last value while the venue fails


class VenueDown(Exception):
    pass


class VenueRefused(Exception):
    pass


def failing(exc: Exception):
    def fetch(*symbols):
        raise exc

    return fetch


def test_a_failed_fetch_answers_the_last_entry_flagged_stale_and_stores_no_flag():
    market_data_put(**KEY, data={"last": "1"}, source="poll", received_time_ms=now_ms() - 5_000)
    entry = market_data_get_or_fetch(
        **KEY, max_age_ms=1_000, fetch=failing(VenueDown()), stale_on=(VenueDown,), stale_ms=60_000
    )
    assert (entry.data, entry.source, entry.sequence, entry.stale) == ({"last": "1"}, "poll", 1, True)
    assert entry.age_ms() >= 5_000
    stored = market_data_get(**KEY)
    assert stored is not None and stored.stale is False


def test_an_error_not_named_stale_propagates_even_with_an_entry_held():
    market_data_put(**KEY, data={"last": "1"}, source="poll", received_time_ms=now_ms() - 5_000)
    with pytest.raises(VenueRefused):
        market_data_get_or_fetch(
            **KEY, max_age_ms=1_000, fetch=failing(VenueRefused()), stale_on=(VenueDown,), stale_ms=60_000
        )


def test_an_entry_past_the_horizon_or_refused_by_the_reader_lets_the_error_through():
    market_data_put(**KEY, data={"depth": 5}, source="poll", received_time_ms=now_ms() - 5_000)
    with pytest.raises(VenueDown):
        market_data_get_or_fetch(
            **KEY, max_age_ms=1_000, fetch=failing(VenueDown()), stale_on=(VenueDown,), stale_ms=4_000
        )
    with pytest.raises(VenueDown):
        market_data_get_or_fetch(
            **KEY,
            max_age_ms=1_000,
            fetch=failing(VenueDown()),
            accept=lambda e: e.data["depth"] >= 20,
            stale_on=(VenueDown,),
            stale_ms=60_000,
        )


def test_nothing_held_lets_the_error_through():
    with pytest.raises(VenueDown):
        market_data_get_or_fetch(
            **KEY, max_age_ms=1_000, fetch=failing(VenueDown()), stale_on=(VenueDown,), stale_ms=60_000
        )


def test_a_value_another_writer_stored_during_the_failed_fetch_answers_as_fresh():
    market_data_put(**KEY, data={"last": "1"}, source="poll", received_time_ms=now_ms() - 5_000)

    def stream_writes_then_venue_fails():
        market_data_put(**KEY, data={"last": "2"}, source="stream")
        raise VenueDown()

    entry = market_data_get_or_fetch(
        **KEY, max_age_ms=1_000, fetch=stream_writes_then_venue_fails, stale_on=(VenueDown,), stale_ms=60_000
    )
    assert (entry.data, entry.source, entry.stale) == ({"last": "2"}, "stream", False)


def test_several_symbols_answer_stale_only_if_every_one_has_a_value():
    names = {k: v for k, v in KEY.items() if k != "symbol"}
    for symbol in ("BTC/USDT", "ETH/USDT"):
        market_data_put(
            **names, symbol=symbol, data={"s": symbol}, source="poll", received_time_ms=now_ms() - 5_000
        )
    down = {
        "max_age_ms": 1_000,
        "fetch_many": failing(VenueDown()),
        "stale_on": (VenueDown,),
        "stale_ms": 60_000,
    }
    entries = market_data_get_or_fetch_many(**names, symbols=["BTC/USDT", "ETH/USDT"], **down)
    assert {s: (e.data["s"], e.stale) for s, e in entries.items()} == {
        "BTC/USDT": ("BTC/USDT", True),
        "ETH/USDT": ("ETH/USDT", True),
    }
    with pytest.raises(VenueDown):
        market_data_get_or_fetch_many(**names, symbols=["BTC/USDT", "XRP/USDT"], **down)


def test_entries_are_kept_past_the_stale_horizon(settings):
    settings.MARKET_DATA_STALE_HORIZON_S = 0
    assert retention_seconds() >= 15 * 60  # far beyond any freshness, whatever the horizon
    settings.MARKET_DATA_STALE_HORIZON_S = 3_600
    assert stale_horizon_ms() == 3_600_000
    assert retention_seconds() > 3_600


def test_a_stored_entry_with_a_field_this_version_does_not_know_still_reads():
    from django.core.cache import cache

    from markets.cache import cache_key

    entry = market_data_put(**KEY, data={"last": "1"}, source="poll")
    cache.set(cache_key(**KEY), {**entry.stored(), "added_later": 1}, 60)
    assert market_data_get(**KEY) == entry
