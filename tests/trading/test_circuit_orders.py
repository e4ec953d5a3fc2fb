"""An order placed while the venue's circuit is open (connectors/circuit.py) is refused before
it is sent: journaled ``failed`` with a 429 and Retry-After, never left ``unknown``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.trading.conftest import ORDER_PATHS, limit_buy, orders_accepted
from trading.models import Order

pytestmark = pytest.mark.django_db

BALANCE = "GET */api/v3/account"


def order_requests(emulator: Any) -> int:
    method, path = ORDER_PATHS["binance"]
    return int(
        emulator.call(
            lambda: sum(
                n
                for (venue, endpoint), n in emulator.stats.requests.items()
                if venue == "binance" and endpoint.startswith(method) and endpoint.endswith(path)
            )
        )
    )


@pytest.mark.parametrize("opened_by", ["rate_limit", "failures"])
def test_an_order_during_an_open_circuit_is_not_sent_and_failed_not_unknown(
    api: Any, seeded_emulator: Any, trading_account: Any, opened_by: str, monkeypatch: Any
) -> None:
    from accounts.services import account_connector

    assert api("GET", "balance/").status_code == 200  # markets loaded, keys good
    # The instance the views use in this thread (the factory caches it beyond this test,
    # hence monkeypatch for its knobs).
    connector = account_connector(account=trading_account)
    monkeypatch.setattr(connector, "retries", 0)
    if opened_by == "rate_limit":
        with seeded_emulator.faults.active("rate_limit", "binance", BALANCE, retry_after=30, count=1):
            assert api("GET", "balance/").status_code == 429
    else:
        monkeypatch.setattr(connector, "circuit_failure_threshold", 1)
        with seeded_emulator.faults.active("error", "binance", BALANCE, status=503, count=1):
            assert api("GET", "balance/").status_code == 503
    accepted, sent = orders_accepted(seeded_emulator, "binance"), order_requests(seeded_emulator)

    response = api("POST", "orders/", limit_buy(seeded_emulator, "binance"))

    assert response.status_code == 429, response.json()
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert body["error"]["code"] == "rate_limited" and "not sent" in body["error"]["message"]
    assert body["order"]["status"] == "failed"
    assert Order.objects.get(pk=body["order"]["id"]).status == "failed"
    assert order_requests(seeded_emulator) == sent and orders_accepted(seeded_emulator, "binance") == accepted
