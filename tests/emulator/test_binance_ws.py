"""ccxt.pro and a raw WebSocket client against the emulated Binance streams."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.emulator.clients import distinct, ws_url


@pytest.fixture
async def pro(async_clients):
    return async_clients("binance")


async def test_watch_ticker_receives_live_updates_with_emit_stamp(pro):
    now_us = time.time() * 1_000_000
    updates = await distinct(
        lambda: pro.watch_ticker("BTC/USDT"), key=lambda t: (t["timestamp"], t["info"]["emitUs"])
    )
    assert all(abs(emit - now_us) < 60_000_000 for _, emit in updates)
    mini = await pro.watch_ticker("BTC/USDT")  # CCXT's default stream is @miniTicker
    assert mini["info"]["e"] == "24hrMiniTicker" and mini["info"]["emitUs"] // 1000 >= mini["info"]["E"] - 1
    full = await pro.watch_ticker("ETH/USDT", {"name": "ticker"})
    assert full["info"]["e"] == "24hrTicker" and full["bid"] < full["ask"] and "emitUs" in full["info"]


async def test_watch_order_book_syncs_with_the_rest_snapshot_and_follows_diffs(pro):
    nonces = await distinct(lambda: pro.watch_order_book("BTC/USDT"), count=3, key=lambda b: b["nonce"])
    book = await pro.watch_order_book("BTC/USDT")
    assert nonces == sorted(nonces) and book["bids"][0][0] < book["asks"][0][0]
    futures = await distinct(lambda: pro.watch_order_book("BTC/USDT:USDT"), count=2, key=lambda b: b["nonce"])
    assert futures[1] > futures[0]


async def test_watch_trades_and_ohlcv_receive_live_updates(pro):
    trades = await distinct(lambda: pro.watch_trades("BTC/USDT"), key=lambda ts: ts[-1]["id"])
    assert len(trades) == 2
    last = (await pro.watch_trades("BTC/USDT"))[-1]
    assert "emitUs" in last["info"]
    candles = await distinct(lambda: pro.watch_ohlcv("BTC/USDT", "1m"), key=lambda c: tuple(c[-1]))
    assert candles[0][0] <= candles[1][0]


async def test_raw_streams_carry_emit_stamps_and_follow_the_subscribe_protocol(emulator):
    url = ws_url(emulator, "/stream.binance.com/stream?streams=btcusdt@depth@100ms")
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json(
            {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m", "btcusdt@bookTicker"], "id": 7}
        )
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
        await ws.send_json({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 9})
        seen: dict[str, dict] = {}
        replies = {}
        async with asyncio.timeout(10):
            while len(seen) < 3 or len(replies) < 3:
                message = await ws.receive_json()
                if "id" in message:
                    replies[message["id"]] = message
                else:
                    seen[message["stream"]] = message["data"]
    assert replies[7] == {"result": None, "id": 7}
    assert set(replies[8]["result"]) == {"btcusdt@depth@100ms", "btcusdt@kline_1m", "btcusdt@bookTicker"}
    assert replies[9]["error"]["code"] == 2
    depth = seen["btcusdt@depth@100ms"]
    assert depth["e"] == "depthUpdate" and depth["u"] >= depth["U"]
    assert all(
        isinstance(data["emitUs"], int) and data["emitUs"] > 1_600_000_000_000_000 for data in seen.values()
    )


async def test_futures_depth_diffs_chain_through_pu(emulator):
    url = ws_url(emulator, "/fstream.binance.com/ws/btcusdt@depth@100ms")
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        async with asyncio.timeout(10):
            first, second = await ws.receive_json(), await ws.receive_json()
    assert second["pu"] == first["u"] and second["U"] == first["u"] + 1 and "T" in first
