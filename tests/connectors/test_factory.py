"""The factory: allow-listed ids only, environments, instance caching."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from typing import Any

import ccxt
import pytest

from connectors import (
    SUPPORTED_EXCHANGES,
    Credentials,
    Environment,
    NotSupported,
    create_connector,
    create_stream_connector,
    exchange_choices,
)
from connectors.base import Connector
from connectors.binance import BinanceConnector
from connectors.bybit import BybitConnector
from connectors.factory import close_stream_connectors
from connectors.okx import OkxConnector

EMULATOR = "http://127.0.0.1:8799"


def test_every_allow_listed_id_exists_in_the_installed_ccxt_with_streaming() -> None:
    assert {"binance", "okx", "bybit", "kraken"} <= set(SUPPORTED_EXCHANGES)
    for exchange_id in SUPPORTED_EXCHANGES:
        assert exchange_id in ccxt.exchanges and exchange_id in ccxt.pro.exchanges, exchange_id


def test_exchange_choices_fit_a_django_choices_field() -> None:
    choices = exchange_choices()
    assert [c[0] for c in choices] == list(SUPPORTED_EXCHANGES)
    assert ("okx", "OKX") in choices and all(isinstance(label, str) and label for _, label in choices)


@pytest.mark.parametrize("bad", ["ftx", "http://169.254.169.254", "binance/../x", "", "BINANCEUS"])
def test_it_rejects_exchange_ids_outside_the_allow_list(bad: str) -> None:
    with pytest.raises(NotSupported) as caught:
        create_connector(bad)
    assert caught.value.field == "exchange"
    assert caught.value.code == "not_supported"


def test_aliases_and_case_resolve_to_the_allow_listed_id() -> None:
    assert create_connector("GateIO").exchange_id == "gate"
    assert create_connector("OKX").exchange_id == "okx"


def test_venue_modules_are_used_and_other_ids_get_the_base_connector() -> None:
    assert type(create_connector("binance")) is BinanceConnector
    assert type(create_connector("okx")) is OkxConnector
    assert type(create_connector("bybit")) is BybitConnector
    assert type(create_connector("kraken")) is Connector


def test_the_same_thread_and_keys_reuse_one_instance() -> None:
    creds = Credentials("key-a-123456", "secret-a")
    assert create_connector("binance", creds) is create_connector(
        "binance", Credentials("key-a-123456", "secret-a")
    )


def test_edited_keys_never_meet_the_old_instance() -> None:
    before = create_connector("binance", Credentials("key-a-123456", "secret-a"))
    after = create_connector("binance", Credentials("key-a-123456", "secret-b"))
    assert before is not after
    assert after.exchange.secret == "secret-b"


def test_public_and_keyed_and_each_environment_get_their_own_instance() -> None:
    creds = Credentials("key-a-123456", "secret-a")
    instances = {
        id(create_connector("binance")),
        id(create_connector("binance", creds)),
        id(create_connector("binance", creds, environment=Environment.SANDBOX)),
        id(create_connector("binance", creds, environment="emulator", emulator_url=EMULATOR)),
    }
    assert len(instances) == 4


def test_each_thread_gets_its_own_instance() -> None:
    here = create_connector("binance")
    there: list[Any] = []
    thread = threading.Thread(target=lambda: there.append(create_connector("binance")))
    thread.start()
    thread.join()
    assert there[0] is not here and there[0].exchange is not here.exchange


def test_stream_connectors_are_cached_per_event_loop() -> None:
    async def twice() -> tuple[Any, Any]:
        first, second = create_stream_connector("binance"), create_stream_connector("binance")
        await close_stream_connectors()
        return first, second

    a1, a2 = asyncio.run(twice())
    b1, _ = asyncio.run(twice())
    assert a1 is a2
    assert b1 is not a1
    assert a1.closed


def test_a_stream_connector_closes_its_ccxt_instance_once() -> None:
    # Shutdown closes the manager's connectors, then every cached one: CCXT's close waits
    # out its exit timeout each time, so a second close must not reach it.
    async def close_twice() -> int:
        connector = create_stream_connector("binance")
        ccxt_close = connector.exchange.close
        calls = []

        async def counted_close() -> None:
            calls.append(1)
            await ccxt_close()

        connector.exchange.close = counted_close
        await connector.close()
        await close_stream_connectors()
        await connector.close()
        return len(calls)

    assert asyncio.run(close_twice()) == 1


def test_the_emulator_environment_needs_an_address() -> None:
    with pytest.raises(NotSupported, match="emulator_url"):
        create_connector("binance", environment=Environment.EMULATOR)


def test_an_address_is_ignored_outside_the_emulator_environment() -> None:
    connector = create_connector("binance", environment="live", emulator_url="http://evil.example")
    assert "evil" not in json.dumps(connector.exchange.urls["api"])


def test_sandbox_uses_the_venues_testnet_and_fails_clearly_where_there_is_none() -> None:
    binance = create_connector("binance", environment=Environment.SANDBOX)
    assert "testnet" in json.dumps(binance.exchange.urls["api"])
    with pytest.raises(NotSupported, match="kraken has no sandbox"):
        create_connector("kraken", environment=Environment.SANDBOX)


def test_an_unknown_environment_is_rejected() -> None:
    with pytest.raises(NotSupported) as caught:
        create_connector("binance", environment="staging")
    assert caught.value.field == "environment"


@pytest.mark.parametrize("exchange_id", ["binance", "okx", "bybit", "kraken"])
def test_in_the_emulator_environment_every_rest_and_ws_url_points_at_the_emulator(exchange_id: str) -> None:
    async def urls() -> Any:
        connector = create_stream_connector(exchange_id, environment="emulator", emulator_url=EMULATOR)
        tree = connector.exchange.urls["api"]
        await connector.close()
        return tree

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    found = strings(asyncio.run(urls())) + strings(
        create_connector(exchange_id, environment="emulator", emulator_url=EMULATOR).exchange.urls["api"]
    )
    absolute = [u for u in found if "://" in u]
    assert absolute
    assert all(u.startswith(("http://127.0.0.1:8799/", "ws://127.0.0.1:8799/")) for u in absolute), absolute


def test_a_request_that_would_leave_the_emulator_is_refused() -> None:
    connector = create_connector("binance", environment="emulator", emulator_url=EMULATOR)
    with pytest.raises(ccxt.NotSupported, match="outside the emulator"):
        connector.exchange.fetch("https://api.binance.com/api/v3/ping")


def test_ccxt_is_never_verbose_and_never_retries_on_its_own() -> None:
    connector = create_connector("okx", Credentials("k-123456789", "s", "p"))
    assert connector.exchange.verbose is False
    assert connector.exchange.options["maxRetriesOnFailure"] == 0


def test_okx_keys_without_a_passphrase_are_refused_before_any_request() -> None:
    from connectors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        create_connector("okx", Credentials("k-123456789", "s"))
    assert caught.value.field == "passphrase"


def test_a_non_specialised_exchange_reports_its_capabilities() -> None:
    capabilities = create_connector("kraken").capabilities()
    assert capabilities["fetch_ticker"] is True and capabilities["watch_order_book"] is True
    assert capabilities["sandbox"] is False
    assert capabilities["set_margin_mode"] is False


def test_venue_extras_appear_in_the_capabilities() -> None:
    assert create_connector("okx").capabilities()["option_chain"] is True
    assert create_connector("okx").capabilities()["position_mode"] is True
    assert create_connector("bybit").capabilities()["trading_stop"] is True
    assert create_connector("bybit").capabilities()["margin_adjustment"] is True
    assert create_connector("binance").capabilities()["fetch_funding_rates"] is True


def test_importing_connectors_does_not_import_django() -> None:
    code = "import sys, connectors; connectors.create_connector('binance'); print('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
