"""The emulator against CCXT's recorded Bybit payloads: the recorded shapes and the request replay (JSON
bodies, re-signed with a fresh timestamp; no parameter or signature error) of ``tests/emulator/recorded.py``.

Cases the emulator does not serve are listed explicitly below, so a change in coverage shows up as a diff.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import SplitResult

import pytest

from emulator.routing import Route
from tests.emulator import recorded
from tests.emulator.clients import client, fresh_key

# Recorded cases whose endpoint the emulator does not serve: amend, open interest, transfers, closed PnL,
# margin loans (method#case-index).
UNSERVED_RESPONSES = {
    "editOrder#0",
    "fetchOpenInterest#0",
    "fetchOpenInterest#1",
    "fetchTransfers#0",
    "fetchPositionHistory#0",
    "fetchBorrowRateHistory#0",
    "borrowCrossMargin#0",
    "repayCrossMargin#0",
}
# Served cases answered with an empty list, so there is nothing to compare: the recorded order ids.
NO_DERIVATIVES_DATA = {
    "fetchOpenOrder#0",
    "fetchClosedOrder#0",
}
# Inputs changed so a served case can run.
SUBSTITUTED = {
    "createOrder#0": "spot TP/SL orders are not emulated: the plain market sell instead",
    "fetchOrder#0": "the recorded order id: a closed order of this test instead",
    "fetchOrder#1": "the recorded order id: a closed order of this test instead",
    "fetchTickers#0": "the recorded option expired in 2025: a listed BTC call instead",
    "fetchAllGreeks#0": "the recorded option expired in 2025: a listed BTC call instead",
}
# Fields CCXT writes into the raw response it was given before it was recorded.
ADDED_BY_CCXT = {"nextPageCursor", "timestamp"}


@pytest.fixture
def recording_client(emulator):
    key, secret, _ = fresh_key(emulator, "bybit-recording-key", "bybit-recording-secret")
    exchange = client(emulator, "bybit", key, secret)
    exchange.options["fetchOrder"] = {"acknowledged": True}
    exchange.create_order("LTC/USDT", "market", "buy", 1)  # closed orders and fills on two pairs
    exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    exchange.create_order("LTC/USDT", "limit", "buy", 0.5, 50)  # an open order
    exchange.create_order("LTC/USDT:USDT", "market", "buy", 1)  # a linear position and fills
    exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.001)  # closed linear orders
    exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001, params={"reduceOnly": True})
    emulator.apply_funding("bybit")  # a funding payment (execution list, transaction log)
    return exchange


def _without_ccxt_fields(recorded: Any) -> Any:
    if isinstance(recorded, dict):
        return {k: _without_ccxt_fields(v) for k, v in recorded.items() if k not in ADDED_BY_CCXT}
    if isinstance(recorded, list):
        return [_without_ccxt_fields(v) for v in recorded]
    return recorded


def test_served_endpoints_answer_in_the_recorded_shape(emulator, recording_client):
    exchange = recording_client
    closed_id = exchange.fetch_closed_orders("LTC/USDT")[0]["id"]

    def arguments(name: str, case: dict[str, Any]) -> list[Any]:
        args = list(case["input"])
        if name == "createOrder#0":
            args = args[:5]
        elif name.startswith("fetchOrder#"):
            args = [closed_id, "LTC/USDT"]
        elif name in ("fetchTickers#0", "fetchAllGreeks#0"):
            call = next(s for s, m in exchange.markets.items() if m["option"] and m["base"] == "BTC")
            args[0] = [call]
        return args

    answers, unserved = recorded.call_recorded(emulator, exchange, "bybit", arguments)
    empty = {
        name
        for name, (case, ours) in answers.items()
        if ours.get("retCode") == 0 and ours["result"].get("list") == [] and case["httpResponse"]["result"]
    }
    compared = {n: a for n, a in answers.items() if n not in empty}
    problems = recorded.compare(compared, _without_ccxt_fields)
    recorded.report_shapes(compared, unserved, SUBSTITUTED)
    assert unserved == UNSERVED_RESPONSES
    assert empty == NO_DERIVATIVES_DATA
    assert len(compared) == 26
    assert problems == {}


def _signed_headers(key: str, secret: str, payload: str) -> dict[str, str]:
    timestamp, window = str(int(time.time() * 1000)), "5000"
    signature = hmac.new(secret.encode(), f"{timestamp}{key}{window}{payload}".encode(), hashlib.sha256)
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": timestamp,
        "X-BAPI-RECV-WINDOW": window,
        "X-BAPI-SIGN": signature.hexdigest(),
        "Content-Type": "application/json",
    }


# Answers that mean the request was not understood: unknown path, parameter or signature errors. Business
# answers (unknown order, unlisted symbol, features that are not emulated, filters) are fine.
NOT_UNDERSTOOD = {10001, 10002, 10003, 10004, 10017}
BUSINESS_10001 = ("Not supported symbols",)


def _not_understood(answer: Any) -> bool:
    code, message = answer.get("retCode"), answer.get("retMsg", "")
    return code in NOT_UNDERSTOOD and not message.startswith(BUSINESS_10001)


def test_recorded_requests_to_served_endpoints_are_understood(emulator):
    key, secret, _ = fresh_key(emulator, "bybit-replay-key", "bybit-replay-secret")

    def prepare(route: Route, _method: str, url: SplitResult, body: str | None) -> recorded.Prepared:
        headers = {"Content-Type": "application/json"}
        if route.options.get("signed"):
            headers = _signed_headers(key, secret, body if body is not None else url.query)
        return url.query, body, headers

    replies, skipped = recorded.replay_recorded(emulator, "bybit", recorded.json_post_or_get, prepare)
    failures = {
        name: (status, answer)
        for name, (status, answer) in replies.items()
        if status == 404 or _not_understood(answer)
    }
    assert failures == {}
    assert len(replies) == 66
    assert skipped == UNSERVED_REQUEST_ENDPOINTS


# Recorded endpoints that are not emulated (yet): batch order endpoints, deposits and transfers, risk limits.
UNSERVED_REQUEST_ENDPOINTS = {
    "GET api-testnet.bybit.com/v5/asset/deposit/query-record",
    "GET api-testnet.bybit.com/v5/asset/transfer/query-inter-transfer-list",
    "GET api-testnet.bybit.com/v5/market/risk-limit",
    "POST api-testnet.bybit.com/v5/asset/transfer/inter-transfer",
    "POST api-testnet.bybit.com/v5/order/cancel-batch",
    "POST api-testnet.bybit.com/v5/order/create-batch",
}
