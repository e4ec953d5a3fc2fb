"""Running the exchange emulator for connector tests, and injecting its faults.

Venues the emulator does not serve yet are skipped with the reason computed from the
emulator itself (``GET /_emulator/health`` lists the venues it serves). Faults go through
the emulator's own registry (``emulator.faults``), so each venue answers a rate limit, an
outage or a lost order answer with its real error body and CCXT raises what it raises in
production.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import Credentials
from connectors.factory import clear_connector_cache
from connectors.markets import market_store
from emulator.accounts import DEMO_CREDENTIALS

VENUES = ("binance", "okx", "bybit")
SYMBOLS = {
    "binance": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
    "okx": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
    "bybit": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
}

# The requests CCXT 4.5 really sends (glob patterns of ``emulator.faults.endpoint_matches``,
# "METHOD host/path"). ``fetch_ticker`` of a spot market, and ``create_order``: OKX places
# single orders through /trade/batch-orders unless ``options["createOrder"]`` says
# otherwise (ccxt/okx.py create_order). ``test_an_order_can_be_placed…`` checks that one
# order is exactly one request to ORDER_ENDPOINTS[venue].
TICKER_ENDPOINTS = {
    "binance": "GET */api/v3/ticker/24hr",
    "okx": "GET */api/v5/market/ticker",
    "bybit": "GET */v5/market/tickers",
}
ORDER_ENDPOINTS = {
    "binance": "POST */api/v3/order",
    "okx": "POST */api/v5/trade/batch-orders",
    "bybit": "POST */v5/order/create",
}


def demo_credentials(venue: str) -> Credentials:
    key, secret, passphrase = DEMO_CREDENTIALS[venue]
    return Credentials(key, secret, passphrase)


def served_venues(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/_emulator/health", timeout=5) as response:
        return list(json.load(response).get("venues", []))


def require_venue(server: Any, venue: str) -> None:
    if venue not in server.served:
        pytest.skip(
            f"the emulator does not serve {venue} yet (it serves: {', '.join(server.served) or 'none'})"
        )


def requests_to(server: Any, venue: str, fragment: str = "") -> int:
    """How many requests the emulator counted for ``venue`` whose endpoint matches ``fragment``:
    a substring, or an ORDER_ENDPOINTS-style glob. Read on the emulator's loop."""
    from emulator.faults import endpoint_matches

    def count() -> int:
        total = 0
        for (counted_venue, endpoint), n in server.stats.requests.items():
            if counted_venue != venue:
                continue
            if "*" in fragment:
                method, _, target = endpoint.partition(" ")
                host, slash, path = target.partition("/")
                if not endpoint_matches(fragment, method, host, slash + path):
                    continue
            elif fragment not in endpoint:
                continue
            total += n
        return total

    return int(server.call(count))


def requests_to_unknown_host(server: Any, host: str) -> int:
    """Requests the emulator counted for a host no venue of it serves."""
    return int(server.call(lambda: server.stats.unknown_hosts()[host]))


class Faults:
    """The emulator's fault registry for one test (fixture ``faults``): :meth:`set` takes
    ``server.faults.set``'s arguments, :meth:`hits` says how often faults were applied since
    this test began, and every fault is cleared when the test ends, whatever its outcome."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.ids: list[str] = []
        self._baseline = self._injected()

    def _injected(self) -> dict[tuple[str, str], int]:
        return dict(self.server.call(lambda: dict(self.server.stats.faults_injected)))

    def set(self, kind: str, *, venue: str, endpoint: str | None = None, **params: Any) -> str:
        fault_id = str(self.server.faults.set(kind, venue=venue, endpoint=endpoint, **params))
        self.ids.append(fault_id)
        return fault_id

    def hits(self, venue: str, kind: str) -> int:
        """How many requests of ``venue`` a fault of ``kind`` answered during this test."""
        return self._injected().get((venue, kind), 0) - self._baseline.get((venue, kind), 0)

    def clear(self) -> None:
        for fault_id in self.ids:
            self.server.faults.clear(fault_id)
        self.ids.clear()


# Fixtures for the modules that run real CCXT against the session emulator. A module takes
# them by importing their names (``from .emulator_support import emulator, faults,
# fresh_caches, venue``), which overrides tests/connectors/conftest.py's per-test reset.


@pytest.fixture(scope="module")
def emulator(emulator: Any) -> Iterator[Any]:
    """The session's emulator (tests/conftest.py), knowing the venues it serves; markets are
    loaded once for the module, as in a process, and forgotten after it."""
    emulator.served = served_venues(emulator.url)
    market_store.clear()
    yield emulator
    market_store.clear()


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Fresh connector instances for each test; markets stay loaded for the module, as they
    do in a process (one load per venue). Tests about loading markets clear them first."""
    clear_connector_cache()
    yield
    clear_connector_cache()


@pytest.fixture(params=VENUES)
def venue(request: pytest.FixtureRequest, emulator: Any) -> str:
    require_venue(emulator, request.param)
    return str(request.param)


@pytest.fixture
def faults(emulator: Any) -> Iterator[Faults]:
    """The emulator's own fault registry; every fault is cleared when the test ends."""
    faults = Faults(emulator)
    try:
        yield faults
    finally:
        faults.clear()
        leftover = emulator.faults.list()
        emulator.faults.clear()
        assert not leftover, f"faults outlived their test: {leftover}"
