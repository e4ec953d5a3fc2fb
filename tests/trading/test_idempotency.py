"""Idempotency-Key on order placement: the same key returns the first result, never a
second order, also under concurrent requests (B2 #20)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.trading.conftest import limit_buy, orders_accepted
from trading.models import IdempotencyKey, Order

pytestmark = pytest.mark.django_db


def test_the_same_key_and_body_return_the_first_response_and_place_one_order(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance")
    before = orders_accepted(seeded_emulator, "binance")

    first = api("POST", "orders/", body, headers={"Idempotency-Key": "key-1"})
    second = api("POST", "orders/", body, headers={"Idempotency-Key": "key-1"})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert second["Location"] == first["Location"]
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before + 1
    record = IdempotencyKey.objects.get(key="key-1")
    assert record.order_id == first.json()["id"] and record.response_status == 201


def test_the_same_key_with_another_body_is_a_409(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance")
    api("POST", "orders/", body, headers={"Idempotency-Key": "key-2"})
    response = api("POST", "orders/", {**body, "amount": "0.002"}, headers={"Idempotency-Key": "key-2"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_the_key_is_scoped_to_the_token(api, seeded_emulator, make_token, owner, trading_account, client):
    body = limit_buy(seeded_emulator, "binance")
    api("POST", "orders/", body, headers={"Idempotency-Key": "shared"})
    _, other_key = make_token(owner, ["account:read", "trade"], [trading_account])
    response = client.post(
        f"/api/v1/accounts/{trading_account.pk}/orders/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {other_key}",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert response.status_code == 201
    assert Order.objects.count() == 2


def test_a_request_refused_before_journaling_does_not_use_up_the_key(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance")
    bad = api("POST", "orders/", {**body, "symbol": "NOPE/USDT"}, headers={"Idempotency-Key": "key-3"})
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.filter(key="key-3").exists()
    assert api("POST", "orders/", body, headers={"Idempotency-Key": "key-3"}).status_code == 201


def test_a_rejected_order_replays_its_400_without_resending(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance", amount="100")  # more than the balance
    first = api("POST", "orders/", body, headers={"Idempotency-Key": "key-4"})
    before = orders_accepted(seeded_emulator, "binance")
    second = api("POST", "orders/", body, headers={"Idempotency-Key": "key-4"})
    assert first.status_code == second.status_code == 400
    assert second.json() == first.json() and second.json()["order"]["status"] == "rejected"
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ", "a b"])
def test_a_malformed_key_is_a_400_naming_the_header(api, seeded_emulator, key):
    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"), headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not Order.objects.exists()


def test_a_key_still_in_flight_is_a_409_with_retry_after(api, seeded_emulator, settings, owner, tokens):
    from accounts.models import ApiToken

    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    body = limit_buy(seeded_emulator, "binance")
    api("POST", "orders/", body, headers={"Idempotency-Key": "probe"})  # learn the fingerprint
    probe = IdempotencyKey.objects.get(key="probe")
    token = ApiToken.objects.get_from_key(tokens["owner"])
    IdempotencyKey.objects.create(user=owner, token=token, key="busy", fingerprint=probe.fingerprint)
    # Same body, same path: only the key differs, and the fingerprint does not cover it.
    response = api("POST", "orders/", body, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "request_in_progress"
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 1


def test_a_stale_in_flight_key_without_an_order_is_taken_over(api, seeded_emulator, owner, tokens):
    from accounts.models import ApiToken

    body = limit_buy(seeded_emulator, "binance")
    api("POST", "orders/", body, headers={"Idempotency-Key": "probe"})
    fingerprint = IdempotencyKey.objects.get(key="probe").fingerprint
    token = ApiToken.objects.get_from_key(tokens["owner"])
    stale = IdempotencyKey.objects.create(user=owner, token=token, key="died", fingerprint=fingerprint)
    IdempotencyKey.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    response = api("POST", "orders/", body, headers={"Idempotency-Key": "died"})
    assert response.status_code == 201
    assert Order.objects.count() == 2


def test_a_stale_in_flight_key_with_an_order_answers_with_that_order(api, seeded_emulator, owner, tokens):
    """The first request died after journaling: the order is the answer, never a new one."""

    body = limit_buy(seeded_emulator, "binance")
    first = api("POST", "orders/", body, headers={"Idempotency-Key": "probe"}).json()
    record = IdempotencyKey.objects.get(key="probe")
    IdempotencyKey.objects.filter(pk=record.pk).update(
        response_status=None, response_body=None, created_at=timezone.now() - timedelta(minutes=5)
    )
    response = api("POST", "orders/", body, headers={"Idempotency-Key": "probe"})
    assert response.status_code == 201 and response.json()["id"] == first["id"]
    assert Order.objects.count() == 1


def _concurrently(n, call):
    barrier = threading.Barrier(n)

    def run(_):
        barrier.wait()
        try:
            return call()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_place_exactly_one_order(seeded_emulator, trading_account, tokens):
    body = limit_buy(seeded_emulator, "binance")
    before = orders_accepted(seeded_emulator, "binance")
    url = f"/api/v1/accounts/{trading_account.pk}/orders/"

    def post():
        return Client().post(
            url,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tokens['owner']}",
            HTTP_IDEMPOTENCY_KEY="race-1",
        )

    responses = _concurrently(8, post)

    assert [r.status_code for r in responses] == [201] * 8, [r.json() for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == 7
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_client_order_id_place_exactly_one_order(
    seeded_emulator, trading_account, tokens
):
    body = limit_buy(seeded_emulator, "binance", client_order_id="race0002")
    before = orders_accepted(seeded_emulator, "binance")
    url = f"/api/v1/accounts/{trading_account.pk}/orders/"

    def post():
        return Client().post(
            url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {tokens['owner']}"
        )

    responses = _concurrently(8, post)

    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "duplicate_client_order_id"
    }
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before + 1
