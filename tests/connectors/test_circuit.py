"""The venue circuit breaker (connectors/circuit.py): real CCXT against the session emulator,
whose request counters prove that a refused call never reached the venue."""

# ruff: noqa: F811  (test arguments name the fixtures imported from .emulator_support)
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import connectors
from connectors import Credentials, ExchangeUnavailable, OutcomeUnknown, RateLimited, create_connector
from connectors.circuit import CircuitBreaker, LocalCircuitStore, breaker
from connectors.environments import Environment
from connectors.errors import CircuitOpen

# The emulator fixtures are imported by name (module-scoped markets); tests take them as arguments.
from .emulator_support import (  # noqa: F401
    ORDER_ENDPOINTS,
    SYMBOLS,
    TICKER_ENDPOINTS,
    VENUES,
    Faults,
    demo_credentials,
    emulator,
    faults,
    fresh_caches,
    requests_to,
    require_venue,
    venue,
)
from .test_emulator_integration import far_below

# A generous deadline for conditions on a loaded CI machine (never a timing assertion).
DEADLINE = 30.0


@pytest.fixture
def circuit_log(caplog: pytest.LogCaptureFixture) -> Callable[[str], list[str]]:
    """``circuit_log("circuit open for")``: the breaker's warnings so far containing that word."""
    caplog.set_level(logging.WARNING, logger="connectors.circuit")

    def lines(word: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "connectors.circuit" and r.levelno == logging.WARNING and word in r.getMessage()
        ]

    return lines


def connect(emulator: Any, venue: str, credentials: Credentials | None = None) -> connectors.Connector:
    connector = create_connector(venue, credentials, environment="emulator", emulator_url=emulator.url)
    connector.load_markets()  # before any fault: a fault then meets only the call under test
    return connector


def other_keys(emulator: Any, venue: str, label: str) -> Credentials:
    credentials = Credentials(f"{label}-{venue}-key", f"{label}-{venue}-secret", f"Pass-{label}-1")
    emulator.add_account(credentials.api_key, credentials.secret, credentials.passphrase)
    return credentials


def other_venue(emulator: Any, venue: str) -> str:
    others = [v for v in VENUES if v != venue and v in emulator.served]
    if not others:
        pytest.skip("needs a second venue on the emulator")
    return others[0]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def answers(call: Callable[[], Any]) -> bool:
    try:
        call()
    except CircuitOpen:
        return False
    return True


# ------------------------------------------------------------------ rate limits and bans


def test_a_429_with_retry_after_stops_every_other_connector_of_the_venue_before_it_sends(
    emulator: Any, venue: str, faults: Faults, circuit_log: Callable[[str], list[str]]
) -> None:
    first = connect(emulator, venue, demo_credentials(venue))
    second = connect(emulator, venue, other_keys(emulator, venue, "circuit"))
    public = connect(emulator, venue)
    elsewhere = other_venue(emulator, venue)
    unaffected = connect(emulator, elsewhere, demo_credentials(elsewhere))
    spot = SYMBOLS[venue]["spot"]
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=30)

    with pytest.raises(RateLimited) as venue_said:
        first.fetch_ticker(spot)
    before = requests_to(emulator, venue)
    with pytest.raises(RateLimited) as refused:
        second.fetch_balance()
    with pytest.raises(RateLimited):
        public.fetch_order_book(spot)

    assert venue_said.value.retry_after == 30.0 and not isinstance(venue_said.value, CircuitOpen)
    assert isinstance(refused.value, CircuitOpen) and 0 < (refused.value.retry_after or 0) <= 30
    assert refused.value.code == "rate_limited" and "not sent" in str(refused.value)
    assert requests_to(emulator, venue) == before  # nothing reached the venue
    assert faults.hits(venue, "rate_limit") == 1
    assert unaffected.fetch_balance()["balances"]["USDT"]["total"] > 0
    assert len(circuit_log("circuit open for")) == 1
    assert [c["exchange"] for c in breaker.open_circuits()] == [venue]


