"""One emulator for the whole session (background thread), and CCXT clients pointed at it.

Nothing here needs Django or a database. Each test that trades gets its own API key, so balances and orders
of one test never leak into another. The plain helpers (``client``, ``markets``, ``fresh_key``, ...) are in
``tests/emulator/clients.py``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import ccxt.pro as ccxt_pro
import pytest

from emulator.server import EmulatorServer
from emulator.testing import running_emulator
from tests.emulator.clients import client, fresh_key, markets


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator(seed=7) as server:
        yield server


@pytest.fixture(scope="session")
def binance_markets(emulator: EmulatorServer) -> dict[str, Any]:
    return markets(emulator, "binance")


@pytest.fixture(scope="session")
def okx_markets(emulator: EmulatorServer) -> dict[str, Any]:
    return markets(emulator, "okx")


@pytest.fixture
def credentials(emulator: EmulatorServer) -> tuple[str, str]:
    """A fresh Binance key with the default balance."""
    key, secret, _ = fresh_key(emulator, "test-key", "test-secret")
    return key, secret


@pytest.fixture
def okx_credentials(emulator: EmulatorServer) -> tuple[str, str, str | None]:
    return fresh_key(emulator, "okx-test-key", "okx-test-secret", "Okx-pass-1")


@pytest.fixture
def bybit_credentials(emulator: EmulatorServer) -> tuple[str, str]:
    key, secret, _ = fresh_key(emulator, "bybit-test-key", "bybit-test-secret")
    return key, secret


@pytest.fixture
def binance(emulator: EmulatorServer, credentials: tuple[str, str]) -> Any:
    """A sync CCXT binance client with its own key, markets preloaded."""
    return client(emulator, "binance", *credentials)


@pytest.fixture
def okx(emulator: EmulatorServer, okx_credentials: tuple[str, str, str]) -> Any:
    return client(emulator, "okx", *okx_credentials)


@pytest.fixture
def bybit(emulator: EmulatorServer, bybit_credentials: tuple[str, str]) -> Any:
    return client(emulator, "bybit", *bybit_credentials)


@pytest.fixture
async def async_clients(emulator: EmulatorServer) -> AsyncIterator[Callable[..., Any]]:
    """``make(venue, key=None, secret=None, passphrase=None, module=ccxt.pro, **config)``: async CCXT
    clients (:func:`tests.emulator.clients.client`), closed when the test ends."""
    made: list[Any] = []

    def make(venue: str, *credentials: Any, module: Any = ccxt_pro, **config: Any) -> Any:
        made.append(client(emulator, venue, *credentials, module=module, **config))
        return made[-1]

    yield make
    for exchange in made:
        await exchange.close()


@pytest.fixture
def held_market(emulator: EmulatorServer) -> Iterator[Callable[..., Any]]:
    """``hold(symbol, price, venue="binance")`` pins a market's price (no ticks) for a deterministic test;
    released afterwards."""
    held = []

    def hold(symbol: str, price: str, venue: str = "binance") -> Any:
        control = emulator.market(venue, symbol)
        control.set_price(price, hold=True)
        held.append(control)
        return control

    yield hold
    for control in held:
        control.release()


@pytest.fixture
def held_okx(held_market: Callable[..., Any]) -> Callable[..., Any]:
    return functools.partial(held_market, venue="okx")


@pytest.fixture
def held_bybit(held_market: Callable[..., Any]) -> Callable[..., Any]:
    return functools.partial(held_market, venue="bybit")
