"""POST /api/v1/accounts/{id}/orders/: validate, journal first, send once, answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.db import connections

from accounts.models import AuditEvent
from tests.conftest import SEEDED_SECRETS
from tests.trading.conftest import (
    ORDER_PATHS,
    SYMBOL,
    VENUES,
    injected,
    limit_buy,
    orders_accepted,
    price_through,
    when,
)
from trading.models import Order, OrderEvent, TradingGuard

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("venue", VENUES, indirect=True)
def test_a_limit_order_far_from_the_market_is_placed_and_open(api, seeded_emulator, venue, trading_account):
    before = orders_accepted(seeded_emulator, venue)
    body = limit_buy(seeded_emulator, venue)

    response = api("POST", "orders/", body)

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "open"
    assert data["symbol"] == SYMBOL[venue]
    assert data["amount"] == "0.001" and data["price"] == body["price"] and data["filled"] == "0"
    assert data["exchange_order_id"]
    assert response["Location"] == f"/api/v1/accounts/{trading_account.pk}/orders/{data['id']}/"
    order = Order.objects.get(pk=data["id"])
    assert order.account == trading_account and order.client_order_id == data["client_order_id"]
    assert order.amount == Decimal("0.001")
    assert [(e.from_status, e.to_status) for e in order.events.all()] == [
        ("", "pending_submit"),
        ("pending_submit", "open"),
    ]
    assert orders_accepted(seeded_emulator, venue) == before + 1


def test_the_venue_knows_the_order_by_our_client_order_id(api, seeded_emulator, trading_account):
    from accounts.services import account_connector

    data = api("POST", "orders/", limit_buy(seeded_emulator, "binance", client_order_id="mine0001")).json()
    assert data["client_order_id"] == "mine0001"
    at_venue = account_connector(account=trading_account).fetch_order_by_client_id("BTC/USDT", "mine0001")
    assert at_venue["id"] == data["exchange_order_id"] and at_venue["status"] == "open"


def test_a_marketable_limit_order_fills(api, seeded_emulator):
    body = limit_buy(seeded_emulator, "binance", price=price_through(seeded_emulator, "binance", "BTC/USDT"))
    response = api("POST", "orders/", body)
    assert response.status_code == 201
    assert response.json()["status"] == "filled"
    assert response.json()["filled"] == "0.001"
    assert Decimal(response.json()["average"]) > 0


def test_a_reused_client_order_id_is_a_409_and_is_not_sent(api, seeded_emulator):
    assert (
        api("POST", "orders/", limit_buy(seeded_emulator, "binance", client_order_id="dup00001")).status_code
        == 201
    )
    before = orders_accepted(seeded_emulator, "binance")
    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance", client_order_id="dup00001"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_client_order_id"
    assert orders_accepted(seeded_emulator, "binance") == before
    assert Order.objects.filter(client_order_id="dup00001").count() == 1


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"symbol": "NOPE/USDT"}, "bad_symbol", "symbol"),
        ({"amount": "0.000001"}, "invalid_input", "amount"),  # below the market minimum
        ({"amount": "0.0010001"}, "invalid_input", "amount"),  # finer than the step
        ({"price": "30000.001"}, "invalid_input", "price"),  # finer than the tick
        ({"amount": "-1"}, "invalid_input", "amount"),
        ({"amount": "abc"}, "invalid_input", "amount"),
        ({"amount": "NaN"}, "invalid_input", "amount"),
        ({"price": "0"}, "invalid_input", "price"),
        ({"price": None}, "required", "price"),
        ({"side": "hold"}, "invalid_choice", "side"),
        ({"type": "stop"}, "invalid_choice", "type"),
        ({"client_order_id": "spaces are bad"}, "invalid_input", "client_order_id"),
        ({"reduce_only": True}, "invalid_input", "reduce_only"),  # spot market
        ({"post_only": True, "type": "market", "price": None}, "invalid_input", "post_only"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field_and_nothing_is_journaled_or_sent(
    api, seeded_emulator, change, code, field
):
    before = orders_accepted(seeded_emulator, "binance")
    body = {**limit_buy(seeded_emulator, "binance"), **change}
    response = api("POST", "orders/", body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["message"]
    assert not Order.objects.exists()
    assert orders_accepted(seeded_emulator, "binance") == before


def test_time_in_force_other_than_gtc_is_refused_until_the_connector_supports_it(api, seeded_emulator):
    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance", time_in_force="IOC"))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "not_supported",
        "field": "time_in_force",
        "message": "time_in_force IOC is not supported for binance yet",
    }
    assert not Order.objects.exists()


def test_the_venue_rejecting_an_order_is_a_400_with_the_rejected_order(api, seeded_emulator):
    # 100 BTC at half the market is far more USDT than the account holds.
    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance", amount="100"))
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "insufficient_funds"
    assert body["order"]["status"] == "rejected"
    order = Order.objects.get(pk=body["order"]["id"])
    assert order.status == "rejected" and order.last_error_code == "insufficient_funds"


@pytest.mark.parametrize("exchange", VENUES)
def test_an_order_from_a_read_only_key_is_a_403_exchange_permission_denied_and_rejected(
    own_key_api, seeded_emulator, exchange
):
    # Binance -2015 (checked against one signed read), OKX 50120, Bybit 10005: a 403 (B2 #36)
    # told apart from our own 403 (permission_denied: the token's scope) by its code, and not
    # exchange_credentials_rejected (a 400: the venue refusing the key itself).
    call = own_key_api(exchange, "readonly", permissions=("read",))
    response = call("POST", "orders/", limit_buy(seeded_emulator, exchange))
    assert response.status_code == 403, response.json()
    body = response.json()
    assert body["error"]["code"] == "exchange_permission_denied"
    assert "lacks the trade permission" in body["error"]["message"]
    assert body["order"]["status"] == "rejected"
    order = Order.objects.get(pk=body["order"]["id"])
    assert order.status == "rejected" and order.last_error_code == "exchange_permission_denied"
    assert seeded_emulator.stats.orders_accepted_by_key().get(f"readonly-{exchange}-key-01", 0) == 0


@pytest.mark.parametrize("exchange", VENUES)
def test_a_setting_from_a_read_only_key_is_a_403_exchange_permission_denied(
    own_key_api, seeded_emulator, exchange
):
    call = own_key_api(exchange, "readonly-lev", permissions=("read",))
    response = call("POST", "leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "5"})
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "exchange_permission_denied" and "lacks the trade permission" in error["message"]
    # Reading stays allowed with the same key.
    assert call("GET", "balance/").status_code == 200


def test_a_venue_refusing_a_read_names_the_read_permission_and_our_own_403_keeps_its_code(rf):
    from rest_framework.exceptions import PermissionDenied as OurPermissionDenied

    from connector_site.api_errors import exception_handler
    from connectors.errors import PermissionDenied

    venue = exception_handler(PermissionDenied("IP not whitelisted"), {"request": rf.get("/")})
    assert venue.status_code == 403 and venue.data["error"]["code"] == "exchange_permission_denied"
    assert "lacks the read permission" in venue.data["error"]["message"]
    assert venue.data["error"]["message"].endswith("IP not whitelisted")
    ours = exception_handler(OurPermissionDenied(), {"request": rf.get("/")})
    assert ours.status_code == 403 and ours.data["error"]["code"] == "permission_denied"


def test_mass_assigned_fields_are_ignored(api, seeded_emulator, trading_account, make_account, outsider):
    other = make_account(owner=outsider, label="theirs", exchange="binance")
    body = limit_buy(
        seeded_emulator,
        "binance",
        status="filled",
        account=other.pk,
        account_id=other.pk,
        filled="1",
        exchange_order_id="x",
        created_by=outsider.pk,
    )
    response = api("POST", "orders/", body)
    assert response.status_code == 201
    order = Order.objects.get(pk=response.json()["id"])
    assert order.account == trading_account and order.status == "open" and order.filled == 0
    assert order.exchange_order_id != "x" and order.created_by != outsider


def test_placing_writes_one_audit_row_without_secrets(api, seeded_emulator, trading_account, owner):
    data = api("POST", "orders/", limit_buy(seeded_emulator, "binance")).json()
    rows = AuditEvent.objects.filter(action=AuditEvent.Action.ORDER_PLACED)
    assert rows.count() == 1
    row = rows.get()
    assert row.actor == owner and row.account == trading_account and row.exchange == "binance"
    assert row.details["client_order_id"] == data["client_order_id"]
    assert row.ip_address == "127.0.0.1"
    assert not any(secret in str(row.details) for secret in SEEDED_SECRETS.values())


class TestGuards:
    def test_the_kill_switch_refuses_new_orders_with_409(self, api, seeded_emulator, trading_account):
        TradingGuard.objects.create(account=trading_account, kill_switch=True)
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "trading_disabled"
        assert not Order.objects.exists()

    def test_a_symbol_outside_the_allowed_list_is_a_400_on_symbol(
        self, api, seeded_emulator, trading_account
    ):
        TradingGuard.objects.create(account=trading_account, allowed_symbols=["ETH/USDT"])
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "symbol_not_allowed"
        assert response.json()["error"]["field"] == "symbol"

    def test_an_allowed_symbol_passes(self, api, seeded_emulator, trading_account):
        TradingGuard.objects.create(account=trading_account, allowed_symbols=["BTC/USDT"])
        assert api("POST", "orders/", limit_buy(seeded_emulator, "binance")).status_code == 201

    def test_an_order_above_the_max_notional_is_a_400_on_amount(self, api, seeded_emulator, trading_account):
        TradingGuard.objects.create(account=trading_account, max_notional=Decimal("10"))
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "max_notional_exceeded"
        assert response.json()["error"]["field"] == "amount"
        assert not Order.objects.exists()

    def test_a_market_order_is_valued_at_the_market_for_the_max_notional(
        self, api, seeded_emulator, trading_account
    ):
        TradingGuard.objects.create(account=trading_account, max_notional=Decimal("10"))
        body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
        response = api("POST", "orders/", body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "max_notional_exceeded"

    def test_an_inactive_account_refuses_orders(self, api, seeded_emulator, trading_account):
        trading_account.is_active = False
        trading_account.save()
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "account_inactive"


class TestAccess:
    def test_a_read_only_teammate_may_not_place_orders(self, api, seeded_emulator):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"), as_="teammate")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_an_outsider_gets_404_even_with_a_grant(self, api, seeded_emulator):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"), as_="outsider")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert not Order.objects.exists()

    def test_no_token_is_a_401(self, api, seeded_emulator):
        response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"), as_=None)
        assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_the_order_row_is_committed_before_the_venue_sees_the_request(api, seeded_emulator, trading_account):
    """Journal first: when the order request reaches the emulator, another database
    connection already sees the row, with its client order id, as pending_submit."""
    method, suffix = ORDER_PATHS["binance"]
    seen: list[tuple[str, str]] = []

    def read_from_another_connection() -> None:
        try:
            seen.extend(
                Order.objects.filter(client_order_id="journal0001").values_list("client_order_id", "status")
            )
        finally:
            connections.close_all()

    async def observer(request, call_next):
        if when("binance", method, suffix)(request):
            # A fresh thread has its own connection: it sees committed rows only.
            await asyncio.to_thread(read_from_another_connection)
        return await call_next(request)

    with injected(seeded_emulator, observer):
        response = api(
            "POST", "orders/", limit_buy(seeded_emulator, "binance", client_order_id="journal0001")
        )

    assert response.status_code == 201
    assert seen == [("journal0001", "pending_submit")]
    assert OrderEvent.objects.filter(order__client_order_id="journal0001").count() == 2