def test_a_binance_418_ban_holds_every_connector_of_the_venue_for_the_ban(
    emulator: Any, faults: Faults
) -> None:
    require_venue(emulator, "binance")
    banned = connect(emulator, "binance")
    other = connect(emulator, "binance", other_keys(emulator, "binance", "ban"))
    ticker = TICKER_ENDPOINTS["binance"]
    faults.set("rate_limit", venue="binance", endpoint=ticker, status=418, retry_after=120)

    with pytest.raises(RateLimited):
        banned.fetch_ticker(SYMBOLS["binance"]["spot"])
    before = requests_to(emulator, "binance")
    with pytest.raises(CircuitOpen) as refused:
        other.fetch_open_orders(SYMBOLS["binance"]["spot"])

    assert 60 < (refused.value.retry_after or 0) <= 120
    assert requests_to(emulator, "binance") == before
    [circuit] = breaker.open_circuits()
    assert (circuit["exchange"], circuit["environment"], circuit["state"]) == ("binance", "emulator", "open")
    assert circuit["reason"] == "rate_limited"


def test_the_circuit_closes_once_the_retry_after_has_passed(
    emulator: Any, venue: str, faults: Faults, circuit_log: Callable[[str], list[str]]
) -> None:
    first = connect(emulator, venue)
    first.max_retry_after = 0  # raise the venue's 429 at once instead of waiting it out
    second = connect(emulator, venue, other_keys(emulator, venue, "closes"))
    second.retries = 0
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=1, count=1)

    with pytest.raises(RateLimited):
        first.fetch_ticker(SYMBOLS[venue]["spot"])
    wait_for(lambda: answers(second.fetch_balance), "the circuit to close")

    assert first.fetch_ticker(SYMBOLS[venue]["spot"])["last"] > 0
    assert breaker.open_circuits() == []
    assert len(circuit_log("circuit open for")) == 1 and len(circuit_log("closed")) == 1


def test_a_read_does_not_spin_against_an_open_circuit(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    first = connect(emulator, venue)
    first.max_retry_after = 0
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=30, count=1)
    with pytest.raises(RateLimited):
        first.fetch_ticker(SYMBOLS[venue]["spot"])
    reader = connect(emulator, venue)  # the default policy: 3 retries, waits up to 10 s
    before = requests_to(emulator, venue)

    with pytest.raises(CircuitOpen):
        reader.fetch_trades(SYMBOLS[venue]["spot"])

    assert no_sleep == [] and requests_to(emulator, venue) == before


# ------------------------------------------------------------------ a failing venue


def test_repeated_5xx_open_the_circuit_and_a_half_open_probe_closes_it(
    emulator: Any, venue: str, faults: Faults, circuit_log: Callable[[str], list[str]]
) -> None:
    failing = connect(emulator, venue)
    failing.retries = 0
    failing.circuit_cooldown = 1.0
    spot = SYMBOLS[venue]["spot"]
    fault = faults.set("error", venue=venue, endpoint=TICKER_ENDPOINTS[venue], status=503)

    for _ in range(failing.circuit_failure_threshold):
        with pytest.raises(ExchangeUnavailable):
            failing.fetch_ticker(spot)
    with pytest.raises(CircuitOpen) as refused:
        failing.fetch_ticker(spot)
    assert refused.value.reason == "failure" and 0 < (refused.value.retry_after or 0) <= 1
    assert faults.hits(venue, "error") == failing.circuit_failure_threshold

    # Half-open with the fault still there: the one probe fails and the circuit re-opens.
    wait_for(lambda: answers(lambda: _unavailable(failing, spot)), "the half-open probe")
    assert faults.hits(venue, "error") == failing.circuit_failure_threshold + 1
    with pytest.raises(CircuitOpen):
        failing.fetch_ticker(spot)
    assert faults.hits(venue, "error") == failing.circuit_failure_threshold + 1
    assert len(circuit_log("still open")) == 1

    emulator.faults.clear(fault)
    other = connect(emulator, venue, other_keys(emulator, venue, "probe"))
    other.retries = 0
    wait_for(lambda: answers(other.fetch_balance), "the probe that closes the circuit")

    assert failing.fetch_ticker(spot)["last"] > 0
    assert len(circuit_log("closed")) == 1 and breaker.open_circuits() == []


def _unavailable(connector: connectors.Connector, symbol: str) -> None:
    with pytest.raises(ExchangeUnavailable):  # a refusal (CircuitOpen) is not one: it passes
        connector.fetch_ticker(symbol)


