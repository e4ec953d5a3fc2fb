"""Market-data test fixtures: an isolated cache per test, tokens, the venues under test.

Real CCXT talks to the session's emulator (``emulator`` in tests/conftest.py, so markets
load once per run); venues it does not serve yet are skipped, naming the ones it serves.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

VENUES = ("binance", "okx", "bybit")
SPOT = "BTC/USDT"
SPOT2 = "ETH/USDT"
SWAP = "BTC/USDT:USDT"


@pytest.fixture(autouse=True)
def isolated_cache(settings: Any) -> Iterator[None]:
    """Each test gets its own cache key prefix (so a test run never meets another run's or
    a development instance's entries on a shared Redis), removed afterwards."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    prefix = f"test-markets-{uuid.uuid4().hex[:12]}"
    configured = copy.deepcopy(settings.CACHES)
    configured["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = configured
    yield
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        try:
            client = backend._cache.get_client(None, write=True)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
            if keys:
                client.delete(*keys)
        except Exception:  # a test that pointed the cache at a dead Redis
            pass
    else:
        backend.clear()


@pytest.fixture(autouse=True)
def market_data_settings(settings: Any, request: pytest.FixtureRequest) -> None:
    """Market data from the session emulator (only for tests that use it)."""
    from markets.venues import clear_served_cache

    settings.MARKET_DATA_ENVIRONMENT = "emulator"
    if "emulator" in request.fixturenames:
        settings.EMULATOR_URL = request.getfixturevalue("emulator").url
    clear_served_cache()


def served_venues(server: Any) -> list[str]:
    return sorted(server.adapters)


def require_venue(server: Any, venue: str) -> None:
    served = served_venues(server)
    if venue not in served:
        pytest.skip(f"the emulator does not serve {venue} yet (it serves: {', '.join(served) or 'none'})")


@pytest.fixture(params=VENUES)
def venue(request: pytest.FixtureRequest, emulator: Any) -> str:
    require_venue(emulator, request.param)
    return str(request.param)


@pytest.fixture
def venue_calls(emulator: Any) -> Callable[..., int]:
    """``venue_calls(venue, fragment="")``: requests the emulator counted for the venue whose
    endpoint contains ``fragment`` (e.g. ``"ticker"``), so far."""

    def count(venue: str, fragment: str = "") -> int:
        return sum(
            n
            for (v, endpoint), n in list(emulator.stats.requests.items())
            if v == venue and fragment in endpoint
        )

    return count


@pytest.fixture
def api(db: Any, owner: Any, make_token: Any) -> Any:
    """An API client holding a token with ``market:read`` (``api.token`` is the model)."""
    from rest_framework.test import APIClient

    token, key = make_token(owner, ["market:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.token = token
    return client


@pytest.fixture
def remove_faults(emulator: Any) -> Iterator[None]:
    """Faults a test appends to the emulator's request pipeline are removed after it."""
    before = list(emulator.middlewares)
    yield
    emulator.middlewares[:] = before


def url(venue: str, channel: str, **query: Any) -> str:
    from urllib.parse import urlencode

    return f"/api/v1/markets/{venue}/{channel}/" + (f"?{urlencode(query)}" if query else "")


class Fault:
    """A fault on the emulator's request pipeline (its documented hook for faults): answer
    matching requests with ``status``/``body``/``headers`` instead of the venue, ``times`` times."""

    def __init__(
        self, fragment: str, status: int, body: Any, headers: dict[str, str] | None = None, times: int = 1
    ):
        self.fragment, self.status, self.body, self.headers = fragment, status, body, headers or {}
        self.remaining = times
        self.hits = 0

    async def __call__(self, request: Any, call_next: Any) -> Any:
        if self.remaining <= 0 or self.fragment not in request.endpoint:
            return await call_next(request)
        self.remaining -= 1
        self.hits += 1
        return web.json_response(self.body, status=self.status, headers=self.headers)
