"""Reconciliation: an order of unknown outcome is looked up by its client order id and never
re-sent; a venue order we did not place is recorded as external (B2 #18, #19, #21, #22).

The venue's lost answer is injected by the emulator's ``error_after_accept`` fault: the
emulator really accepts the order, only its answer becomes a 502.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.jobs.conftest import ccxt_client, far_below, place

pytestmark = pytest.mark.django_db

PLACE = "POST api.binance.com/api/v3/order"


def accepted(emulator: Any, account: Any) -> int:
    return int(emulator.stats.orders_accepted.get(("binance", account.api_key), 0))


def unsent(account: Any, client_order_id: str, price: Decimal) -> Any:
    """An order journaled (``pending_submit``) whose sending never happened."""
    from trading.models import Order

    return Order.objects.create(
        account=account,
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=price,
    )


def history(order: Any) -> list[tuple[str, str]]:
    return [(e.from_status, e.to_status) for e in order.events.order_by("id")]


def test_an_unknown_order_the_venue_accepted_is_recorded_with_its_true_state(
    venue_account: Any, owner: Any, emulator: Any, faults: Any
) -> None:
    from trading.reconciliation import order_reconcile

    faults.set("error_after_accept", venue="binance", endpoint=PLACE, count=1)
    order = place(venue_account, owner, far_below(emulator))
    assert order.status == "unknown"
    assert accepted(emulator, venue_account) == 1

    order = order_reconcile(order=order)

    assert order.status == "open" and order.exchange_order_id
    assert history(order) == [("", "pending_submit"), ("pending_submit", "unknown"), ("unknown", "open")]
    assert accepted(emulator, venue_account) == 1  # looked up, never re-sent
    open_orders = ccxt_client(emulator, venue_account).fetch_open_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in open_orders] == [order.client_order_id]


def test_an_order_the_venue_never_received_fails_only_after_the_grace_period_and_enough_checks(
    venue_account: Any, owner: Any, emulator: Any, faults: Any, settings: Any
) -> None:
    from trading.models import Order
    from trading.reconciliation import order_reconcile

    settings.RECONCILE_GRACE_SECONDS = 60
    # The request never reaches the matching engine: a 503 before handling, so nothing exists.
    faults.set("error", venue="binance", endpoint=PLACE, count=1, status=503)
    order = place(venue_account, owner, far_below(emulator))
    assert order.status == "unknown"

    for _ in range(4):  # more checks than needed, but inside the grace period
        order = order_reconcile(order=order)
    assert order.status == "unknown" and order.reconcile_misses == 4

    later = timezone.now() + timedelta(seconds=61)
    order = order_reconcile(order=order, now=later)

    assert order.status == "failed"
    assert accepted(emulator, venue_account) == 0
    verdict = order.events.order_by("id").last()
    assert (verdict.from_status, verdict.to_status) == ("unknown", "failed")
    assert verdict.payload["checks"] == 5
    assert verdict.payload["venue_answer"] == "order_not_found"
    assert verdict.payload["client_order_id"] == order.client_order_id
    assert verdict.payload["waited_seconds"] >= 60
    assert Order.objects.get(pk=order.pk).status == "failed"


def test_a_miss_right_after_sending_is_not_a_verdict(
    venue_account: Any, owner: Any, emulator: Any, faults: Any
) -> None:
    from trading.reconciliation import order_reconcile

    faults.set("error", venue="binance", endpoint=PLACE, count=1, status=503)
    order = place(venue_account, owner, far_below(emulator))

    order = order_reconcile(order=order)

    assert order.status == "unknown" and order.reconcile_misses == 1


def test_an_order_stuck_pending_submit_becomes_unknown_and_is_looked_up(
    venue_account: Any, owner: Any, emulator: Any
) -> None:
    from trading.models import Order, OrderEvent, OrderStatus
    from trading.reconciliation import order_reconcile, orders_to_reconcile

    # The web process died between journaling and sending: the intent exists, the order does not.
    order = unsent(venue_account, "jobsStuck0001", far_below(emulator))
    OrderEvent.objects.create(
        order=order, from_status="", to_status=OrderStatus.PENDING_SUBMIT, reason="test"
    )
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert list(orders_to_reconcile()) == [order]

    order = order_reconcile(order=order)

    assert order.status == "unknown" and order.reconcile_misses == 1
    assert history(order)[-1] == ("pending_submit", "unknown")
    assert accepted(emulator, venue_account) == 0


def test_a_fresh_pending_order_is_left_to_its_sender(venue_account: Any, emulator: Any) -> None:
    from trading.reconciliation import order_reconcile, orders_to_reconcile

    order = unsent(venue_account, "jobsFresh0001", far_below(emulator))

    assert list(orders_to_reconcile()) == []
    assert order_reconcile(order=order).status == "pending_submit"


def test_an_open_order_placed_outside_the_system_is_recorded_once_as_external(
    venue_account: Any, emulator: Any
) -> None:
    from trading.external_orders import ExternalOrder
    from trading.models import Order
    from trading.reconciliation import account_open_orders_sync

    outside = ccxt_client(emulator, venue_account).create_order(
        "BTC/USDT", "limit", "buy", 0.002, float(far_below(emulator))
    )

    account_open_orders_sync(account=venue_account)
    account_open_orders_sync(account=venue_account)  # a rerun (or a redelivered task)

    external = ExternalOrder.objects.get(account=venue_account)
    assert external.exchange_order_id == str(outside["id"])
    assert external.symbol == "BTC/USDT" and external.side == "buy" and external.amount == Decimal("0.002")
    assert external.is_open
    assert not Order.objects.filter(account=venue_account).exists()  # never adopted into our journal


def test_an_external_order_cancelled_on_the_venue_is_marked_gone(venue_account: Any, emulator: Any) -> None:
    from trading.external_orders import ExternalOrder
    from trading.reconciliation import account_open_orders_sync

    client = ccxt_client(emulator, venue_account)
    outside = client.create_order("BTC/USDT", "limit", "buy", 0.002, float(far_below(emulator)))
    account_open_orders_sync(account=venue_account)
    client.cancel_order(outside["id"], "BTC/USDT")

    account_open_orders_sync(account=venue_account)

    external = ExternalOrder.objects.get(account=venue_account)
    assert external.gone_at is not None and not external.is_open


def test_our_open_order_filled_on_the_venue_is_recorded_filled_once(
    venue_account: Any, owner: Any, emulator: Any
) -> None:
    from trading.external_orders import ExternalOrder
    from trading.reconciliation import account_open_orders_sync

    market = emulator.market("binance", "BTC/USDT")
    price = Decimal(int(market.price() * Decimal("0.98")))
    order = place(venue_account, owner, price)
    assert order.status == "open"
    try:
        market.set_price(price * Decimal("0.99"), hold=True)  # the market comes down through it

        account_open_orders_sync(account=venue_account)
        account_open_orders_sync(account=venue_account)
    finally:
        market.release()

    order.refresh_from_db()
    assert order.status == "filled" and order.filled == Decimal("0.001")
    assert history(order).count(("open", "filled")) == 1
    assert not ExternalOrder.objects.filter(account=venue_account).exists()
