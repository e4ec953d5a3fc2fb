"""Fault injection: each kind, and what unmodified CCXT sees (the exception, the disconnect, the gap)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import ccxt
import pytest

from emulator.faults import endpoint_matches
from emulator.server import FaultControl
from tests.emulator.clients import ws_url

ORDER = "POST api.binance.com/api/v3/order"


@pytest.fixture
def faults(emulator) -> Iterator[FaultControl]:
    """The emulator's fault controls; every fault is cleared afterwards."""
    emulator.faults.clear()
    yield emulator.faults
    emulator.faults.clear()


@pytest.fixture
async def pro(async_clients):
    return async_clients("binance")


@contextlib.asynccontextmanager
async def raw_ws(emulator, tail: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A plain aiohttp WebSocket client on ``tail`` (``/stream.binance.com/ws/btcusdt@bookTicker``)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(emulator, tail)) as ws:
        yield ws


def far_below(binance: ccxt.binance) -> tuple[float, float]:
    price = binance.fetch_ticker("BTC/USDT")["last"]
    return 0.001, float(binance.price_to_precision("BTC/USDT", price * 0.5))


# --- control surface ------------------------------------------------------------------------------------


def test_endpoint_patterns_match_method_host_and_path_globs():
    assert endpoint_matches(ORDER, "POST", "api.binance.com", "/api/v3/order")
    assert not endpoint_matches(ORDER, "GET", "api.binance.com", "/api/v3/order")
    assert endpoint_matches("fapi.binance.com/fapi/*", "GET", "fapi.binance.com", "/fapi/v1/depth")
    assert endpoint_matches("*/order", "DELETE", "fapi.binance.com", "/fapi/v1/order")
    assert endpoint_matches(None, "GET", "x", "/y") and not endpoint_matches("/api/*", "GET", "x", "/sapi/v1")


def test_faults_are_set_listed_and_cleared_over_http(emulator, faults):
    def call(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(emulator.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)

    status, created = call(
        "POST", "/_emulator/faults", {"kind": "latency", "venue": "binance", "endpoint": ORDER, "ms": 10}
    )
    assert status == 201 and created["active"] is True
    call("POST", "/_emulator/faults", {"kind": "error", "venue": "binance", "status": 503, "count": 2})
    listed = call("GET", "/_emulator/faults")[1]["faults"]
    assert {f["kind"] for f in listed} == {"latency", "error"}
    assert call("DELETE", f"/_emulator/faults/{created['id']}")[1] == {"cleared": 1}
    assert call("DELETE", "/_emulator/faults?venue=binance")[1] == {"cleared": 1}
    assert faults.list() == []
    with pytest.raises(urllib.error.HTTPError) as bad:
        call("POST", "/_emulator/faults", {"kind": "nosuch"})
    assert bad.value.code == 400


# --- REST -----------------------------------------------------------------------------------------------


def test_latency_delays_only_the_matching_endpoint(binance, faults):
    binance.fetch_time()
    with faults.active("latency", venue="binance", endpoint="GET api.binance.com/api/v3/time", ms=300):
        started = time.monotonic()
        binance.fetch_time()
        delayed = time.monotonic() - started
        started = time.monotonic()
        binance.fetch_order_book("BTC/USDT", 5)
        other = time.monotonic() - started
    assert 0.3 <= delayed < 1.0 and other < 0.25


def test_429_and_the_418_ban_carry_retry_after_and_are_ddos_protection_in_ccxt(binance, faults, emulator):
    before = emulator.stats.faults_injected[("binance", "rate_limit")]
    faults.set("rate_limit", venue="binance", status=429, retry_after=3, count=1)
    with pytest.raises(ccxt.DDoSProtection) as limited:  # CCXT's binance.handle_errors: 418/429
        binance.fetch_ticker("BTC/USDT")
    assert "-1003" in str(limited.value) and binance.last_response_headers["Retry-After"] == "3"
    assert binance.fetch_ticker("BTC/USDT")["last"] > 0  # count=1: the next request passes

    faults.set("rate_limit", venue="binance", status=418, retry_after=120)
    with pytest.raises(ccxt.DDoSProtection) as banned:
        binance.fetch_ticker("BTC/USDT")
    assert "418" in str(banned.value) and "IP banned until" in str(banned.value)
    assert binance.last_response_headers["Retry-After"] == "120"
    assert emulator.stats.faults_injected[("binance", "rate_limit")] == before + 2


def test_a_rate_limit_escalates_to_a_ban_when_both_are_set_in_order(binance, faults):
    faults.set("rate_limit", venue="binance", count=2)
    faults.set("rate_limit", venue="binance", status=418)
    statuses = []
    for _ in range(3):
        with pytest.raises(ccxt.DDoSProtection):
            binance.fetch_time()
        statuses.append(binance.last_http_response and binance.last_response_headers.get("Retry-After"))
    assert statuses == ["1", "1", "120"]


def test_a_503_is_exchange_not_available_and_a_504_a_request_timeout(binance, faults):
    with faults.active("error", venue="binance", status=503), pytest.raises(ccxt.ExchangeNotAvailable):
        binance.fetch_ticker("BTC/USDT")
    with faults.active("error", venue="binance", status=504), pytest.raises(ccxt.RequestTimeout):
        binance.fetch_ticker("BTC/USDT")


def test_a_5xx_after_accepting_leaves_the_order_in_place(binance, faults):
    amount, price = far_below(binance)
    faults.set("error_after_accept", venue="binance", endpoint=ORDER, status=502, count=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        binance.create_order("BTC/USDT", "limit", "buy", amount, price, {"clientOrderId": "accepted502"})
    found = binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "accepted502"})
    assert found["status"] == "open" and found["clientOrderId"] == "accepted502"
    binance.cancel_order(found["id"], "BTC/USDT")


