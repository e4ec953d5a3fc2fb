"""Fixtures for the streams tests: the emulator, short timers and the in-memory layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import channel_layers
from django.core.cache import cache
from django.db import connections

from connectors import clear_connector_cache
from connectors.markets import market_store
from markets.cache import cache_key
from streams.groups import STREAM_CHANNELS
from tests.streams.support import RestartableEmulator

SYMBOLS = ("BTC/USDT", "ETH/USDT", "XRP/USDT", "LTC/USDT", "DOGE/USDT", "ADA/USDT")

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def emulator() -> Iterator[RestartableEmulator]:
    emu = RestartableEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(autouse=True)
def stream_settings(settings: Any) -> Any:
    """Fast timers, the in-memory channel layer, no manager inside any ASGI app under test."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    settings.STREAMS_IN_PROCESS = False
    settings.STREAMS_STALE_AFTER_S = 1.5
    settings.STREAMS_STALL_AFTER_S = 4.0
    settings.STREAMS_BACKOFF_BASE_S = 0.2
    settings.STREAMS_BACKOFF_CAP_S = 1.0
    settings.STREAMS_HEALTH_INTERVAL_S = 0.2
    settings.STREAMS_WATCHLIST_REFRESH_S = 0.5
    settings.STREAMS_LINGER_S = 0.5
    settings.STREAMS_LEASE_TTL_S = 30.0
    channel_layers.backends.clear()
    _forget_cached_streams()
    yield settings
    channel_layers.backends.clear()
    _forget_cached_streams()
    _close_worker_connections()


def _close_worker_connections() -> None:
    # The tests' sync_to_async calls run in asgiref's one worker thread, whose database
    # connection outlives the test; on PostgreSQL it kept the test database from being
    # dropped at the end of the session ("being accessed by other users").
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


def _forget_cached_streams() -> None:
    # Key by key: cache.clear() on the Redis cache would flush the whole database.
    keys = [
        cache_key(exchange="binance", environment="emulator", channel=channel, symbol=symbol)
        for channel in STREAM_CHANNELS
        for symbol in SYMBOLS
    ]
    cache.delete_many(keys + [f"{key}:seq" for key in keys])


@pytest.fixture
def venue(emulator: RestartableEmulator, settings: Any) -> RestartableEmulator:
    """The emulator as the market-data venue of this test (fresh markets and connectors)."""
    settings.EMULATOR_URL = emulator.url
    settings.MARKET_DATA_ENVIRONMENT = "emulator"
    market_store.clear()
    clear_connector_cache()
    return emulator
