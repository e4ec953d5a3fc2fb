"""Our own per-token limit on order placement (B2 #33): a tool cannot spam the venue and
get the shared egress IP banned for everyone."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from tests.trading.conftest import limit_buy, orders_accepted
from tests.trading.test_idempotency import _concurrently
from trading.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def test_orders_beyond_the_limit_are_a_429_with_retry_after_and_not_sent(api, seeded_emulator, settings):
    settings.ORDER_RATE_LIMIT = "3/3600"
    before = orders_accepted(seeded_emulator, "binance")
    statuses = [api("POST", "orders/", limit_buy(seeded_emulator, "binance")).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert Order.objects.count() == 3
    assert orders_accepted(seeded_emulator, "binance") == before + 3


def test_a_spoofed_forwarded_for_header_does_not_reset_the_limit(api, seeded_emulator, settings):
    settings.ORDER_RATE_LIMIT = "1/3600"
    assert api("POST", "orders/", limit_buy(seeded_emulator, "binance")).status_code == 201
    response = api(
        "POST", "orders/", limit_buy(seeded_emulator, "binance"), headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert response.status_code == 429


def test_the_limit_is_per_token(api, seeded_emulator, settings, make_token, owner, trading_account, client):
    settings.ORDER_RATE_LIMIT = "1/3600"
    assert api("POST", "orders/", limit_buy(seeded_emulator, "binance")).status_code == 201
    _, other = make_token(owner, ["trade"], [trading_account])
    response = client.post(
        f"/api/v1/accounts/{trading_account.pk}/orders/",
        limit_buy(seeded_emulator, "binance"),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {other}",
    )
    assert response.status_code == 201


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_exactly_under_concurrent_posts(seeded_emulator, trading_account, tokens, settings):
    settings.ORDER_RATE_LIMIT = "5/3600"
    url = f"/api/v1/accounts/{trading_account.pk}/orders/"

    def post():
        return Client().post(
            url,
            limit_buy(seeded_emulator, "binance"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tokens['owner']}",
        )

    responses = _concurrently(12, post)
    assert sorted(r.status_code for r in responses) == [201] * 5 + [429] * 7
    assert Order.objects.count() == 5
