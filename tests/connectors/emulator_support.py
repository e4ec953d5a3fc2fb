"""Running the exchange emulator for connector tests, and injecting its faults.

Venues the emulator does not serve yet are skipped with the reason computed from the
emulator itself (``GET /_emulator/health`` lists the venues it serves).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors import Credentials

try:  # the emulator is built alongside; until it lands these tests skip, saying so
    from emulator.testing import running_emulator

    from emulator.accounts import DEMO_CREDENTIALS

    EMULATOR_MISSING = None
except ImportError as exc:  # pragma: no cover - depends on the tree's progress
    DEMO_CREDENTIALS, running_emulator = {}, None  # type: ignore[assignment]
    EMULATOR_MISSING = f"the emulator package is not available yet ({exc})"

VENUES = ("binance", "okx", "bybit")
SYMBOLS = {
    "binance": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
    "okx": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
    "bybit": {"spot": "BTC/USDT", "spot2": "ETH/USDT", "swap": "BTC/USDT:USDT"},
}


def demo_credentials(venue: str) -> Credentials:
    key, secret, passphrase = DEMO_CREDENTIALS[venue]
    return Credentials(key, secret, passphrase)


def served_venues(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/_emulator/health", timeout=5) as response:
        return list(json.load(response).get("venues", []))


def emulator_fixture() -> Iterator[Any]:
    if EMULATOR_MISSING:
        pytest.skip(EMULATOR_MISSING)
    with running_emulator() as server:
        server.served = served_venues(server.url)
        yield server


def require_venue(server: Any, venue: str) -> None:
    if venue not in server.served:
        pytest.skip(
            f"the emulator does not serve {venue} yet (it serves: {', '.join(server.served) or 'none'})"
        )


def requests_to(server: Any, venue: str, fragment: str = "") -> int:
    """How many requests the emulator counted for ``venue`` whose endpoint contains ``fragment``."""
    return sum(n for (v, endpoint), n in server.stats.requests.items() if v == venue and fragment in endpoint)


class Fault:
    """A fault middleware on the emulator's request pipeline, active for matching requests
    until ``times`` is used up. ``after_handler`` lets the venue process the request first
    (an order accepted, then the answer lost)."""

    def __init__(
        self,
        match: Callable[[Any], bool],
        *,
        status: int = 503,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        after_handler: bool = False,
        times: int = 1,
    ) -> None:
        self.match, self.status, self.body, self.headers = match, status, body, headers or {}
        self.delay, self.after_handler, self.remaining, self.hits = delay, after_handler, times, 0

    async def __call__(self, request: Any, call_next: Any) -> Any:
        from aiohttp import web

        if self.remaining <= 0 or not self.match(request):
            return await call_next(request)
        self.remaining -= 1
        self.hits += 1
        if self.after_handler:
            await call_next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.body is None:
            # What a venue's gateway sends with a 429/5xx: a plain page, not the venue's JSON envelope
            # (CCXT's bybit reads any JSON without retCode as an exchange error, before the status).
            return web.Response(text="injected fault", status=self.status, headers=self.headers)
        return web.json_response(self.body, status=self.status, headers=self.headers)


def inject_fault(server: Any, fault: Fault) -> Fault:
    server.middlewares.append(fault)
    return fault
