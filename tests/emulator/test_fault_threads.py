"""Fault controls from any thread: what a fault does to the emulator's loop (aborting a transport,
queueing a venue's notice, the close timer after it, stalling a socket) runs on that loop, whether
the fault is set from another thread (``server.faults``, or the registry itself) or over the HTTP
control endpoint (already on the loop), and clients see the same drop either way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import ccxt
import pytest

from emulator.server import EmulatorServer
from tests.emulator.clients import ws_url

BOOK_TICKER = "/stream.binance.com/ws/btcusdt@bookTicker"
OKX_PUBLIC = "/ws.okx.com/ws/v5/public"


@pytest.fixture
def clean(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    emulator.faults.clear()
    yield emulator
    emulator.faults.clear()


def setter(emulator: EmulatorServer, how: str) -> Callable[..., Awaitable[Any]]:
    """``await set_fault(kind, venue, **params)`` the way ``how`` says."""

    async def from_a_thread(kind: str, venue: str, **params: Any) -> Any:
        # A worker thread of the test, not the emulator's: the loop runs in the "emulator" thread.
        return await asyncio.to_thread(emulator.faults.set, kind, venue, **params)

    async def registry_from_a_thread(kind: str, venue: str, **params: Any) -> Any:
        return await asyncio.to_thread(emulator.fault_registry.set, kind, venue, **params)

    async def over_http(kind: str, venue: str, **params: Any) -> Any:
        spec = {"kind": kind, "venue": venue, **params}
        url = f"{emulator.url}/_emulator/faults"
        async with aiohttp.ClientSession() as session, session.post(url, json=spec) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["id"]

    return {"thread": from_a_thread, "registry_thread": registry_from_a_thread, "http": over_http}[how]


async def read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every JSON frame until the connection ends (generous bound: a loaded CI machine)."""
    frames = []
    async with asyncio.timeout(15):
        while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            frames.append(json.loads(message.data))
    return frames


async def test_controls_from_another_thread_run_on_the_emulator_thread(emulator):
    name = await asyncio.to_thread(emulator.call, lambda: threading.current_thread().name)
    assert name == "emulator"
    # asyncio.get_running_loop() raises on a thread without a running loop: it ran on the server's.
    loop = await asyncio.to_thread(emulator.call, asyncio.get_running_loop)
    assert loop.is_running() and loop is not asyncio.get_running_loop()


def test_a_control_before_the_loop_runs_waits_for_it_instead_of_running_on_the_callers_thread():
    # running_emulator starts the server, then runs the loop: a control in between used to run on
    # the caller's thread (the loop was not running yet) and touch the loop's state from there.
    server = EmulatorServer(port=0, venues=["binance"])
    loop = asyncio.new_event_loop()
    started, go = threading.Event(), threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        go.wait(timeout=30)
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    server_thread = threading.Thread(target=run, name="late-loop", daemon=True)
    server_thread.start()
    assert started.wait(timeout=30)
    ran_on: list[str] = []
    caller = threading.Thread(
        target=lambda: ran_on.append(server.call(lambda: threading.current_thread().name)), name="caller"
    )
    caller.start()
    caller.join(timeout=0.5)  # lets the old code finish here, on the caller's thread (no assertion on time)
    go.set()
    caller.join(timeout=30)
    try:
        assert ran_on == ["late-loop"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        server_thread.join(timeout=30)
    # Stopped: controls act directly again (nothing waits for a loop that is gone).
    assert server.call(lambda: threading.current_thread().name) == threading.current_thread().name


@pytest.mark.parametrize("how", ["thread", "registry_thread", "http"])
async def test_drop_ws_cuts_raw_and_ccxt_streams(clean, async_clients, how):
    emulator = clean
    set_fault = setter(emulator, how)
    pro = async_clients("binance")
    await pro.watch_ticker("BTC/USDT")
    connections = dict(pro.clients)  # url -> CCXT's WebSocket client
    waiting = asyncio.ensure_future(pro.watch_ticker("BTC/USDT"))
    before = emulator.stats.faults_injected[("binance", "drop_ws")]
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(emulator, BOOK_TICKER)) as ws:
        await ws.receive_json(timeout=10)
        await set_fault("drop_ws", "binance", endpoint="stream.binance.com/*")
        await read_until_closed(ws)
        assert ws.close_code in (None, 1006)  # a TCP abort: no close frame

    # CCXT sees the drop: it forgets the connection (a watch pending then fails with a NetworkError;
    # one may also have got its ticker just before) ...
    def still_connected() -> bool:
        return any(pro.clients.get(url) is client for url, client in connections.items())

    for _ in range(300):  # 15 s at most
        if not still_connected():
            break
        await asyncio.sleep(0.05)
    assert not still_connected()
    with contextlib.suppress(ccxt.NetworkError):
        await asyncio.wait_for(waiting, 15)
    # ... and its next watch reconnects.
    async with asyncio.timeout(15):
        assert (await pro.watch_ticker("BTC/USDT"))["last"] > 0
    assert all(pro.clients.get(url) is not client for url, client in connections.items())
    assert emulator.stats.faults_injected[("binance", "drop_ws")] >= before + 2  # both connections


@pytest.mark.parametrize("how", ["thread", "http"])
async def test_forced_disconnects_send_the_venue_notice_then_close(clean, how):
    emulator = clean
    set_fault = setter(emulator, how)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(emulator, BOOK_TICKER)) as ws:
            await ws.receive_json(timeout=10)
            await set_fault("forced_disconnect", "binance", endpoint="stream.binance.com/*", grace_ms=50)
            frames = await read_until_closed(ws)
            assert "serverShutdown" in [f.get("e") for f in frames] and ws.close_code == 1001
        async with session.ws_connect(ws_url(emulator, OKX_PUBLIC)) as ws:
            await ws.send_json({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
            assert (await ws.receive_json(timeout=10))["event"] == "subscribe"
            await set_fault("forced_disconnect", "okx", endpoint="ws.okx.com/*", grace_ms=50)
            frames = await read_until_closed(ws)
            assert [f["code"] for f in frames if f.get("event") == "notice"] == ["64008"]
            assert ws.close_code == 1001


async def test_a_stall_set_and_cleared_from_another_thread_holds_then_resumes_the_stream(clean):
    emulator = clean
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(emulator, BOOK_TICKER)) as ws:
        await ws.receive_json(timeout=10)
        fault = await asyncio.to_thread(
            emulator.faults.set, "stall_ws", "binance", "stream.binance.com/ws/btcusdt@bookTicker"
        )
        # What was in flight before the stall may still arrive; then nothing does, until cleared.
        silent = False
        for _ in range(200):
            try:
                await ws.receive_json(timeout=1.5)
            except TimeoutError:
                silent = True
                break
        assert silent and not ws.closed
        assert await asyncio.to_thread(emulator.faults.clear, fault) == 1
        assert (await ws.receive_json(timeout=10))["s"] == "BTCUSDT"
