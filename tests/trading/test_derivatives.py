"""POST leverage, position-mode (OKX), positions/tpsl and positions/margin (Bybit)."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import pytest

from accounts.models import AuditEvent
from tests.trading.conftest import require_venue, skip_if_not_emulated

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "5"}),
    ("position-mode/", {"hedged": False}),
    ("positions/tpsl/", {"symbol": "BTC/USDT:USDT", "take_profit": "90000"}),
    ("positions/margin/", {"symbol": "BTC/USDT:USDT", "amount": "10"}),
]


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_they_need_the_trade_scope_and_a_reachable_account(api, path, body):
    assert api("POST", path, body, as_="teammate").status_code == 403
    assert api("POST", path, body, as_="outsider").status_code == 404
    assert api("POST", path, body, as_=None).status_code == 401
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.VENUE_SETTING).exists()


@pytest.mark.parametrize("path", ["position-mode/", "positions/tpsl/", "positions/margin/"])
def test_a_venue_without_the_operation_is_a_400_not_supported(api, seeded_emulator, path):
    body = dict(dict(ENDPOINTS)[path])
    response = api("POST", path, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_supported"


def test_leverage_on_a_spot_market_is_a_400_naming_the_symbol(api, seeded_emulator):
    response = api("POST", "leverage/", {"symbol": "BTC/USDT", "leverage": "5"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_input",
        "field": "symbol",
        "message": "BTC/USDT is a spot market; this needs a swap or future",
    }
    audit = AuditEvent.objects.get(action=AuditEvent.Action.VENUE_SETTING)
    assert audit.details["setting"] == "leverage" and audit.details["outcome"] == "invalid_input"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "-2"}, "leverage"),
        ("leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "lots"}, "leverage"),
        ("position-mode/", {"hedged": "maybe"}, "hedged"),
        ("positions/tpsl/", {"symbol": "BTC/USDT:USDT"}, "take_profit"),
        ("positions/tpsl/", {"symbol": "BTC/USDT:USDT", "stop_loss": "-1"}, "stop_loss"),
        ("positions/margin/", {"symbol": "BTC/USDT:USDT", "amount": "0"}, "amount"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(api, path, body, field):
    response = api("POST", path, body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("venue", "path", "body"),
    [
        ("okx", "leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "5"}),
        ("bybit", "leverage/", {"symbol": "BTC/USDT:USDT", "leverage": "5"}),
        ("okx", "position-mode/", {"hedged": False}),
        ("bybit", "positions/tpsl/", {"symbol": "BTC/USDT:USDT", "take_profit": "0"}),
    ],
    indirect=["venue"],
)
def test_the_setting_reaches_the_venue_and_is_audited(api, seeded_emulator, venue, path, body):
    require_venue(seeded_emulator, venue)
    with open_position(api, body["symbol"]) if path == "positions/tpsl/" else nullcontext():
        response = api("POST", path, body)
    skip_if_not_emulated(response)
    assert response.status_code == 200, response.json()
    assert response.json()["ok"] is True
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.VENUE_SETTING, details__outcome="ok").count() == 1
    )


@contextmanager
def open_position(api, symbol, amount="0.001"):
    """A small long position on ``symbol`` for the block (Bybit refuses TP/SL on a flat
    position), closed with a reduce-only market sell afterwards."""
    opened = api("POST", "orders/", {"symbol": symbol, "side": "buy", "type": "market", "amount": amount})
    assert opened.status_code == 201, opened.json()
    try:
        yield
    finally:
        close = {"symbol": symbol, "side": "sell", "type": "market", "amount": amount, "reduce_only": True}
        closed = api("POST", "orders/", close)
        assert closed.status_code == 201, closed.json()


def test_tpsl_without_an_open_position_is_a_400_saying_so(own_key_api, seeded_emulator):
    call = own_key_api("bybit", "flat")
    response = call("POST", "positions/tpsl/", {"symbol": "BTC/USDT:USDT", "take_profit": "90000"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_open_position" and error["field"] == "symbol"
    assert error["message"].startswith("BTC/USDT:USDT has no open position")
    audit = AuditEvent.objects.get(action=AuditEvent.Action.VENUE_SETTING)
    assert audit.details["setting"] == "tpsl" and audit.details["outcome"] == "no_open_position"


def test_setting_the_same_leverage_again_is_a_200_that_changed_nothing(own_key_api, seeded_emulator):
    call = own_key_api("bybit", "sameleverage")
    body = {"symbol": "BTC/USDT:USDT", "leverage": "6"}
    first, again = call("POST", "leverage/", body), call("POST", "leverage/", body)
    assert first.status_code == 200 and first.json()["setting"]["changed"] is True
    assert again.status_code == 200, again.json()
    assert again.json()["setting"] == {"symbol": "BTC/USDT:USDT", "leverage": "6", "changed": False}
