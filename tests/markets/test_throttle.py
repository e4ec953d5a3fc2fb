"""The per-token throttle: 429 + Retry-After in the envelope, exact under concurrency, keyed
by token (never by a forwarded header), counters that always expire."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from markets.throttling import TokenRateThrottle, parse_rate, throttle_hit

from .conftest import require_venue

TICKER = "/api/v1/markets/binance/ticker/?symbol=BTC%2FUSDT"


def clear_of_the_window_edge(rate: str, margin_s: float = 15.0) -> None:
    """Wait for the next fixed window if this one ends within ``margin_s``: requests that
    straddle a window edge are counted in two windows and rightly get twice the allowance,
    which is not what these tests are about."""
    _, window = parse_rate(rate)
    left = window - time.time() % window
    if left < margin_s:
        time.sleep(left + 0.05)


def token_request(pk: int = 1) -> Any:
    return SimpleNamespace(auth=SimpleNamespace(pk=pk), user=None, META={"REMOTE_ADDR": "10.0.0.1"})


@pytest.mark.django_db
def test_a_token_over_its_rate_gets_a_429_with_retry_after_and_others_do_not(
    api, emulator, settings, owner, make_token, venue_calls
):
    require_venue(emulator, "binance")
    settings.API_THROTTLE_RATE = "3/min"
    clear_of_the_window_edge("3/min")
    assert [api.get(TICKER).status_code for _ in range(3)] == [200, 200, 200]
    calls = venue_calls("binance")

    throttled = api.get(TICKER)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert throttled.json()["error"]["field"] is None
    assert 1 <= int(throttled["Retry-After"]) <= 61
    assert venue_calls("binance") == calls

    _, other = make_token(owner, ["market:read"])
    assert APIClient().get(TICKER, HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 200


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_reset_the_count(api, emulator, settings):
    require_venue(emulator, "binance")
    settings.API_THROTTLE_RATE = "2/min"
    clear_of_the_window_edge("2/min")
    statuses = [
        api.get(TICKER, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}", REMOTE_ADDR=f"198.51.100.{i}").status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 429, 429]


def hammer(throttle_rate: str, threads: int, settings: Any) -> list[bool]:
    """``threads`` concurrent requests of one token, released at once; the allow decisions."""
    settings.API_THROTTLE_RATE = throttle_rate
    clear_of_the_window_edge(throttle_rate)
    barrier = threading.Barrier(threads)
    decisions: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        throttle = TokenRateThrottle()
        barrier.wait()
        allowed = throttle.allow_request(token_request(), view=None)
        with lock:
            decisions.append(allowed)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return decisions


def test_the_count_is_exact_under_concurrent_requests_in_one_process(settings):
    decisions = hammer("20/hour", 60, settings)
    assert len(decisions) == 60
    assert decisions.count(True) == 20


@pytest.mark.redis
def test_the_count_is_exact_under_concurrent_requests_on_redis(settings):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache)
    decisions = hammer("25/hour", 80, settings)
    assert len(decisions) == 80
    assert decisions.count(True) == 25


@pytest.mark.redis
def test_a_redis_counter_always_carries_its_expiry():
    from django.core.cache import caches

    backend = caches["default"]
    assert [throttle_hit("throttle:v1:probe", 61) for _ in range(3)] == [1, 2, 3]
    full_key = backend.make_and_validate_key("throttle:v1:probe")
    ttl = backend._cache.get_client(full_key).ttl(full_key)
    assert 0 < ttl <= 61
    assert backend.get("throttle:v1:probe") == 3  # readable through the cache API too


def test_the_rate_setting_is_checked():
    assert parse_rate("600/min") == (600, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("100/hour") == (100, 3600)
    for bad in ("600", "x/min", "10/fortnight", "0/min"):
        with pytest.raises(ImproperlyConfigured):
            parse_rate(bad)


def test_no_rate_turns_throttling_off(settings):
    settings.API_THROTTLE_RATE = None
    throttle = TokenRateThrottle()
    assert all(throttle.allow_request(token_request(), view=None) for _ in range(5))
