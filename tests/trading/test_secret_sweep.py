"""No seeded secret in any response of any endpoint (B2 #27): bodies and headers, success
and error paths, including venue errors that echo the key back."""

from __future__ import annotations

import logging

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import AuditEvent
from tests.conftest import SEEDED_SECRETS
from tests.trading.conftest import (
    ORDER_ENDPOINT,
    ORDER_PATHS,
    answer_instead,
    injected,
    limit_buy,
    when,
)
from trading.models import IdempotencyKey, OrderEvent

pytestmark = pytest.mark.django_db

# Routes with an account in the path, each swept explicitly below (success and errors).
ACCOUNT_ROUTES = {
    "account-list",
    "account-detail",
    "account-test",
    "account-balance",
    "account-positions",
    "position-tpsl",
    "position-margin",
    "account-leverage",
    "account-position-mode",
    "order-list",
    "order-cancel-all",
    "order-detail",
}
ECHO = (
    f'{{"code":-2014,"msg":"API-key {SEEDED_SECRETS["api_key"]} / {SEEDED_SECRETS["api_secret"]} invalid"}}'
)


def _api_routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.name

    return [(route, name) for route, name in walk(get_resolver().url_patterns) if route.startswith("api/v1/")]


@pytest.fixture
def sweep(client):
    seen = []

    def call(method, url, body=None, **headers):
        kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
        response = getattr(client, method)(url, **kwargs, **headers)
        seen.append((method, url, response))
        return response

    call.seen = seen
    return call


def _leaks(response):
    text = (
        response.content.decode(errors="replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.items())
    )
    return [name for name, value in SEEDED_SECRETS.items() if value in text]


def test_no_endpoint_returns_a_seeded_secret(
    sweep, seeded_emulator, trading_account, make_account, make_token, owner, settings, caplog
):
    settings.MARKET_DATA_ENVIRONMENT = "emulator"
    caplog.set_level(logging.DEBUG)
    routes = _api_routes()
    assert {
        name for route, name in routes if "account_id" in route or name == "account-list"
    } == ACCOUNT_ROUTES

    bad = make_account(
        label="rejected keys",
        exchange="binance",
        api_key=SEEDED_SECRETS["api_key"],
        api_secret=SEEDED_SECRETS["api_secret"] + "-wrong",
    )
    _, key = make_token(
        owner, ["market:read", "account:read", "trade", "accounts:admin"], [trading_account, bad]
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    base, worse = f"/api/v1/accounts/{trading_account.pk}/", f"/api/v1/accounts/{bad.pk}/"
    place = when("binance", *ORDER_PATHS["binance"])

    # accounts and their management
    sweep("get", "/api/v1/accounts/", **auth)
    for url in (base, worse, "/api/v1/accounts/999999/"):
        sweep("get", url, **auth)
    created = sweep(
        "post",
        "/api/v1/accounts/",
        {"label": "swept", "exchange": "binance", "environment": "emulator", **SEEDED_SECRETS},
        **auth,
    )
    sweep(
        "post",
        "/api/v1/accounts/",
        {"label": "swept", "exchange": "binance", "environment": "emulator", **SEEDED_SECRETS},
        **auth,
    )  # 409
    sweep(
        "post",
        "/api/v1/accounts/",
        {
            "label": "x",
            "exchange": "nope",
            "environment": "emulator",
            "api_key": [SEEDED_SECRETS["api_key"]],
            "api_secret": {"v": SEEDED_SECRETS["api_secret"]},
        },
        **auth,
    )  # 400
    sweep(
        "patch",
        worse,
        {"api_secret": SEEDED_SECRETS["api_secret"] + "-wrong", "label": "still wrong"},
        **auth,
    )
    sweep("patch", worse, {"environment": SEEDED_SECRETS["passphrase"]}, **auth)  # 400
    for url in (base, worse):
        sweep("post", url + "test/", **auth)
        sweep("get", url + "balance/", **auth)
        sweep("get", url + "balance/?include_zero=1", **auth)
        sweep("get", url + "positions/", **auth)
    with injected(seeded_emulator, answer_instead(when("binance", "GET", "/api/v3/account"), 400, ECHO)):
        sweep("get", base + "balance/", **auth)

    # derivatives
    for path, body in (
        ("leverage/", {"symbol": "BTC/USDT", "leverage": "3"}),
        ("leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "3"}),
        ("position-mode/", {"hedged": True}),
        ("positions/tpsl/", {"symbol": "BTC/USDT:USDT", "stop_loss": "1"}),
        ("positions/margin/", {"symbol": "BTC/USDT:USDT", "amount": "1"}),
    ):
        sweep("post", base + path, body, **auth)

    # orders: placed, invalid, rejected by the venue, rejected with the key echoed, unknown, replayed
    order = sweep("post", base + "orders/", limit_buy(seeded_emulator, "binance"), **auth).json()
    sweep("post", base + "orders/", {**limit_buy(seeded_emulator, "binance"), "amount": "x"}, **auth)
    sweep("post", base + "orders/", limit_buy(seeded_emulator, "binance", amount="100"), **auth)
    sweep("post", worse + "orders/", limit_buy(seeded_emulator, "binance"), **auth)
    with injected(seeded_emulator, answer_instead(place, 400, ECHO)):
        sweep("post", base + "orders/", limit_buy(seeded_emulator, "binance"), **auth)
    with seeded_emulator.faults.active("error_after_accept", "binance", ORDER_ENDPOINT["binance"]):
        sweep(
            "post",
            base + "orders/",
            limit_buy(seeded_emulator, "binance"),
            HTTP_IDEMPOTENCY_KEY="sweep",
            **auth,
        )
    sweep(
        "post", base + "orders/", limit_buy(seeded_emulator, "binance"), HTTP_IDEMPOTENCY_KEY="sweep", **auth
    )
    sweep("get", base + "orders/", **auth)
    sweep("get", base + f"orders/{order['id']}/?refresh=true", **auth)
    sweep("delete", base + f"orders/{order['id']}/", **auth)
    sweep("delete", base + f"orders/{order['id']}/", **auth)  # 409
    sweep("post", base + "orders/cancel-all/", {}, **auth)
    sweep("post", worse + "orders/cancel-all/", {}, **auth)

    # deleting: refused with orders, done without
    sweep("delete", base, **auth)
    sweep("delete", f"/api/v1/accounts/{created.json()['id']}/", **auth)

    # every other API route (market data, streams): a GET with sample arguments
    for route, _name in routes:
        if "account_id" in route or route == "api/v1/accounts/":
            continue
        url = "/" + route.replace("<str:exchange>", "binance") + "?symbol=BTC/USDT"
        sweep("get", url, **auth)
        sweep("post", url, {}, **auth)

    statuses = {response.status_code for _, _, response in sweep.seen}
    assert {200, 201, 202, 204, 400, 404, 409} <= statuses  # success and error paths were both swept
    assert all(response.status_code < 500 for _, _, response in sweep.seen), [
        (m, u, r.status_code) for m, u, r in sweep.seen if r.status_code >= 500
    ]
    leaks = [(m, u, r.status_code, _leaks(r)) for m, u, r in sweep.seen if _leaks(r)]
    assert leaks == []

    stored = " ".join(
        [str(v) for v in IdempotencyKey.objects.values_list("response_body", flat=True)]
        + [str(v) for v in OrderEvent.objects.values_list("payload", flat=True)]
        + [str(v) for v in AuditEvent.objects.values_list("details", flat=True)]
    )
    assert not [name for name, value in SEEDED_SECRETS.items() if value in stored]
    assert not [name for name, value in SEEDED_SECRETS.items() if value in caplog.text]
