"""Orders are checked against the market before anything is sent; money is Decimal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors import BadSymbol, Credentials, ExchangeUnavailable, InvalidInput
from connectors.types import to_decimal, to_decimals

from .conftest import inject


@pytest.mark.parametrize(
    ("symbol", "type_", "side", "amount", "price", "field"),
    [
        ("BTC/USDT", "limit", "buy", "0.0000001", "30000", "amount"),  # below min 0.000048
        ("BTC/USDT", "limit", "buy", "0.0012345678", "30000", "amount"),  # finer than 0.000001
        ("BTC/USDT", "limit", "buy", "0.01", "30000.05", "price"),  # finer than the 0.1 tick
        ("BTC/USDT", "limit", "buy", "0.01", None, "price"),
        ("BTC/USDT", "limit", "buy", "-1", "30000", "amount"),
        ("BTC/USDT", "limit", "buy", "NaN", "30000", "amount"),
        ("BTC/USDT", "limit", "buy", "lots", "30000", "amount"),
        ("BTC/USDT", "limit", "hold", "0.01", "30000", "side"),
        ("BTC/USDT", "stop", "buy", "0.01", "30000", "type"),
        ("BTC/USDT", "limit", "buy", "0.0001", "1", "amount"),  # order value below the minimum cost
    ],
)
def test_invalid_orders_are_refused_before_sending(
    offline_connector: Any, symbol: str, type_: str, side: str, amount: str, price: str | None, field: str
) -> None:
    connector = offline_connector()
    injected = inject(connector, "create_order", {"id": "never"})

    with pytest.raises(InvalidInput) as caught:
        connector.create_order(symbol, type_, side, amount, price)

    assert caught.value.field == field
    assert injected.calls == []


def test_an_unknown_symbol_is_refused_without_a_request(offline_connector: Any) -> None:
    connector = offline_connector()
    injected = inject(connector, "fetch_ticker", {"symbol": "NOPE/USDT"})

    with pytest.raises(BadSymbol) as caught:
        connector.fetch_ticker("NOPE/USDT")

    assert caught.value.field == "symbol" and injected.calls == []


def test_a_valid_order_is_sent_once_with_decimal_exact_numbers_and_our_client_id(
    offline_connector: Any,
) -> None:
    connector = offline_connector()
    injected = inject(
        connector, "create_order", {"id": "42", "amount": 0.1, "price": 30000.1, "timestamp": 1}
    )

    order = connector.create_order(
        "BTC/USDT", "limit", "buy", Decimal("0.1"), "30000.1", client_order_id="my-id_1"
    )

    symbol, type_, side, amount, price, params = injected.calls[0]
    assert (symbol, type_, side, amount, price) == ("BTC/USDT", "limit", "buy", 0.1, 30000.1)
    assert params["clientOrderId"] == "my-id_1"
    assert order["amount"] == Decimal("0.1") and order["price"] == Decimal("30000.1")
    assert order["clientOrderId"] == "my-id_1" and order["timestamp"] == 1


def test_a_client_order_id_the_venue_would_refuse_is_rejected(offline_connector: Any) -> None:
    connector = offline_connector()
    with pytest.raises(InvalidInput) as caught:
        connector.create_order("BTC/USDT", "limit", "buy", "0.01", "30000", client_order_id="has space")
    assert caught.value.field == "client_order_id"


def test_generated_client_order_ids_suit_okx_binance_and_bybit(offline_connector: Any) -> None:
    import re

    ids = {offline_connector().new_client_order_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", i) for i in ids)


def test_floats_become_exact_decimals_and_timestamps_stay_integers() -> None:
    converted = to_decimals(
        {
            "last": 0.1,
            "baseVolume": 3,
            "timestamp": 1700000000000,
            "info": {"raw": 0.1},
            "ohlcv": [[1700000000000, 1.1, 2.2, 0.5, 1.5, 10.0]],
            "bid": float("nan"),
        }
    )
    assert converted["last"] == Decimal("0.1") and converted["baseVolume"] == Decimal(3)
    assert converted["timestamp"] == 1700000000000 and isinstance(converted["timestamp"], int)
    assert converted["info"] == {"raw": 0.1}
    assert converted["ohlcv"][0] == [
        1700000000000,
        Decimal("1.1"),
        Decimal("2.2"),
        Decimal("0.5"),
        Decimal("1.5"),
        Decimal("10.0"),
    ]
    assert converted["bid"] is None
    assert to_decimal("1e400") is not None and to_decimal(float("inf")) is None


def test_leverage_and_margin_mode_need_a_contract_market(offline_connector: Any) -> None:
    connector = offline_connector()
    with pytest.raises(InvalidInput):
        connector.set_leverage(5, "BTC/USDT")
    with pytest.raises(InvalidInput) as caught:
        connector.set_margin_mode("both", "BTC/USDT:USDT")
    assert caught.value.field == "margin_mode"


def test_already_being_in_a_margin_mode_is_success(offline_connector: Any) -> None:
    import ccxt

    connector = offline_connector()
    inject(connector, "set_margin_mode", ccxt.MarginModeAlreadySet("bybit 110026"))
    assert connector.set_margin_mode("cross", "BTC/USDT:USDT")["changed"] is False


def test_okx_sets_the_margin_mode_with_the_leverage_keeping_the_current_one_unless_given(
    offline_connector: Any,
) -> None:
    connector = offline_connector(venue="okx")
    asked = inject(connector, "fetch_leverage", {"longLeverage": 7, "shortLeverage": 7})
    sent = inject(connector, "set_margin_mode", {"code": "0"})

    connector.set_margin_mode("isolated", "BTC/USDT:USDT")
    connector.set_margin_mode("cross", "BTC/USDT:USDT", leverage=3)
    with pytest.raises(InvalidInput) as caught:
        connector.set_margin_mode("cross", "BTC/USDT:USDT", leverage=500)

    assert asked.calls == [("BTC/USDT:USDT", {"marginMode": "isolated"})]
    assert sent.calls == [
        ("isolated", "BTC/USDT:USDT", {"lever": 7}),
        ("cross", "BTC/USDT:USDT", {"lever": 3}),
    ]
    assert caught.value.field == "leverage"


def test_bybit_adjusts_margin_through_the_add_margin_endpoint_once(offline_connector: Any) -> None:
    import ccxt

    connector = offline_connector(venue="bybit")
    sent = inject(connector, "private_post_v5_position_add_margin", {"retCode": 0, "result": {}})

    added = connector.adjust_margin("BTC/USDT:USDT", "10.50")
    reduced = connector.adjust_margin("BTC/USDT:USDT", Decimal("-2"))
    for bad, field in (("0", "amount"), ("x", "amount")):
        with pytest.raises(InvalidInput) as caught:
            connector.adjust_margin("BTC/USDT:USDT", bad)
        assert caught.value.field == field
    with pytest.raises(InvalidInput):
        connector.adjust_margin("BTC/USDT", "1")
    lost = inject(connector, "private_post_v5_position_add_margin", ccxt.RequestTimeout("bybit timeout"))
    with pytest.raises(ExchangeUnavailable):
        connector.adjust_margin("BTC/USDT:USDT", "1")

    request = {"category": "linear", "symbol": "BTCUSDT", "positionIdx": 0}
    assert sent.calls == [({**request, "margin": "10.5"},), ({**request, "margin": "-2"},)]
    assert (added["type"], reduced["type"], reduced["amount"]) == ("add", "reduce", Decimal(-2))
    assert len(lost.calls) == 1  # never retried


def test_credentials_never_show_their_secrets() -> None:
    creds = Credentials("AKIDEXAMPLE12345678", "s3cr3t-value-xyz", "my-passphrase")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "s3cr3t-value-xyz" not in text and "my-passphrase" not in text
        assert "AKIDEXAMPLE1234" not in text and "passphrase='********'" in text
    assert (
        creds.fingerprint
        == Credentials("AKIDEXAMPLE12345678", "s3cr3t-value-xyz", "my-passphrase").fingerprint
    )
    assert creds.fingerprint != Credentials("AKIDEXAMPLE12345678", "s3cr3t-value-xyz", "other").fingerprint
    assert "s3cr3t" not in creds.fingerprint
