"""Markets refreshed by the daily job reach every process, not only the worker that ran it.

The job publishes a generation stamp per (exchange, environment) in the shared cache; every
process's market store reads it at most once per ``MARKETS_REFRESH_CHECK_SECONDS`` per venue and
reloads lazily when it changed. Seen here through the emulator's counter of Binance's spot
``exchangeInfo`` (one per markets load) and the loaded set's timestamp and generation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

EXCHANGE_INFO = ("binance", "GET api.binance.com/api/v3/exchangeInfo")


def spot_loads(emulator: Any) -> int:
    return emulator.stats.requests[EXCHANGE_INFO]


def publish_elsewhere(at_ms: int) -> None:
    """What ``markets_refresh`` in another process (a worker) leaves in the shared cache."""
    from django.core.cache import cache

    from markets.venues import MARKETS_REFRESHED_KEY

    key = MARKETS_REFRESHED_KEY.format(exchange="binance", environment="emulator")
    cache.set(key, {"count": 1, "at_ms": at_ms, "at": "elsewhere"}, None)


def loaded(connector: Any) -> Any:
    """The market set this process holds for ``connector`` (its timestamp and generation)."""
    from connectors.markets import market_store

    return market_store.peek(connector.market_key)


@pytest.fixture
def web_connector(emulator: Any) -> Any:
    """``web_connector()``: Binance's market-data connector as a web request gets it, its
    markets loaded."""
    from markets.venues import public_connector

    def get() -> Any:
        connector = public_connector(exchange="binance")
        connector.load_markets()
        return connector

    return get


def test_a_refresh_published_by_another_process_reloads_the_markets_here_once(
    emulator: Any, settings: Any, web_connector: Any, venue_account: Any
) -> None:
    from accounts.services import account_connector
    from markets.cache import now_ms

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0  # check at every use (production: 30 s)
    before = loaded(web_connector())
    loads = spot_loads(emulator)

    generation = now_ms()
    publish_elsewhere(generation)
    connector = web_connector()
    assert spot_loads(emulator) == loads + 1
    reloaded = loaded(connector)
    assert reloaded.generation == generation and reloaded.loaded_at >= before.loaded_at
    assert reloaded.version != before.version and connector.market("BTC/USDT")["symbol"] == "BTC/USDT"
    web_connector()
    assert spot_loads(emulator) == loads + 1  # the same generation: loaded once

    # A trading account's connector (same venue and environment) follows it too.
    publish_elsewhere(generation + 1)
    assert account_connector(account=venue_account).market("BTC/USDT")["symbol"] == "BTC/USDT"
    assert spot_loads(emulator) == loads + 2
    assert loaded(connector).generation == generation + 1


def test_the_stamp_is_read_at_most_once_per_interval(
    emulator: Any, settings: Any, web_connector: Any
) -> None:
    from markets.cache import now_ms

    settings.MARKETS_REFRESH_CHECK_SECONDS = 3600
    web_connector()  # checks now (a new interval), then not for an hour
    loads = spot_loads(emulator)
    publish_elsewhere(now_ms())
    for _ in range(5):
        web_connector()
    assert spot_loads(emulator) == loads  # not per request: the next check is an hour away

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0  # a shorter interval applies at once
    web_connector()
    assert spot_loads(emulator) == loads + 1


def test_the_worker_that_refreshed_does_not_load_its_markets_again(
    emulator: Any, settings: Any, web_connector: Any
) -> None:
    from markets.polling import markets_refresh

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0
    web_connector()
    loads = spot_loads(emulator)
    markets_refresh()
    assert spot_loads(emulator) == loads + 1
    web_connector()
    assert spot_loads(emulator) == loads + 1


def test_nothing_published_or_an_unreadable_cache_keeps_the_loaded_markets(
    emulator: Any, settings: Any, web_connector: Any
) -> None:
    from django.core.cache import cache

    from markets.venues import MARKETS_REFRESHED_KEY

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0
    cache.delete(MARKETS_REFRESHED_KEY.format(exchange="binance", environment="emulator"))
    web_connector()
    loads = spot_loads(emulator)
    web_connector()
    cache.set(MARKETS_REFRESHED_KEY.format(exchange="binance", environment="emulator"), "garbage", None)
    web_connector()
    assert spot_loads(emulator) == loads


@pytest.mark.django_db(transaction=True)  # the check reads the cache from another thread
def test_a_stream_connector_on_an_event_loop_reloads_after_the_check(
    emulator: Any, settings: Any, web_connector: Any
) -> None:
    """The stream manager's connectors: the check never blocks the loop (it runs in a thread),
    and a later call loads the refreshed markets."""
    from connectors import close_stream_connectors, create_stream_connector
    from markets.cache import now_ms

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0
    web_connector()
    loads = spot_loads(emulator)
    generation = now_ms()
    publish_elsewhere(generation)

    async def watch_until_reloaded() -> tuple[int, Any]:
        connector = create_stream_connector("binance", environment="emulator", emulator_url=emulator.url)
        try:
            for _ in range(150):  # 15 s at most on a loaded machine
                await connector.load_markets()
                if spot_loads(emulator) > loads:
                    break
                await asyncio.sleep(0.1)
            await connector.load_markets()
            return spot_loads(emulator), loaded(connector).generation
        finally:
            await close_stream_connectors()

    assert asyncio.run(watch_until_reloaded()) == (loads + 1, generation)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_after_the_job_runs_in_a_worker_process_the_web_side_reloads(
    emulator: Any, settings: Any, web_connector: Any, subprocess_worker: Any
) -> None:
    """The real thing: the task in a separate worker process (prefork, Redis broker, the shared
    Redis cache); this process, the web side, reloads on its next use of a connector."""
    from django.core.cache import cache

    from markets.tasks import markets_refresh
    from markets.venues import MARKETS_REFRESHED_KEY
    from tests.jobs.conftest import wait_until

    settings.MARKETS_REFRESH_CHECK_SECONDS = 0
    before = loaded(web_connector())
    worker = subprocess_worker()
    loads = spot_loads(emulator)
    markets_refresh.apply_async(queue=worker.queue)
    key = MARKETS_REFRESHED_KEY.format(exchange="binance", environment="emulator")
    record = wait_until(lambda: cache.get(key), 60, what="the worker's markets refresh record")
    assert spot_loads(emulator) == loads + 1  # the worker's own load

    connector = web_connector()
    assert spot_loads(emulator) == loads + 2  # ours, once
    reloaded = loaded(connector)
    assert reloaded.generation == record["at_ms"] and reloaded.loaded_at > before.loaded_at
    web_connector()
    assert spot_loads(emulator) == loads + 2
