"""A lost answer leaves the order ``unknown`` (202), resolved by asking the venue by client
order id, never by re-sending (B2 #18, #19). Faults are injected through the emulator's
request pipeline (``server.middlewares``, emulator/ADAPTERS.md §5): the emulator really
processes the order, only its answer is replaced."""

from __future__ import annotations

import pytest

from tests.trading.conftest import (
    ORDER_PATHS,
    answer_after_accepting,
    answer_instead,
    injected,
    limit_buy,
    orders_accepted,
    when,
)
from trading.models import Order

pytestmark = pytest.mark.django_db

PLACE = when("binance", *ORDER_PATHS["binance"])


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_the_venue_accepted_leaves_the_order_unknown_with_a_202(api, seeded_emulator, status):
    before = orders_accepted(seeded_emulator, "binance")
    with injected(seeded_emulator, answer_after_accepting(PLACE, status)):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["error"]["code"] == "outcome_unknown"
    assert body["error"]["field"] is None
    assert body["error"]["client_order_id"] == body["order"]["client_order_id"]
    assert body["order"]["status"] == "unknown" and body["order"]["exchange_order_id"] == ""
    order = Order.objects.get(pk=body["order"]["id"])
    assert order.status == "unknown" and order.last_error_code == "outcome_unknown"
    # Exactly one order reached the venue: nothing was re-sent.
    assert orders_accepted(seeded_emulator, "binance") == before + 1


def test_reconciliation_finds_the_unknown_order_by_client_id_without_resending(api, seeded_emulator):
    before = orders_accepted(seeded_emulator, "binance")
    with injected(seeded_emulator, answer_after_accepting(PLACE)):
        order_id = api("POST", "orders/", limit_buy(seeded_emulator, "binance")).json()["order"]["id"]

    response = api("GET", f"orders/{order_id}/?refresh=true")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "open" and body["exchange_order_id"]
    assert [(h["from_status"], h["to_status"]) for h in body["history"]] == [
        ("", "pending_submit"),
        ("pending_submit", "unknown"),
        ("unknown", "open"),
    ]
    assert orders_accepted(seeded_emulator, "binance") == before + 1


def test_an_unknown_order_is_not_cancelled_before_reconciliation(api, seeded_emulator):
    with injected(seeded_emulator, answer_after_accepting(PLACE)):
        order_id = api("POST", "orders/", limit_buy(seeded_emulator, "binance")).json()["order"]["id"]
    response = api("DELETE", f"orders/{order_id}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_outcome_unknown"


def test_the_same_idempotency_key_replays_the_202_and_sends_nothing(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance")
    before = orders_accepted(seeded_emulator, "binance")
    with injected(seeded_emulator, answer_after_accepting(PLACE)):
        first = api("POST", "orders/", body, headers={"Idempotency-Key": "lost-1"})
    second = api("POST", "orders/", body, headers={"Idempotency-Key": "lost-1"})
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before + 1


def test_a_rate_limited_placement_is_a_429_with_retry_after_and_the_order_failed(api, seeded_emulator):
    before = orders_accepted(seeded_emulator, "binance")
    refuse = answer_instead(PLACE, 429, '{"code":-1003,"msg":"Too many requests."}', {"Retry-After": "7"})
    with injected(seeded_emulator, refuse):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["order"]["status"] == "failed"
    assert orders_accepted(seeded_emulator, "binance") == before


def test_a_503_before_processing_is_still_unknown_not_failed(api, seeded_emulator):
    """A 5xx on placing never means 'not placed' (Binance: 'execution status UNKNOWN')."""
    refuse = answer_instead(PLACE, 503, '{"code":-1008,"msg":"Service unavailable"}')
    with injected(seeded_emulator, refuse):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
    assert response.status_code == 202
    assert response.json()["order"]["status"] == "unknown"
