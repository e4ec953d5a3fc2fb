"""GET orders (list, detail), DELETE one, POST cancel-all; per-account access (BOLA)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from tests.trading.conftest import limit_buy, price_through
from trading.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed(api, seeded_emulator):
    """Three open BTC/USDT buys and one filled one."""
    ids = [api("POST", "orders/", limit_buy(seeded_emulator, "binance")).json()["id"] for _ in range(3)]
    filled = api(
        "POST",
        "orders/",
        limit_buy(seeded_emulator, "binance", price=price_through(seeded_emulator, "binance", "BTC/USDT")),
    ).json()
    assert filled["status"] == "filled"
    return {"open": ids, "filled": filled["id"]}


class TestList:
    def test_it_lists_the_accounts_orders_newest_first_with_money_as_strings(self, api, placed):
        response = api("GET", "orders/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 4
        assert [o["id"] for o in body["results"]] == [placed["filled"], *reversed(placed["open"])]
        assert all(isinstance(o["amount"], str) and isinstance(o["price"], str) for o in body["results"])

    def test_it_filters_by_status_and_symbol(self, api, placed):
        assert [o["id"] for o in api("GET", "orders/?status=filled").json()["results"]] == [placed["filled"]]
        assert api("GET", "orders/?status=open").json()["count"] == 3
        assert api("GET", "orders/?symbol=ETH/USDT").json()["count"] == 0

    def test_an_unknown_status_filter_is_a_400_naming_it(self, api, placed):
        response = api("GET", "orders/?status=nope")
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "status"

    def test_it_paginates_with_a_bounded_limit(self, api, placed):
        page = api("GET", "orders/?limit=2").json()
        assert len(page["results"]) == 2 and page["count"] == 4 and "offset=2" in page["next"]
        assert len(api("GET", "orders/?limit=100000").json()["results"]) == 4  # capped at 200, not refused

    def test_a_read_only_teammate_may_list(self, api, placed):
        assert api("GET", "orders/", as_="teammate").json()["count"] == 4

    def test_an_outsider_gets_404(self, api, placed):
        response = api("GET", "orders/", as_="outsider")
        assert response.status_code == 404

    def test_another_accounts_orders_are_not_listed(
        self, api, placed, make_account, owner, make_token, client
    ):
        other = make_account(label="second", exchange="binance")
        _, key = make_token(owner, ["account:read"], [other])
        response = client.get(f"/api/v1/accounts/{other.pk}/orders/", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.json()["count"] == 0


class TestDetail:
    def test_it_shows_the_order_with_its_history(self, api, placed):
        response = api("GET", f"orders/{placed['filled']}/")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "filled"
        assert [(h["from_status"], h["to_status"]) for h in body["history"]] == [
            ("", "pending_submit"),
            ("pending_submit", "filled"),
        ]

    def test_refresh_asks_the_venue(self, api, placed):
        response = api("GET", f"orders/{placed['open'][0]}/?refresh=true")
        assert response.status_code == 200 and response.json()["status"] == "open"

    def test_an_order_of_another_account_is_a_404_through_this_account(
        self, api, placed, make_account, owner, make_token, client
    ):
        other = make_account(label="second", exchange="binance")
        _, key = make_token(owner, ["account:read"], [other])
        response = client.get(
            f"/api/v1/accounts/{other.pk}/orders/{placed['open'][0]}/", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_the_teammate_reads_and_the_outsider_gets_404(self, api, placed):
        assert api("GET", f"orders/{placed['open'][0]}/", as_="teammate").status_code == 200
        assert api("GET", f"orders/{placed['open'][0]}/", as_="outsider").status_code == 404

    def test_a_missing_order_is_a_404(self, api, placed):
        assert api("GET", "orders/999999/").status_code == 404


class TestCancel:
    def test_it_cancels_an_open_order_at_the_venue(self, api, placed, trading_account):
        from accounts.services import account_connector

        order_id = placed["open"][0]
        response = api("DELETE", f"orders/{order_id}/")
        assert response.status_code == 200
        assert response.json()["status"] == "canceled"
        order = Order.objects.get(pk=order_id)
        assert order.status == "canceled"
        assert order.events.last().to_status == "canceled"
        venue = account_connector(account=trading_account).fetch_order(order.exchange_order_id, "BTC/USDT")
        assert venue["status"] == "canceled"
        audit = AuditEvent.objects.get(action=AuditEvent.Action.ORDER_CANCELED)
        assert audit.details["order_id"] == order_id and audit.details["outcome"] == "canceled"

    def test_cancelling_twice_is_a_409(self, api, placed):
        order_id = placed["open"][0]
        api("DELETE", f"orders/{order_id}/")
        response = api("DELETE", f"orders/{order_id}/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "order_not_open"

    def test_a_filled_order_cannot_be_cancelled(self, api, placed):
        response = api("DELETE", f"orders/{placed['filled']}/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "order_not_open"

    def test_an_order_cancelled_elsewhere_is_synced_and_a_409(self, api, placed, trading_account):
        from accounts.services import account_connector

        order = Order.objects.get(pk=placed["open"][0])
        account_connector(account=trading_account).cancel_order(order.exchange_order_id, "BTC/USDT")
        response = api("DELETE", f"orders/{order.pk}/")
        assert response.status_code == 409
        order.refresh_from_db()
        assert order.status == "canceled"

    def test_a_read_only_teammate_may_not_cancel_and_an_outsider_gets_404(self, api, placed):
        assert api("DELETE", f"orders/{placed['open'][0]}/", as_="teammate").status_code == 403
        assert api("DELETE", f"orders/{placed['open'][0]}/", as_="outsider").status_code == 404
        assert Order.objects.get(pk=placed["open"][0]).status == "open"


class TestCancelAll:
    def test_it_cancels_every_open_order_of_the_account(self, api, placed):
        response = api("POST", "orders/cancel-all/", {})
        assert response.status_code == 200
        assert sorted(o["id"] for o in response.json()["canceled"]) == placed["open"]
        assert response.json()["failed"] == []
        assert Order.objects.filter(status="canceled").count() == 3
        assert Order.objects.get(pk=placed["filled"]).status == "filled"

    def test_it_can_be_limited_to_a_symbol(self, api, placed):
        response = api("POST", "orders/cancel-all/", {"symbol": "ETH/USDT"})
        assert response.json() == {"canceled": [], "failed": []}
        assert Order.objects.filter(status="open").count() == 3

    def test_it_needs_the_trade_scope(self, api, placed):
        assert api("POST", "orders/cancel-all/", {}, as_="teammate").status_code == 403
        assert api("POST", "orders/cancel-all/", {}, as_="outsider").status_code == 404
        assert Order.objects.filter(status="open").count() == 3
