"""Fixtures for the trading API: accounts on the session emulator, tokens per role, and
helpers for the emulator's fault injection (``server.faults``) and request pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import SEEDED_SECRETS

VENUES = ("binance", "okx", "bybit")
SYMBOL = {"binance": "BTC/USDT", "okx": "BTC/USDT", "bybit": "BTC/USDT"}
# Fault-injection endpoint patterns (emulator/faults.py globs) of order placement per venue.
ORDER_ENDPOINT = {
    "binance": "POST */api/v3/order",
    "okx": "POST */api/v5/trade/*order*",  # CCXT places OKX orders through batch-orders
    "bybit": "POST */v5/order/create",
}
# Where each venue's order placement arrives at the emulator (method, path suffix).
ORDER_PATHS = {
    "binance": ("POST", "/api/v3/order"),
    "okx": ("POST", "/api/v5/trade/batch-orders"),
    "bybit": ("POST", "/v5/order/create"),
}


@pytest.fixture(scope="session")
def seeded_emulator(emulator: Any) -> Any:
    """The session emulator, which also knows the seeded key (so every account in these
    tests signs with values the secret sweep looks for)."""
    emulator.add_account(
        SEEDED_SECRETS["api_key"], SEEDED_SECRETS["api_secret"], SEEDED_SECRETS["passphrase"]
    )
    return emulator


def require_venue(emulator: Any, venue: str) -> None:
    if venue not in emulator.adapters:
        pytest.skip(
            f"the emulator does not serve {venue} yet (it serves: {', '.join(sorted(emulator.adapters))})"
        )


@pytest.fixture
def venue(request: Any) -> str:
    """The venue under test: binance unless a test parametrizes ``venue``."""
    return getattr(request, "param", "binance")


@pytest.fixture
def trading_account(
    make_account: Callable[..., Any], teammate: Any, settings: Any, seeded_emulator: Any, venue: str
) -> Any:
    """The owner's account on ``venue`` at the emulator, shared with the teammate."""
    require_venue(seeded_emulator, venue)
    settings.EMULATOR_URL = seeded_emulator.url
    return make_account(exchange=venue, label=f"{venue} main", shared_with=[teammate])


@pytest.fixture
def tokens(
    make_token: Callable[..., Any], trading_account: Any, owner: Any, teammate: Any, outsider: Any
) -> dict[str, str]:
    """Plaintext tokens: the owner trades; the teammate may only read (a narrower grant);
    the outsider's token names the account but its user may not reach it."""
    return {
        "owner": make_token(owner, ["account:read", "trade"], [trading_account])[1],
        "teammate": make_token(teammate, ["account:read"], [trading_account])[1],
        "outsider": make_token(outsider, ["account:read", "trade"], [trading_account])[1],
    }


@pytest.fixture
def api(client: Any, tokens: dict[str, str], trading_account: Any) -> Callable[..., Any]:
    """``api("POST", "orders/", body, as_="owner", headers={})`` against the account's URLs."""

    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        as_: str = "owner",
        account: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        target = account or trading_account
        url = f"/api/v1/accounts/{target.pk}/{path}"
        extra = {"HTTP_AUTHORIZATION": f"Bearer {tokens[as_]}"} if as_ else {}
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        kwargs: dict[str, Any] = {"content_type": "application/json"} if body is not None else {}
        if body is not None:
            kwargs["data"] = body
        return getattr(client, method.lower())(url, **kwargs, **extra)

    return call


@pytest.fixture
def own_key_api(
    client: Any,
    make_account: Callable[..., Any],
    make_token: Callable[..., Any],
    owner: Any,
    settings: Any,
    seeded_emulator: Any,
) -> Callable[..., Callable[..., Any]]:
    """``own_key_api(venue, label, permissions=None)``: an ``api``-like caller (owner's token
    with read and trade) for a new account on ``venue`` whose key is its own at the emulator,
    so its state (positions, leverage) starts fresh; ``permissions`` as the emulator's
    ``add_account`` takes them (``("read",)``: a read-only key)."""

    def make(venue: str, label: str, *, permissions: tuple[str, ...] | None = None) -> Callable[..., Any]:
        require_venue(seeded_emulator, venue)
        settings.EMULATOR_URL = seeded_emulator.url
        key, secret, passphrase = f"{label}-{venue}-key-01", f"{label}-{venue}-secret-01", f"Pass-{label}-1"
        seeded_emulator.add_account(key, secret, passphrase, permissions=permissions)
        account = make_account(
            label=f"{venue} {label}", exchange=venue, api_key=key, api_secret=secret, passphrase=passphrase
        )
        token = make_token(owner, ["account:read", "trade"], [account])[1]

        def call(method: str, path: str, body: Any = None) -> Any:
            kwargs: dict[str, Any] = (
                {"content_type": "application/json", "data": body} if body is not None else {}
            )
            url = f"/api/v1/accounts/{account.pk}/{path}"
            return getattr(client, method.lower())(url, HTTP_AUTHORIZATION=f"Bearer {token}", **kwargs)

        call.account = account  # type: ignore[attr-defined]
        return call

    return make


def price_far_below(emulator: Any, venue: str, symbol: str) -> str:
    """A whole-number price at half the market: rests on the book, never fills."""
    return str(int(emulator.market(venue, symbol).price() / 2))


def price_through(emulator: Any, venue: str, symbol: str) -> str:
    """A whole-number buy price well above the market: fills at once."""
    return str(int(emulator.market(venue, symbol).price() * Decimal("1.05")) + 1)


def limit_buy(emulator: Any, venue: str, **extra: Any) -> dict[str, Any]:
    symbol = SYMBOL[venue]
    return {
        "symbol": symbol,
        "side": "buy",
        "type": "limit",
        "amount": "0.001",
        "price": price_far_below(emulator, venue, symbol),
        **extra,
    }


def orders_accepted(emulator: Any, venue: str) -> int:
    return int(emulator.stats.orders_accepted.get((venue, SEEDED_SECRETS["api_key"]), 0))


@contextmanager
def injected(emulator: Any, middleware: Callable[..., Any]) -> Iterator[None]:
    """Put ``middleware`` into the emulator's request pipeline for the block (the hook the
    emulator documents for fault injection: ``server.middlewares``)."""
    emulator.middlewares.append(middleware)
    try:
        yield
    finally:
        emulator.middlewares.remove(middleware)


def when(venue: str, method: str, path_suffix: str) -> Callable[[Any], bool]:
    return lambda r: r.venue == venue and r.method == method and r.path.endswith(path_suffix)


def skip_if_not_emulated(response: Any) -> None:
    """Skip, quoting the emulator, when it answered that it does not serve the endpoint yet."""
    if response.status_code >= 400 and "is not emulated" in response.content.decode():
        pytest.skip(f"the emulator does not serve this yet: {response.json()['error']['message'][:160]}")


def answer_instead(matches: Callable[[Any], bool], status: int, body: str) -> Callable[..., Any]:
    """A pipeline middleware answering ``body`` instead of the venue (for answers the fault
    registry does not shape, such as a venue error that echoes the API key)."""
    from aiohttp import web

    async def middleware(request: Any, call_next: Any) -> Any:
        if matches(request):
            return web.Response(status=status, text=body, content_type="application/json")
        return await call_next(request)

    return middleware
