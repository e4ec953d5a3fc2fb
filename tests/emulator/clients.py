"""CCXT clients pointed at the test emulator, fresh keys, and small waiting helpers for streams.

Fixtures built on these live in ``conftest.py``; tests import the functions from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import ccxt

from connectors.emulator_urls import repoint_url_tree
from emulator.server import EmulatorServer

T = TypeVar("T")

_keys = itertools.count(1)


def point_at(exchange: Any, server: EmulatorServer) -> Any:
    """Rewrite a CCXT client's URL tree to the emulator (nothing else changes)."""
    exchange.urls["api"] = repoint_url_tree(exchange.urls["api"], server.url)
    return exchange


@functools.cache
def _markets(url: str, venue: str) -> dict[str, Any]:
    exchange = getattr(ccxt, venue)({"enableRateLimit": False})
    exchange.urls["api"] = repoint_url_tree(exchange.urls["api"], url)
    return exchange.load_markets()


def markets(server: EmulatorServer, venue: str) -> dict[str, Any]:
    """The venue's markets, loaded once per emulator through the emulator itself (``load_markets`` is tested
    on its own)."""
    return _markets(server.url, venue)


def client(
    server: EmulatorServer,
    venue: str,
    key: str | None = None,
    secret: str | None = None,
    passphrase: str | None = None,
    *,
    module: Any = ccxt,
    **config: Any,
) -> Any:
    """A CCXT client of ``module`` (``ccxt``, ``ccxt.async_support`` or ``ccxt.pro``) for ``venue``, pointed
    at the emulator, markets preloaded, no client-side throttling (CCXT paces Bybit's public endpoints to
    10/s; the emulator needs no protection). ``config`` goes to the constructor."""
    options: dict[str, Any] = {"enableRateLimit": False, **config}
    if key is not None:
        options |= {"apiKey": key, "secret": secret}
    if passphrase is not None:
        options["password"] = passphrase
    exchange = point_at(getattr(module, venue)(options), server)
    exchange.set_markets(list(markets(server, venue).values()))
    return exchange


def fresh_key(
    server: EmulatorServer, prefix: str, secret: str, passphrase: str | None = None, **account: Any
) -> tuple[str, str, str | None]:
    """A new key ``<prefix>-<n>`` with the default balance (``account``: ``balances``, ``permissions``)."""
    key = f"{prefix}-{next(_keys)}"
    server.add_account(key, secret, passphrase, **account)
    return key, secret, passphrase


def ws_url(server: EmulatorServer, tail: str) -> str:
    """The emulator's WebSocket URL for ``tail`` (``/stream.binance.com/ws/btcusdt@bookTicker``)."""
    return server.url.replace("http://", "ws://") + tail


async def distinct(
    watch: Callable[[], Awaitable[Any]], count: int = 2, key: Callable[[Any], Any] = lambda x: x
) -> list[Any]:
    """``count`` successive distinct values of ``key(await watch())`` (15 s at most)."""
    seen: list[Any] = []
    async with asyncio.timeout(15):
        while len(seen) < count:
            value = key(await watch())
            if not seen or value != seen[-1]:
                seen.append(value)
    return seen


async def until(
    watch: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], seconds: float = 10
) -> Any:
    """The first ``await watch()`` that ``accept`` takes, within ``seconds``."""
    async with asyncio.timeout(seconds):
        while True:
            value = await watch()
            if accept(value):
                return value


def wait_for(probe: Callable[[], T], accept: Callable[[T], bool], seconds: float = 30) -> T:
    """Call ``probe`` until ``accept`` takes its value (sync code; polls every 50 ms). The deadline is
    generous on purpose: it only bounds a failing test, a passing one returns as soon as the condition
    holds, so a loaded machine is slower but not flaky."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {seconds} s; last value: {value!r}")
        time.sleep(0.05)


@contextlib.contextmanager
def funding_every(server: EmulatorServer, interval_ms: int) -> Iterator[None]:
    """Automatic funding every ``interval_ms`` inside the block (0: none, only ``apply_funding``), then the
    previous interval again. The interval is the session emulator's, so always restore it."""
    previous = server.set_funding_interval(interval_ms)
    try:
        yield
    finally:
        server.set_funding_interval(previous)
