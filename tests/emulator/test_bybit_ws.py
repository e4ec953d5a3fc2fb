"""ccxt.pro and a raw WebSocket client against the emulated Bybit v5 streams."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import pytest

from emulator.accounts import DEMO_CREDENTIALS
from tests.emulator.clients import distinct, ws_url

BYBIT_KEY, BYBIT_SECRET, _ = DEMO_CREDENTIALS["bybit"]


@pytest.fixture
async def pro(async_clients):
    return async_clients("bybit", BYBIT_KEY, BYBIT_SECRET)


def _ws_url(emulator, path: str) -> str:
    return ws_url(emulator, "/stream.bybit.com" + path)


async def test_watch_ticker_receives_live_updates_with_emit_stamp(pro):
    now_us = time.time() * 1_000_000
    for symbol in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"):
        updates = await distinct(
            lambda s=symbol: pro.watch_ticker(s), key=lambda t: (t["timestamp"], t["info"]["emitUs"])
        )
        assert all(abs(emit - now_us) < 60_000_000 for _, emit in updates), symbol
    linear = await pro.watch_ticker("BTC/USDT:USDT")  # snapshot merged with deltas
    assert linear["bid"] < linear["ask"] and linear["markPrice"] > 0 and linear["last"] > 0


async def test_watch_order_book_follows_snapshot_and_deltas(pro):
    for symbol in ("BTC/USDT", "BTC/USDT:USDT"):
        stamps = await distinct(
            lambda s=symbol: pro.watch_order_book(s), count=3, key=lambda b: b["timestamp"]
        )
        assert stamps == sorted(stamps), symbol
        book = await pro.watch_order_book(symbol)
        assert len(book["bids"]) == 50 and book["bids"][0][0] < book["asks"][0][0], symbol
    top = await pro.watch_order_book("ETH/USDT", 1)
    assert len(top["bids"]) == 1 and len(top["asks"]) == 1


async def test_watch_trades_and_ohlcv_receive_live_updates(pro):
    trades = await distinct(lambda: pro.watch_trades("BTC/USDT:USDT"), key=lambda ts: ts[-1]["id"])
    assert len(trades) == 2
    last = (await pro.watch_trades("BTC/USDT"))[-1]
    assert "emitUs" in last["info"] and last["price"] > 0
    candles = await distinct(lambda: pro.watch_ohlcv("BTC/USDT", "1m"), key=lambda c: tuple(c[-1]))
    assert candles[0][0] <= candles[1][0]


async def test_option_streams(pro):
    option = next(m["symbol"] for m in pro.markets.values() if m["option"] and m["base"] == "ETH")
    ticker = await pro.watch_ticker(option)
    book = await pro.watch_order_book(option)
    assert ticker["last"] > 0 and book["bids"] and "delta" in ticker["info"]


async def test_private_stream_pushes_orders_and_wallet_after_auth(emulator, pro):
    orders = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
    balance = asyncio.ensure_future(pro.watch_balance())
    await asyncio.sleep(0.5)
    placed = await pro.create_order("BTC/USDT", "limit", "buy", 0.001, 30_000, {"clientOrderId": "ws-1"})
    async with asyncio.timeout(10):
        pushed = (await orders)[-1]
        wallet = await balance
    assert pushed["id"] == placed["id"] and pushed["status"] == "open" and pushed["clientOrderId"] == "ws-1"
    assert wallet["USDT"]["used"] >= 30
    await pro.cancel_order(placed["id"], "BTC/USDT")


async def _receive_until(ws: Any, done, limit: float = 10) -> list[dict]:
    messages = []
    async with asyncio.timeout(limit):
        while not done(messages):
            messages.append(await ws.receive_json())
    return messages


async def test_raw_public_protocol_subscribe_ping_and_book_sequence(emulator):
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(_ws_url(emulator, "/v5/public/linear")) as ws,
    ):
        await ws.send_json(
            {"op": "subscribe", "req_id": "a1", "args": ["orderbook.50.BTCUSDT", "kline.1.BTCUSDT"]}
        )
        await ws.send_json({"op": "subscribe", "req_id": "a2", "args": ["tickers.NOSUCH"]})
        await ws.send_json({"op": "ping", "req_id": "p1"})
        books = lambda ms: [m for m in ms if m.get("topic") == "orderbook.50.BTCUSDT"]  # noqa: E731
        messages = await _receive_until(ws, lambda ms: len(books(ms)) >= 3)
    replies = {m["req_id"]: m for m in messages if "req_id" in m}
    assert replies["a1"]["success"] is True and replies["a1"]["op"] == "subscribe"
    assert replies["a2"]["success"] is False and "tickers.NOSUCH" in replies["a2"]["ret_msg"]
    assert replies["p1"]["ret_msg"] == "pong" and replies["p1"]["op"] == "ping"
    first, second, third = books(messages)[:3]
    assert first["type"] == "snapshot" and len(first["data"]["b"]) == 50
    assert second["type"] == third["type"] == "delta"
    assert second["data"]["u"] == first["data"]["u"] + 1 and third["data"]["u"] == second["data"]["u"] + 1
    assert first["data"]["seq"] < second["data"]["seq"] and isinstance(second["data"]["emitUs"], int)


def _auth(secret: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()


async def test_raw_private_auth_accepts_and_rejects_like_bybit(emulator):
    expires = int(time.time() * 1000) + 10_000
    attempts = {
        "good": [BYBIT_KEY, expires, _auth(BYBIT_SECRET, expires)],
        "bad-sign": [BYBIT_KEY, expires, _auth("wrong", expires)],
        "expired": [BYBIT_KEY, expires - 60_000, _auth(BYBIT_SECRET, expires - 60_000)],
        "no-key": ["nobody", expires, _auth(BYBIT_SECRET, expires)],
    }
    results = {}
    async with aiohttp.ClientSession() as session:
        for name, args in attempts.items():
            async with session.ws_connect(_ws_url(emulator, "/v5/private")) as ws:
                await ws.send_json({"op": "subscribe", "req_id": "early", "args": ["order"]})
                await ws.send_json({"op": "auth", "args": args})
                await ws.send_json({"op": "ping", "req_id": "p"})
                replies = await _receive_until(ws, lambda ms: len(ms) >= 3)
                results[name] = {m.get("req_id") or m["op"]: m for m in replies}
    assert results["good"]["early"]["success"] is False  # subscribing before auth is refused
    assert results["good"]["auth"]["success"] is True
    assert results["good"]["p"]["op"] == "pong" and results["good"]["p"]["args"]
    for name in ("bad-sign", "expired", "no-key"):
        assert results[name]["auth"]["success"] is False, name
