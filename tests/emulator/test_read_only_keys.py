"""Key permissions on every venue, with unmodified CCXT: a read-only key
(``server.add_account(key, secret, permissions=("read",))``) reads, its writes are refused with the venue's
own answer (so CCXT raises what it raises against the real venue), and the venue's permissions endpoint
reports it."""

from __future__ import annotations

import ccxt
import pytest

from emulator.accounts import permissions_of
from tests.emulator.clients import client, fresh_key


def read_only_key(emulator, venue: str) -> tuple[str, str, str | None]:
    return fresh_key(emulator, f"{venue}-reader", "reader-secret", "Reader-pass-1", permissions=("read",))


def test_binance_read_only_key_reads_but_may_not_trade(emulator):
    key, secret, _ = read_only_key(emulator, "binance")
    exchange = client(emulator, "binance", key, secret)
    # Binance answers HTTP 401 {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}: CCXT
    # maps it to AuthenticationError ...
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    assert exchange.fetch_balance()["BTC"]["free"] == 10
    assert exchange.fetch_open_orders("BTC/USDT") == [] and exchange.fetch_positions(["BTC/USDT:USDT"]) == []
    # ... unless the key has already been accepted on the spot API: then CCXT reads -2015 as a temporary ban.
    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 20_000)
    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        exchange.set_leverage(5, "BTC/USDT:USDT")
    restrictions = exchange.sapi_get_account_apirestrictions()
    assert restrictions["enableReading"] is True
    assert restrictions["enableSpotAndMarginTrading"] is False and restrictions["enableFutures"] is False
    assert emulator.stats.orders_accepted_by_key().get(key, 0) == 0


def test_okx_read_only_key_reads_but_may_not_trade(emulator):
    credentials = read_only_key(emulator, "okx")
    exchange = client(emulator, "okx", *credentials)
    assert exchange.fetch_balance()["BTC"]["free"] == 10
    assert exchange.fetch_open_orders("BTC/USDT") == []
    assert exchange.private_get_account_config()["data"][0]["perm"] == "read_only"
    # OKX answers {"code":"50120","msg":"API key doesn't have permission"}; CCXT 4.5.90 has no entry for
    # 50120, so it raises a plain ExchangeError (the code is in the message).
    for write in (
        lambda: exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000),
        lambda: exchange.cancel_order("123", "BTC/USDT"),
        lambda: exchange.set_leverage(5, "BTC/USDT:USDT", {"marginMode": "cross"}),
    ):
        with pytest.raises(ccxt.ExchangeError, match="50120") as refused:
            write()
        assert type(refused.value) is ccxt.ExchangeError
    assert emulator.stats.orders_accepted_by_key().get(credentials[0], 0) == 0


def test_bybit_read_only_key_reads_but_may_not_trade(emulator):
    key, secret, _ = read_only_key(emulator, "bybit")
    exchange = client(emulator, "bybit", key, secret)
    assert exchange.fetch_balance()["BTC"]["free"] == 10
    assert exchange.fetch_open_orders("BTC/USDT") == []
    info = exchange.private_get_v5_user_query_api()["result"]
    assert info["readOnly"] == 1 and info["permissions"]["Spot"] == []
    assert info["permissions"]["ContractTrade"] == []
    # Bybit answers retCode 10005 "Permission denied, please check your API key permissions.":
    # PermissionDenied.
    with pytest.raises(ccxt.PermissionDenied, match="10005"):
        exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    with pytest.raises(ccxt.PermissionDenied, match="10005"):
        exchange.set_leverage(5, "BTC/USDT:USDT")
    assert emulator.stats.orders_accepted_by_key().get(key, 0) == 0


def test_every_venue_reports_a_key_that_may_also_withdraw(emulator):
    key, secret, passphrase = fresh_key(emulator, "perm", "s", "Pass-w-1", permissions=("trade", "withdraw"))
    restrictions = client(emulator, "binance", key, secret).sapi_get_account_apirestrictions()
    assert restrictions["enableSpotAndMarginTrading"] and restrictions["enableWithdrawals"]
    okx = client(emulator, "okx", key, secret, passphrase)
    assert okx.private_get_account_config()["data"][0]["perm"] == "read_only,trade,withdraw"
    bybit = client(emulator, "bybit", key, secret).private_get_v5_user_query_api()["result"]
    assert bybit["readOnly"] == 0 and "Withdraw" in bybit["permissions"]["Wallet"]


def test_permissions_default_to_read_and_trade_and_the_key_name_shorthand_still_works():
    assert permissions_of("plain-key") == {"read", "trade"}
    assert permissions_of("plain-key", ["trade"]) == {"read", "trade"}  # reading is always allowed
    assert permissions_of("my-readonly-key") == {"read"}
    assert permissions_of("my-withdraw-key") == {"read", "trade", "withdraw"}
    assert permissions_of("my-readonly-key", ("read", "trade")) == {"read", "trade"}  # explicit wins
    with pytest.raises(ValueError, match="unknown permissions"):
        permissions_of("k", ("read", "transfer"))
