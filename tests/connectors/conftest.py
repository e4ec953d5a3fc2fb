"""Fixtures for the connector tests. No Django, no database: run with
``pytest tests/connectors -p no:django --confcutdir=tests/connectors`` (or as part of the
whole suite, where Django is configured anyway)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from connectors import Credentials, Environment, create_connector
from connectors.base import Connector
from connectors.circuit import breaker
from connectors.factory import clear_connector_cache
from connectors.markets import market_store

DATA = Path(__file__).parent / "data"
EMULATOR_MARKETS = Path(__file__).parents[2] / "emulator" / "data" / "ccxt-static" / "markets"

# Unit tests run on recorded markets (CCXT's static test data, see data/README.md).
RECORDED_MARKETS_VENUE = "bybit"

TEST_CREDENTIALS = Credentials(
    api_key="unit-test-api-key-0001", secret="unit-test-secret-DO-NOT-LEAK", passphrase="unit-pass-phrase"
)


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Each test starts without cached connectors or markets."""
    market_store.clear()
    clear_connector_cache()
    yield
    market_store.clear()
    clear_connector_cache()


def _recorded_markets_source(venue: str) -> Any:
    recorded = DATA / f"{venue}-markets.json"
    if not recorded.exists():  # the same CCXT static data, as the emulator ships it (emulator/data/README.md)
        recorded = EMULATOR_MARKETS / f"{venue}.json"
    markets = json.loads(recorded.read_text())
    source = getattr(ccxt, venue)()
    source.set_markets(list(markets.values()))
    return source


def _no_network(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
    raise AssertionError(f"unit tests must not reach the network ({method} {url.split('?')[0]})")


@pytest.fixture
def offline_connector() -> Callable[..., Connector]:
    """A live-environment connector with recorded markets and no network at all: every
    CCXT method a test needs must be injected with :func:`inject`."""

    def make(
        credentials: Credentials | None = TEST_CREDENTIALS, venue: str = RECORDED_MARKETS_VENUE
    ) -> Connector:
        market_store.get((venue, Environment.LIVE.value, ""), lambda: _recorded_markets_source(venue))
        connector = create_connector(venue, credentials)
        connector.exchange.fetch = _no_network
        return connector

    return make


class Injected:
    """What :func:`inject` put in place: the calls it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []


def inject(connector: Connector, method: str, *outcomes: Any) -> Injected:
    """The one seam for fake CCXT behaviour: replace ``connector.exchange.<method>`` with a
    fake that, call by call, raises each outcome that is an exception and returns the
    others (the last outcome repeats)."""
    injected = Injected()

    def fake(*args: Any, **kwargs: Any) -> Any:
        injected.calls.append(args)
        outcome = outcomes[min(len(injected.calls), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    setattr(connector.exchange, method, fake)
    return injected


@pytest.fixture(autouse=True)
def closed_circuits() -> Iterator[None]:
    """Each test starts with every venue's circuit closed (a 429 a test provoked must not
    refuse the next test's requests)."""
    breaker.reset()
    yield
    breaker.reset()


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the retry decorator's sleep; the list collects the requested delays. The
    circuit breaker's clock moves on by each delay, as if the sleep had happened."""
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr("connectors.retry.sleep", sleep)
    monkeypatch.setattr("connectors.circuit.clock", lambda: time.time() + sum(delays))
    return delays


NOT_EMULATED = "is not emulated"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """An integration test that reached an endpoint the emulator answers with "… is not
    emulated" is reported as skipped, quoting the emulator, rather than failed or passed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    excinfo = call.excinfo
    if report.when == "call" and excinfo is not None and NOT_EMULATED in str(excinfo.value):
        message = str(excinfo.value).split(": ", 1)[-1][:200]
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: the emulator says {message}")
