"""The emulator against CCXT's recorded OKX payloads: the recorded shapes and the request replay of
``tests/emulator/recorded.py``.

Cases the emulator does not serve are listed explicitly below, so a change in coverage shows up as a diff.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
from typing import Any
from urllib.parse import SplitResult

import ccxt
import orjson
import pytest

from emulator.routing import Route
from tests.emulator import recorded
from tests.emulator.clients import client

# Recorded cases whose endpoint the emulator does not serve (algo orders, deposits, transfers, borrowing,
# open interest, analytics): method#case-index.
UNSERVED_RESPONSES = {
    "createOrder#1",
    "fetchOpenOrders#0",
    "fetchDepositAddressesByNetwork#0",
    "fetchDepositAddress#0",
    "fetchDepositAddress#1",
    "fetchDepositAddress#2",
    "fetchDepositAddress#3",
    "fetchDepositAddress#4",
    "transfer#0",
    "transfer#1",
    "fetchTransfer#0",
    "fetchCrossBorrowRate#0",
    "fetchOpenInterest#0",
    "cancelOrders#0",
    "fetchTakerBuySellVolume#0",
}
# Inputs changed so a served case can run: derivatives orders are not emulated yet (the recorded ones are on
# swaps), the recorded order id does not exist here.
SUBSTITUTED = {
    "createOrder#0": "a swap market order with a stop loss -> a spot market order (0.01 contracts < 0.1)",
    "fetchOpenOrders#1": "ADA/USDT:USDT -> LTC/USDT (an open spot order of this test)",
    "fetchClosedOrders#0": "LTC/USDT:USDT -> LTC/USDT (a filled spot order of this test)",
    "fetchOrder#0": "the recorded order id -> a filled order of this test",
    "fetchOHLCV#0": "since January 2024 -> ten hours ago (the synthetic history spans 1500 candles)",
}
# Served, but the emulator has nothing to list: the funding account is empty (everything is in trading);
# account bills list funding fees of derivatives only (no transfers, no spot trades).
EMPTY_HERE = {"fetchBalance#0", "fetchTransfers#0", "fetchLedger#0"}
# Recorded from another endpoint than the one CCXT calls by default: fetchPositions#1 is a positions-history
# answer (options["fetchPositions"]["method"]); the emulator answers GET account/positions.
OTHER_ENDPOINT = {"fetchPositions#1"}


@pytest.fixture
def recording_client(emulator, okx_credentials):
    exchange = client(emulator, "okx", *okx_credentials)
    exchange.create_order("LTC/USDT", "market", "buy", 1)  # a closed order and a fill
    exchange.create_order("LTC/USDT", "limit", "buy", 0.5, 50)  # an open order
    exchange.create_order("LTC/USDT:USDT", "market", "buy", 1)  # a linear position
    exchange.create_order("BTC/USD:BTC", "market", "buy", 1)  # an inverse position
    return exchange


def test_served_endpoints_answer_in_the_recorded_shape(emulator, recording_client):
    exchange = recording_client
    closed_id = exchange.fetch_closed_orders("LTC/USDT")[0]["id"]

    def arguments(name: str, case: dict[str, Any]) -> list[Any]:
        args = list(case["input"])
        if name in ("fetchOpenOrders#1", "fetchClosedOrders#0"):
            args[0] = "LTC/USDT"
        elif name == "fetchOrder#0":
            args[0] = closed_id
        elif name == "createOrder#0":
            args = ["LTC/USDT", "market", "buy", 0.1]
        elif name == "fetchOHLCV#0":
            args[2] = exchange.milliseconds() - 10 * 3_600_000
        return args

    errors = (ccxt.BaseError, TypeError, AttributeError)
    answers, unserved = recorded.call_recorded(emulator, exchange, "okx", arguments, errors)
    checked = {n: a for n, a in answers.items() if n not in EMPTY_HERE | OTHER_ENDPOINT}
    problems = recorded.compare(checked)
    recorded.report_shapes(answers, unserved, SUBSTITUTED)
    assert unserved == UNSERVED_RESPONSES
    assert len(answers) == 24
    assert problems == {}


# Parameter-level and authentication codes: the emulator did not understand the request.
NOT_UNDERSTOOD = {"50000", "50002", "50014", "51000", "50102", "50103", "50104", "50105", "50111", "50113"}


def _signed_headers(key: str, secret: str, passphrase: str, method: str, target: str, body: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    timestamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    prehash = (timestamp + method + target + body).encode()
    sign = base64.b64encode(hmac.new(secret.encode(), prehash, hashlib.sha256).digest()).decode()
    return {
        "OK-ACCESS-KEY": key,
        "OK-ACCESS-PASSPHRASE": passphrase,
        "OK-ACCESS-TIMESTAMP": timestamp,
        "OK-ACCESS-SIGN": sign,
        "Content-Type": "application/json",
    }


def _hedged_sides(body: str | None) -> bool:
    """Whether a recorded body sends posSide long/short (valid in OKX's long/short position mode only)."""
    items = orjson.loads(body) if body else []
    items = items if isinstance(items, list) else [items]
    return any(isinstance(i, dict) and i.get("posSide") in ("long", "short") for i in items)


def _not_understood(answer: Any) -> bool:
    codes = {answer.get("code")} | {
        item.get("sCode")
        for item in answer.get("data") or []
        if isinstance(item, dict) and "not emulated" not in str(item.get("sMsg"))
    }
    return bool(codes & NOT_UNDERSTOOD)


def test_recorded_requests_to_served_endpoints_are_understood(emulator, okx_credentials):
    key, secret, passphrase = okx_credentials
    # Requests with posSide long/short go to a second key in long_short_mode (net_mode refuses them with
    # 51000 "Parameter posSide error", as OKX does).
    hedged_key = f"{key}-hedged"
    emulator.add_account(hedged_key, secret, passphrase)
    emulator.call(functools.partial(emulator.engine.set_position_mode, "okx", hedged_key, True))

    def prepare(_route: Route, method: str, url: SplitResult, body: str | None) -> recorded.Prepared:
        target = url.path + (f"?{url.query}" if url.query else "")
        sender = hedged_key if _hedged_sides(body) else key
        return url.query, body, _signed_headers(sender, secret, passphrase, method, target, body or "")

    replies, skipped = recorded.replay_recorded(emulator, "okx", recorded.json_post_or_get, prepare)
    failures = {
        name: (status, answer)
        for name, (status, answer) in replies.items()
        if status == 404 or _not_understood(answer)
    }
    assert failures == {}
    assert len(replies) == 86
    assert skipped == UNSERVED_REQUEST_ENDPOINTS


# Endpoints of OKX that are not emulated (yet): algo orders, order amendment, positions history, funding
# account, deposits/withdrawals, transfers, borrowing, convert, analytics.
UNSERVED_REQUEST_ENDPOINTS = {
    "GET www.okx.com/api/v5/account/interest-accrued",
    "GET www.okx.com/api/v5/account/interest-rate",
    "GET www.okx.com/api/v5/account/positions-history",
    "GET www.okx.com/api/v5/asset/bills",
    "GET www.okx.com/api/v5/asset/convert/currencies",
    "GET www.okx.com/api/v5/asset/convert/history",
    "GET www.okx.com/api/v5/asset/deposit-address",
    "GET www.okx.com/api/v5/asset/deposit-history",
    "GET www.okx.com/api/v5/asset/transfer-state",
    "GET www.okx.com/api/v5/asset/withdrawal-history",
    "GET www.okx.com/api/v5/public/open-interest",
    "GET www.okx.com/api/v5/rubik/stat/contracts/long-short-account-ratio-contract",
    "GET www.okx.com/api/v5/rubik/stat/contracts/open-interest-volume",
    "GET www.okx.com/api/v5/rubik/stat/taker-volume-contract",
    "GET www.okx.com/api/v5/trade/order-algo",
    "GET www.okx.com/api/v5/trade/orders-algo-history",
    "GET www.okx.com/api/v5/trade/orders-algo-pending",
    "POST www.okx.com/api/v5/asset/convert/trade",
    "POST www.okx.com/api/v5/asset/transfer",
    "POST www.okx.com/api/v5/asset/withdrawal",
    "POST www.okx.com/api/v5/trade/amend-algos",
    "POST www.okx.com/api/v5/trade/amend-order",
    "POST www.okx.com/api/v5/trade/cancel-algos",
    "POST www.okx.com/api/v5/trade/cancel-all-after",
    "POST www.okx.com/api/v5/trade/order-algo",
}