def test_a_dropped_connection_after_accepting_is_a_network_error_and_the_order_exists(binance, faults):
    amount, price = far_below(binance)
    faults.set("error_after_accept", venue="binance", endpoint=ORDER, drop=True, count=1)
    with pytest.raises(ccxt.NetworkError):
        binance.create_order("BTC/USDT", "limit", "buy", amount, price, {"clientOrderId": "accepteddrop"})
    found = binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "accepteddrop"})
    assert found["clientOrderId"] == "accepteddrop"
    binance.cancel_order(found["id"], "BTC/USDT")


def test_a_hang_is_a_request_timeout_and_releases_when_cleared(binance, faults):
    binance.timeout = 400
    fault = faults.set("hang", venue="binance", endpoint="GET */api/v3/time", max_s=30)
    try:
        started = time.monotonic()
        with pytest.raises(ccxt.RequestTimeout):
            binance.fetch_time()
        assert time.monotonic() - started < 2
    finally:
        faults.clear(fault)
        binance.timeout = 10_000
    assert binance.fetch_time() > 0


def test_a_counted_hang_holds_the_requests_it_caught_until_cleared(binance, faults):
    binance.timeout = 400
    fault = faults.set("hang", venue="binance", endpoint="GET */api/v3/time", count=1, max_s=30)
    try:
        with pytest.raises(ccxt.RequestTimeout):
            binance.fetch_time()  # caught and held: the count is used up, the hold is not
        assert binance.fetch_time() > 0  # the next request is not caught
        assert [f["id"] for f in faults.list()] == []
    finally:
        assert faults.clear(fault) == 1  # still holding the first request: clearing releases it
        binance.timeout = 10_000


def test_clock_skew_makes_signed_requests_invalid_nonce(binance, faults, emulator):
    with faults.active("clock_skew", offset_ms=-2000):
        assert emulator.engine.clock.offset_ms == -2000
        with pytest.raises(ccxt.InvalidNonce) as skewed:
            binance.fetch_balance()
    assert "-1021" in str(skewed.value) and emulator.engine.clock.offset_ms == 0
    assert binance.fetch_balance()["USDT"]["free"] > 0


def test_probability_spares_some_requests(binance, faults):
    faults.set("error", venue="binance", endpoint="*/api/v3/time", probability=0.5)
    failures = 0
    for _ in range(30):
        try:
            binance.fetch_time()
        except ccxt.ExchangeNotAvailable:
            failures += 1
    assert 3 < failures < 27


# --- WebSocket ------------------------------------------------------------------------------------------


async def test_drop_ws_cuts_streams_without_a_close_frame_and_ccxt_reconnects(pro, faults, emulator):
    await pro.watch_ticker("BTC/USDT")
    waiting = asyncio.ensure_future(pro.watch_ticker("BTC/USDT"))
    await asyncio.sleep(0.05)
    faults.set("drop_ws", venue="binance", endpoint="stream.binance.com/*")
    with pytest.raises(ccxt.NetworkError):
        async with asyncio.timeout(5):
            while True:  # a ticker may arrive before the drop
                await waiting
                waiting = asyncio.ensure_future(pro.watch_ticker("BTC/USDT"))
    async with asyncio.timeout(10):
        assert (await pro.watch_ticker("BTC/USDT"))["last"] > 0  # the next watch reconnects


async def test_a_raw_client_sees_a_drop_as_an_abnormal_close(emulator, faults):
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        faults.set("drop_ws", venue="binance")
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code in (None, 1006)


