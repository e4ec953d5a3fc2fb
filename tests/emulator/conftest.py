"""One emulator for the whole session (background thread), and CCXT clients pointed at it.

Nothing here needs Django or a database. Each test that trades gets its own API key, so balances and orders
of one test never leak into another.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest

from connectors.emulator_urls import repoint_url_tree
from emulator.accounts import DEMO_CREDENTIALS
from emulator.server import EmulatorServer
from emulator.testing import running_emulator

_keys = itertools.count(1)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator(seed=7) as server:
        yield server


def point_at(exchange: Any, server: EmulatorServer) -> Any:
    exchange.urls["api"] = repoint_url_tree(exchange.urls["api"], server.url)
    return exchange


@pytest.fixture(scope="session")
def binance_markets(emulator: EmulatorServer) -> dict[str, Any]:
    """Markets loaded once through the emulator (load_markets itself is tested separately)."""
    exchange = point_at(ccxt.binance(), emulator)
    return exchange.load_markets()


@pytest.fixture
def credentials(emulator: EmulatorServer) -> tuple[str, str]:
    """A fresh key with the default balance."""
    key, secret = f"test-key-{next(_keys)}", "test-secret"
    emulator.add_account(key, secret)
    return key, secret


@pytest.fixture
def binance(
    emulator: EmulatorServer, binance_markets: dict[str, Any], credentials: tuple[str, str]
) -> ccxt.binance:
    """A sync CCXT binance client with its own key, markets preloaded."""
    key, secret = credentials
    exchange = point_at(ccxt.binance({"apiKey": key, "secret": secret}), emulator)
    exchange.set_markets(list(binance_markets.values()))
    return exchange


@pytest.fixture
def held_market(emulator: EmulatorServer) -> Iterator[Callable[[str, str], Any]]:
    """Pin a market's price (no ticks) for a deterministic test; released afterwards."""
    held = []

    def hold(symbol: str, price: str) -> Any:
        control = emulator.market("binance", symbol)
        control.set_price(price, hold=True)
        held.append(control)
        return control

    yield hold
    for control in held:
        control.release()


DEMO_KEY, DEMO_SECRET, _ = DEMO_CREDENTIALS["binance"]
