"""A lost answer leaves the order ``unknown`` (202), resolved by asking the venue by client
order id, never by re-sending (B2 #18, #19). Faults come from the emulator's registry
(``server.faults``): with ``error_after_accept`` the venue really accepts the order and only
its answer is replaced."""

from __future__ import annotations

import pytest

from tests.trading.conftest import ORDER_ENDPOINT, VENUES, limit_buy, orders_accepted
from trading.models import Order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_the_venue_accepted_leaves_the_order_unknown_with_a_202(api, seeded_emulator, status):
    before = orders_accepted(seeded_emulator, "binance")
    with seeded_emulator.faults.active(
        "error_after_accept", "binance", ORDER_ENDPOINT["binance"], status=status
    ):
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


@pytest.mark.parametrize("venue", VENUES, indirect=True)
def test_reconciliation_finds_the_unknown_order_by_client_id_without_resending(api, seeded_emulator, venue):
    before = orders_accepted(seeded_emulator, venue)
    with seeded_emulator.faults.active("error_after_accept", venue, ORDER_ENDPOINT[venue]):
        placed = api("POST", "orders/", limit_buy(seeded_emulator, venue))
    assert placed.status_code == 202, placed.json()
    order_id = placed.json()["order"]["id"]
    assert orders_accepted(seeded_emulator, venue) == before + 1

    response = api("GET", f"orders/{order_id}/?refresh=true")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "open" and body["exchange_order_id"]
    assert [(h["from_status"], h["to_status"]) for h in body["history"]] == [
        ("", "pending_submit"),
        ("pending_submit", "unknown"),
        ("unknown", "open"),
    ]
    assert orders_accepted(seeded_emulator, venue) == before + 1


def test_a_dropped_connection_after_accepting_is_unknown_too(api, seeded_emulator):
    before = orders_accepted(seeded_emulator, "binance")
    with seeded_emulator.faults.active("error_after_accept", "binance", ORDER_ENDPOINT["binance"], drop=True):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
    assert response.status_code == 202
    assert response.json()["order"]["status"] == "unknown"
    assert orders_accepted(seeded_emulator, "binance") == before + 1


def test_an_unknown_order_is_not_cancelled_before_reconciliation(api, seeded_emulator):
    with seeded_emulator.faults.active("error_after_accept", "binance", ORDER_ENDPOINT["binance"]):
        order_id = api("POST", "orders/", limit_buy(seeded_emulator, "binance")).json()["order"]["id"]
    response = api("DELETE", f"orders/{order_id}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_outcome_unknown"


def test_the_same_idempotency_key_replays_the_202_and_sends_nothing(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance")
    before = orders_accepted(seeded_emulator, "binance")
    with seeded_emulator.faults.active("error_after_accept", "binance", ORDER_ENDPOINT["binance"]):
        first = api("POST", "orders/", body, headers={"Idempotency-Key": "lost-1"})
    second = api("POST", "orders/", body, headers={"Idempotency-Key": "lost-1"})
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert Order.objects.count() == 1
    assert orders_accepted(seeded_emulator, "binance") == before + 1


@pytest.mark.parametrize("venue", VENUES, indirect=True)
def test_a_rate_limited_placement_is_a_429_with_retry_after_and_the_order_failed(api, seeded_emulator, venue):
    before = orders_accepted(seeded_emulator, venue)
    with seeded_emulator.faults.active("rate_limit", venue, ORDER_ENDPOINT[venue], retry_after=7):
        response = api("POST", "orders/", limit_buy(seeded_emulator, venue))
    assert response.status_code == 429, response.json()
    assert response["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["order"]["status"] == "failed"
    assert orders_accepted(seeded_emulator, venue) == before


def test_a_503_before_processing_is_still_unknown_not_failed(api, seeded_emulator):
    """A 5xx on placing never means 'not placed' (Binance: 'execution status UNKNOWN')."""
    before = orders_accepted(seeded_emulator, "binance")
    with seeded_emulator.faults.active("error", "binance", ORDER_ENDPOINT["binance"], status=503):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
    assert response.status_code == 202
    assert response.json()["order"]["status"] == "unknown"
    assert orders_accepted(seeded_emulator, "binance") == before
