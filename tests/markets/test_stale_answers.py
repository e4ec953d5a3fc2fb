"""While the venue fails (5xx, 429, a hang), market data answers with the last value held for
the key, flagged ``stale`` with its true age, up to the stale horizon; past it, or with nothing
held, the 503/429 with Retry-After stays. Real CCXT against the emulator, faults through its
controls, venue calls counted by the emulator."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from markets.cache import market_data_get, now_ms

from .conftest import SPOT, SPOT2, Fault, require_venue, url

pytestmark = pytest.mark.django_db

FRESH_MS = 100  # the freshness these tests give tickers and books, so a wait makes them due
CHANNELS = {"ticker": {}, "orderbook": {"limit": 5}}
# Each fault on the whole venue (markets are loaded first, so only the data call meets it),
# and how many requests one web request makes of a venue failing so (INTERACTIVE budget):
# a 5xx and a timeout get one quick retry; a Retry-After beyond the budget is never slept on.
FAULTS: dict[str, tuple[dict[str, Any], int, int]] = {
    "5xx": ({"kind": "error", "status": 503}, 2, 503),
    "429": ({"kind": "rate_limit", "retry_after": 3}, 1, 429),
    "hang": ({"kind": "hang", "max_s": 60}, 2, 503),
}


@pytest.fixture(autouse=True)
def short_freshness_and_timeout(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import markets.venues

    settings.MARKET_DATA_MAX_AGE_MS = {"ticker": FRESH_MS, "orderbook": FRESH_MS}
    settings.MARKET_DATA_STALE_HORIZON_S = 300
    # A hanging venue costs a request two of these timeouts, not two of 5 s.
    monkeypatch.setattr(
        markets.venues, "INTERACTIVE", dataclasses.replace(markets.venues.INTERACTIVE, timeout=0.3)
    )


@pytest.fixture
def outage(emulator: Any) -> Iterator[Callable[..., str]]:
    """``outage(venue, kind, **params)``: that fault on every request to the venue until the
    test ends (a hang's held requests are released then)."""
    ids: list[str] = []

    def start(venue: str, kind: str, **params: Any) -> str:
        ids.append(emulator.faults.set(kind, venue=venue, **params))
        return ids[-1]

    yield start
    for fault_id in ids:
        emulator.faults.clear(fault_id)


def fault_hits(emulator: Any, fault_id: str) -> int:
    return next(f["hits"] for f in emulator.faults.list() if f["id"] == fault_id)


def entry_of(venue: str, channel: str, symbol: str = SPOT) -> Any:
    return market_data_get(exchange=venue, environment="emulator", channel=channel, symbol=symbol)


def wait_until_older_than(ms: int, venue: str, channel: str, symbol: str = SPOT) -> None:
    """Until the cached entry is past ``ms`` (a condition, not a timing: generous deadline)."""
    deadline = time.monotonic() + 30
    while entry_of(venue, channel, symbol).age_ms() <= ms:
        assert time.monotonic() < deadline, "the entry never aged"
        time.sleep(0.05)


def stale_answer_checks(answer: Any, first: dict[str, Any], asked_at_ms: int) -> dict[str, Any]:
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["stale"] is True
    # The same value as before, unchanged: same data, same write, same source.
    assert body["data"] == first["data"]
    assert (body["sequence"], body["source"], body["received_time_ms"]) == (
        first["sequence"],
        first["source"],
        first["received_time_ms"],
    )
    # Its true age: at least the time since we received it, counted when the request began.
    assert body["age_ms"] >= asked_at_ms - first["received_time_ms"]
    assert body["age_ms"] > FRESH_MS
    return dict(body)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("channel", list(CHANNELS))
def test_a_failing_venue_answers_the_last_value_flagged_stale_with_a_growing_age(
    api, emulator, venue, venue_calls, outage, channel, fault
):
    query = {"symbol": SPOT, **CHANNELS[channel]}
    first_answer = api.get(url(venue, channel, **query))
    assert first_answer.status_code == 200, first_answer.json()
    first = first_answer.json()
    assert first["stale"] is False
    wait_until_older_than(FRESH_MS, venue, channel)

    spec, calls_per_request, _ = FAULTS[fault]
    calls = venue_calls(venue)
    fault_id = outage(venue, **spec)
    answers = []
    for _ in range(2):
        asked_at = now_ms()
        answers.append(stale_answer_checks(api.get(url(venue, channel, **query)), first, asked_at))
    assert first["age_ms"] < answers[0]["age_ms"] <= answers[1]["age_ms"]
    # Each request still asked the venue (a stale answer never hides that the outage ended),
    # within the web request's budget; a circuit breaker may spare the venue the second one.
    assert calls_per_request <= fault_hits(emulator, fault_id) <= 2 * calls_per_request
    if fault != "hang":  # a held request is counted when it is released
        assert venue_calls(venue) == calls + fault_hits(emulator, fault_id)  # nothing else was called


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_first_stale_answer_costs_exactly_the_requests_the_budget_allows(
    api, emulator, venue_calls, outage, fault
):
    require_venue(emulator, "binance")
    first = api.get(url("binance", "ticker", symbol=SPOT)).json()
    wait_until_older_than(FRESH_MS, "binance", "ticker")
    spec, calls_per_request, _ = FAULTS[fault]
    fault_id = outage("binance", **spec)
    answer = api.get(url("binance", "ticker", symbol=SPOT))
    assert answer.status_code == 200 and answer.json()["stale"] is True
    assert answer.json()["data"] == first["data"]
    assert fault_hits(emulator, fault_id) == calls_per_request


@pytest.mark.parametrize("fault", list(FAULTS))
def test_past_the_horizon_the_outage_is_a_503_or_429_with_retry_after(
    api, emulator, venue, settings, outage, fault
):
    first = api.get(url(venue, "ticker", symbol=SPOT))
    assert first.status_code == 200
    spec, _, status = FAULTS[fault]
    settings.MARKET_DATA_STALE_HORIZON_S = 0.5
    wait_until_older_than(500, venue, "ticker")
    outage(venue, **spec)
    response = api.get(url(venue, "ticker", symbol=SPOT))
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == ("rate_limited" if status == 429 else "exchange_unavailable")
    assert int(response["Retry-After"]) >= 1
    assert "stale" not in response.json()


def test_with_nothing_held_the_outage_is_a_503_with_retry_after(api, emulator, venue, outage):
    api.get(url(venue, "ticker", symbol=SPOT2))  # markets loaded; nothing held for SPOT's book
    outage(venue, "error", status=503)
    response = api.get(url(venue, "orderbook", symbol=SPOT))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "exchange_unavailable"
    assert int(response["Retry-After"]) >= 1


def test_a_bad_symbol_during_an_outage_is_still_a_400_without_a_venue_call(
    api, emulator, venue, venue_calls, outage
):
    api.get(url(venue, "ticker", symbol=SPOT))
    wait_until_older_than(FRESH_MS, venue, "ticker")
    fault_id = outage(venue, "error", status=503)
    calls = venue_calls(venue)
    response = api.get(url(venue, "ticker", symbol="NOPE/USDT"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_symbol", "symbol")
    assert fault_hits(emulator, fault_id) == 0
    assert venue_calls(venue) == calls


def test_the_venue_refusing_the_request_is_never_masked_by_a_stale_value(
    api, emulator, venue_calls, remove_faults
):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT))
    wait_until_older_than(FRESH_MS, "binance", "ticker")
    # Binance's answer for a symbol it does not (or no longer) know: CCXT's BadSymbol.
    refusal = Fault("ticker/24hr", 400, {"code": -1121, "msg": "Invalid symbol."}, times=5)
    emulator.middlewares.append(refusal)
    response = api.get(url("binance", "ticker", symbol=SPOT))
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "bad_symbol"
    assert refusal.hits == 1  # not retried either


def test_fresh_hits_make_no_exchange_call_and_are_not_stale_during_an_outage(
    api, emulator, venue, venue_calls, outage, settings
):
    settings.MARKET_DATA_MAX_AGE_MS = {"ticker": 600_000, "orderbook": 600_000}
    first = api.get(url(venue, "ticker", symbol=SPOT)).json()
    calls = venue_calls(venue)
    fault_id = outage(venue, "error", status=503)
    again = api.get(url(venue, "ticker", symbol=SPOT))
    assert again.status_code == 200
    assert again.json()["stale"] is False
    assert again.json()["sequence"] == first["sequence"]
    assert fault_hits(emulator, fault_id) == 0
    assert venue_calls(venue) == calls


def test_a_deeper_book_than_the_one_held_is_not_answered_from_it(api, emulator, outage):
    require_venue(emulator, "binance")
    shallow = api.get(url("binance", "orderbook", symbol=SPOT, limit=5)).json()
    wait_until_older_than(FRESH_MS, "binance", "orderbook")
    outage("binance", "error", status=503)
    deeper = api.get(url("binance", "orderbook", symbol=SPOT, limit=50))
    assert deeper.status_code == 503  # 5 levels held: not the 50 asked for
    same = api.get(url("binance", "orderbook", symbol=SPOT, limit=5))
    assert same.status_code == 200 and same.json()["stale"] is True
    assert same.json()["data"] == shallow["data"]


def test_tickers_answer_stale_only_when_every_symbol_has_a_value(api, emulator, venue, outage):
    held = api.get(url(venue, "tickers", symbols=f"{SPOT},{SPOT2}")).json()["results"]
    wait_until_older_than(FRESH_MS, venue, "ticker", SPOT2)
    outage(venue, "error", status=503)
    response = api.get(url(venue, "tickers", symbols=f"{SPOT2},{SPOT}"))
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["symbol"] for r in results] == [SPOT2, SPOT]
    assert all(r["stale"] is True for r in results)
    assert [r["data"] for r in results] == [held[1]["data"], held[0]["data"]]
    missing = api.get(url(venue, "tickers", symbols=f"{SPOT},XRP/USDT"))
    assert missing.status_code == 503  # XRP/USDT was never fetched: nothing to answer with
    assert int(missing["Retry-After"]) >= 1


def test_the_horizon_at_zero_turns_stale_answers_off(api, emulator, settings, outage):
    require_venue(emulator, "binance")
    api.get(url("binance", "ticker", symbol=SPOT))
    wait_until_older_than(FRESH_MS, "binance", "ticker")
    settings.MARKET_DATA_STALE_HORIZON_S = 0
    outage("binance", "error", status=503)
    assert api.get(url("binance", "ticker", symbol=SPOT)).status_code == 503