def test_fewer_failures_than_the_threshold_are_forgotten_after_an_answer(
    emulator: Any, venue: str, faults: Faults
) -> None:
    connector = connect(emulator, venue)
    connector.retries = 0
    spot = SYMBOLS[venue]["spot"]
    for _ in range(2):
        faults.set("error", venue=venue, endpoint=TICKER_ENDPOINTS[venue], status=503, count=4)
        for _ in range(4):
            with pytest.raises(ExchangeUnavailable):
                connector.fetch_ticker(spot)
        assert connector.fetch_ticker(spot)["last"] > 0  # the count starts again
    assert breaker.open_circuits() == []


# ------------------------------------------------------------------ orders


def test_an_order_is_refused_before_it_is_sent_while_the_circuit_is_open(
    emulator: Any, venue: str, faults: Faults
) -> None:
    reader = connect(emulator, venue)
    reader.max_retry_after = 0
    trader = connect(emulator, venue, demo_credentials(venue))
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(trader, spot)
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=30, count=1)
    with pytest.raises(RateLimited):
        reader.fetch_ticker(spot)
    before = requests_to(emulator, venue, ORDER_ENDPOINTS[venue])

    with pytest.raises(RateLimited) as refused:
        trader.create_order(spot, "limit", "buy", amount, price)

    assert isinstance(refused.value, CircuitOpen) and not isinstance(refused.value, OutcomeUnknown)
    assert requests_to(emulator, venue, ORDER_ENDPOINTS[venue]) == before


def test_a_lost_order_answer_stays_outcome_unknown_even_when_it_opens_the_circuit(
    emulator: Any, venue: str, faults: Faults
) -> None:
    trader = connect(emulator, venue, demo_credentials(venue))
    trader.circuit_failure_threshold = 1
    trader.max_retry_after = 0  # see the refusal instead of waiting out the cool-down
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(trader, spot)
    faults.set("error_after_accept", venue=venue, endpoint=ORDER_ENDPOINTS[venue], count=1, status=502)

    with pytest.raises(OutcomeUnknown) as lost:
        trader.create_order(spot, "limit", "buy", amount, price)
    with pytest.raises(CircuitOpen):
        trader.fetch_order_by_client_id(spot, lost.value.client_order_id or "")

    breaker.reset()  # an operator's reset; then reconcile as usual
    found = trader.fetch_order_by_client_id(spot, lost.value.client_order_id or "")
    assert found["status"] == "open"
    trader.cancel_order(found["id"], spot)


# ------------------------------------------------------------------ the breaker itself


class _Policy:
    exchange_id = "binance"
    environment = Environment.LIVE
    circuit_failure_threshold = 2
    circuit_cooldown = 10.0
    circuit_cooldown_cap = 25.0
    circuit_probe_wait = 1.0


def test_half_open_lets_exactly_one_probe_through_and_the_cool_down_grows_to_its_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("connectors.circuit.clock", lambda: now[0])
    own = CircuitBreaker(LocalCircuitStore())
    policy = _Policy()
    for _ in range(2):
        own.after(own.before(policy, probe_ttl=5), "failure", policy)
    cool_downs = []
    for _ in range(3):
        with pytest.raises(CircuitOpen) as refused:
            own.before(policy, probe_ttl=5)
        cool_downs.append(refused.value.retry_after)
        now[0] += refused.value.retry_after or 0
        probe = own.before(policy, probe_ttl=5)
        with pytest.raises(CircuitOpen) as waiting:
            own.before(policy, probe_ttl=5)
        assert probe.probe and waiting.value.retry_after == policy.circuit_probe_wait
        own.after(probe, "failure", policy)

    assert cool_downs == [10.0, 20.0, 25.0]
    now[0] += 25
    own.after(own.before(policy, probe_ttl=5), "ok", policy)
    assert own.open_circuits() == [] and not own.before(policy, probe_ttl=5).probe


class _BrokenStore:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("store down")

        return fail


def test_a_failing_store_lets_requests_through_with_one_warning(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, circuit_log: Callable[[str], list[str]]
) -> None:
    connector = connect(emulator, "binance")
    monkeypatch.setattr(breaker, "store", _BrokenStore())
    monkeypatch.setattr(breaker, "_store_warned_at", float("-inf"))

    for _ in range(3):
        assert connector.fetch_ticker(SYMBOLS["binance"]["spot"])["last"] > 0

    assert len(circuit_log("store")) == 1
    assert breaker.open_circuits() == []
