"""The venue circuit breaker's Django side: its state in the shared cache (markets/circuits.py,
installed by MarketsConfig), the REST API and /readyz while a circuit is open."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connectors import create_connector
from connectors.circuit import CircuitBreaker, breaker
from connectors.environments import Environment
from connectors.errors import CircuitOpen, RateLimited
from markets.circuits import CacheCircuitStore

from .conftest import SPOT, SPOT2, require_venue, url

TICKER = "GET */api/v3/ticker/24hr"


class _Policy:
    exchange_id = "binance"
    environment = Environment.LIVE
    circuit_failure_threshold = 5
    circuit_cooldown = 5.0
    circuit_cooldown_cap = 60.0
    circuit_probe_wait = 1.0


def _open_and_share(first: CircuitBreaker, second: CircuitBreaker, monkeypatch: Any) -> None:
    policy = _Policy()
    now = [1_000_000.0]
    monkeypatch.setattr("connectors.circuit.clock", lambda: now[0])

    first.after(first.before(policy, probe_ttl=5), "rate_limited", policy, retry_after=30)

    with pytest.raises(CircuitOpen) as refused:
        second.before(policy, probe_ttl=5)
    assert refused.value.retry_after == 30.0
    assert [(c["exchange"], c["environment"], c["state"]) for c in second.open_circuits()] == [
        ("binance", "live", "open")
    ]
    now[0] += 30  # half-open: one probe, elected across the two stores
    probe = second.before(policy, probe_ttl=5)
    with pytest.raises(CircuitOpen):
        first.before(policy, probe_ttl=5)
    second.after(probe, "ok", policy)
    assert not first.before(policy, probe_ttl=5).probe and first.open_circuits() == []


def test_the_project_keeps_circuits_in_the_django_cache() -> None:
    assert isinstance(breaker.store, CacheCircuitStore)


def test_two_independent_cache_stores_share_one_circuit(monkeypatch: Any) -> None:
    _open_and_share(CircuitBreaker(CacheCircuitStore()), CircuitBreaker(CacheCircuitStore()), monkeypatch)


@pytest.mark.redis
def test_two_redis_clients_share_one_circuit(settings: Any, monkeypatch: Any) -> None:
    """Two cache aliases on the same Redis are two clients, as two processes would have."""
    caches = copy.deepcopy(settings.CACHES)
    assert caches["default"]["BACKEND"].endswith("RedisCache")
    caches["other_process"] = copy.deepcopy(caches["default"])
    settings.CACHES = caches
    first = CircuitBreaker(CacheCircuitStore("default"))
    second = CircuitBreaker(CacheCircuitStore("other_process"))
    try:
        _open_and_share(first, second, monkeypatch)
    finally:
        first.reset()


def _open_binance_circuit(emulator: Any, monkeypatch: Any) -> None:
    """A real 429 with Retry-After from the emulator, met by a connector of this thread."""
    connector = create_connector("binance", environment="emulator", emulator_url=emulator.url)
    connector.load_markets()
    monkeypatch.setattr(connector, "max_retry_after", 0)  # the instance outlives this test
    rate_limit = emulator.faults.active("rate_limit", "binance", TICKER, retry_after=30, count=1)
    with rate_limit, pytest.raises(RateLimited):
        connector.fetch_ticker(SPOT)


def test_a_market_data_request_during_an_open_circuit_is_a_429_without_a_venue_call(
    api: Any, emulator: Any, venue_calls: Any, monkeypatch: Any
) -> None:
    require_venue(emulator, "binance")
    _open_binance_circuit(emulator, monkeypatch)
    before = venue_calls("binance")

    response = api.get(url("binance", "ticker", symbol=SPOT2))

    assert response.status_code == 429, response.json()
    assert 1 <= int(response["Retry-After"]) <= 30
    assert response.json()["error"]["code"] == "rate_limited"
    assert venue_calls("binance") == before
    other = api.get(url("okx", "ticker", symbol=SPOT)) if "okx" in emulator.adapters else None
    assert other is None or other.status_code == 200


def test_readyz_lists_the_open_circuits_and_stays_ready(
    client: Any, db: Any, emulator: Any, monkeypatch: Any
) -> None:
    require_venue(emulator, "binance")
    _open_binance_circuit(emulator, monkeypatch)

    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    [circuit] = response.json()["open_circuits"]
    assert (circuit["exchange"], circuit["environment"], circuit["state"], circuit["reason"]) == (
        "binance",
        "emulator",
        "open",
        "rate_limited",
    )
    assert 0 < circuit["retry_after"] <= 30