async def test_a_stalled_socket_stays_open_sends_nothing_and_ccxt_times_out_on_ping(pro, emulator, faults):
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        fault = faults.set("stall_ws", venue="binance", endpoint="stream.binance.com/ws/btcusdt@bookTicker")
        await asyncio.sleep(0.1)
        while not ws._reader.is_eof() and ws._reader._size:  # drain what was already in flight
            await ws.receive(timeout=0.1)
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=1.0)
        assert not ws.closed
        faults.clear(fault)
        assert (await ws.receive_json(timeout=5))["s"] == "BTCUSDT"

    pro.streaming["keepAlive"] = 300  # ccxt pings every keepAlive ms, gives up after 2 missed pongs
    await pro.watch_ticker("ETH/USDT")
    faults.set("stall_ws", venue="binance", endpoint="stream.binance.com/*")
    with pytest.raises(ccxt.RequestTimeout):
        async with asyncio.timeout(10):
            while True:
                await pro.watch_ticker("ETH/USDT")


async def test_forced_disconnect_sends_server_shutdown_then_closes(emulator, faults):
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        faults.set("forced_disconnect", venue="binance", grace_ms=100)
        events = []
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                events.append(json.loads(message.data).get("e"))
        assert "serverShutdown" in events and ws.close_code == 1001
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        faults.set("forced_disconnect", venue="binance", reason="lifetime", grace_ms=0)
        events = []
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                events.append(json.loads(message.data).get("e"))
        assert "serverShutdown" not in events and ws.close_code == 1000


async def test_ccxt_sees_a_forced_disconnect_as_a_closed_connection(pro, faults):
    await pro.watch_ticker("BTC/USDT")
    faults.set("forced_disconnect", venue="binance", grace_ms=50)
    with pytest.raises(ccxt.NetworkError, match="closing code 1001"):
        async with asyncio.timeout(5):
            while True:
                await pro.watch_ticker("BTC/USDT")


async def test_a_sequence_gap_makes_ccxt_watch_order_book_raise_and_resync(pro, faults, emulator):
    # spot checks U == prev.u + 1, futures pu == prev.u
    for symbol, host in (("BTC/USDT", "stream.binance.com"), ("BTC/USDT:USDT", "fstream.binance.com")):
        await pro.watch_order_book(symbol)
        fault = faults.set("sequence_gap", venue="binance", endpoint=f"{host}/*", count=1)
        with pytest.raises(ccxt.ChecksumError):  # ccxt's InvalidNonce for an order-book gap
            async with asyncio.timeout(10):
                while True:
                    await pro.watch_order_book(symbol)
        assert faults.list() == [] and fault
        async with asyncio.timeout(10):
            book = await pro.watch_order_book(symbol)  # resubscribes and resnapshots
        assert book["bids"][0][0] < book["asks"][0][0]


async def test_a_sequence_gap_every_n_messages_shows_on_a_raw_stream(emulator, faults):
    async with raw_ws(emulator, "/fstream.binance.com/ws/btcusdt@depth@100ms") as ws:
        faults.set("sequence_gap", venue="binance", every=3)
        previous, gaps = None, 0
        async with asyncio.timeout(10):
            for _ in range(8):
                message = await ws.receive_json()
                if previous is not None and message["pu"] != previous["u"]:
                    gaps += 1
                previous = message
    assert gaps >= 2


async def test_a_malformed_frame_reaches_the_client_and_silently_stops_ccxt_until_its_keepalive(
    pro, emulator, faults
):
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        faults.set("malformed_frame", venue="binance", endpoint="stream.binance.com/ws/btcusdt@bookTicker")
        async with asyncio.timeout(5):
            while True:
                text = (await ws.receive()).data
                try:
                    json.loads(text)
                except json.JSONDecodeError:
                    break
    # ccxt.pro parses inside its receive callback: the decode error escapes it (logged by asyncio) and the
    # receive loop of that connection stops. Nothing more arrives; only the ping-pong keepalive notices.
    pro.streaming["keepAlive"] = 300
    await pro.watch_ticker("BTC/USDT")
    faults.set("malformed_frame", venue="binance", endpoint="stream.binance.com/*")
    with pytest.raises(ccxt.RequestTimeout):
        async with asyncio.timeout(10):
            while True:
                await pro.watch_ticker("BTC/USDT")
    async with asyncio.timeout(10):
        assert (await pro.watch_ticker("BTC/USDT"))["last"] > 0  # a new connection


async def test_message_rate_publishes_the_requested_messages_per_second(emulator, faults):
    async with raw_ws(emulator, "/stream.binance.com/ws/btcusdt@bookTicker") as ws:
        await ws.receive_json(timeout=5)
        faults.set("message_rate", venue="binance", rate=200, channels=["bookTicker"], symbols=["BTC/USDT"])
        await asyncio.sleep(0.3)
        while not ws._reader.is_eof() and ws._reader._size:
            await ws.receive(timeout=0.1)
        received, started = 0, time.monotonic()
        while time.monotonic() - started < 1.5:
            await ws.receive(timeout=1)
            received += 1
        rate = received / (time.monotonic() - started)
    assert 160 <= rate <= 240, rate
