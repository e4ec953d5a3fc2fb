"""The operator's admin: orders with their history (read-only) and the per-account guard."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from trading.models import Order, OrderEvent, TradingGuard

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(account):
    order = Order.objects.create(
        account=account,
        client_order_id="adm0001",
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=Decimal("30000"),
        status="open",
    )
    OrderEvent.objects.create(order=order, from_status="", to_status="pending_submit", reason="journaled")
    OrderEvent.objects.create(order=order, from_status="pending_submit", to_status="open", reason="accepted")
    return order


def test_the_order_list_and_page_show_the_history_read_only(client, superuser, order):
    client.force_login(superuser)
    listing = client.get("/admin/trading/order/?q=adm0001")
    assert listing.status_code == 200 and b"adm0001" in listing.content
    page = client.get(f"/admin/trading/order/{order.pk}/change/")
    assert page.status_code == 200
    assert b"journaled" in page.content and b"accepted" in page.content
    assert b'name="_save"' not in page.content  # nothing to save: orders change only through services
    assert client.post(f"/admin/trading/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_order_events_are_append_only(order):
    event = order.events.first()
    with pytest.raises(Exception, match="append-only"):
        event.save()
    with pytest.raises(Exception, match="append-only"):
        event.delete()


def add_guard(client, superuser, account, **fields):
    """Submit the admin's "add trading guard" form as the superuser."""
    client.force_login(superuser)
    return client.post("/admin/trading/tradingguard/add/", {"account": account.pk, **fields})


def test_an_operator_sets_a_guard_and_it_is_audited(client, superuser, account):
    response = add_guard(
        client,
        superuser,
        account,
        allowed_symbols='["BTC/USDT", "ETH/USDT"]',
        max_notional="1000",
        kill_switch="on",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    guard = TradingGuard.objects.get(account=account)
    assert (
        guard.kill_switch and guard.max_notional == 1000 and guard.allowed_symbols == ["BTC/USDT", "ETH/USDT"]
    )
    audit = AuditEvent.objects.filter(account=account, action=AuditEvent.Action.CHANGED).first()
    assert "trading_guard.kill_switch" in audit.details["fields"]


def test_a_guard_with_a_malformed_symbol_list_is_refused(client, superuser, account):
    response = add_guard(
        client, superuser, account, allowed_symbols='{"not": "a list"}', max_notional="", kill_switch=""
    )
    assert response.status_code == 200 and b"errornote" in response.content
    assert not TradingGuard.objects.exists()
