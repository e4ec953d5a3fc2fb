"""ccxt.pro and a raw WebSocket client against the emulated OKX streams."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import zlib
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import orjson
import pytest

from tests.emulator.clients import distinct, ws_url


@pytest.fixture
async def pro(async_clients, okx_credentials):
    return async_clients("okx", *okx_credentials)


async def test_watch_ticker_receives_live_updates_with_emit_stamp(pro):
    now_us = time.time() * 1_000_000
    updates = await distinct(
        lambda: pro.watch_ticker("BTC/USDT"), key=lambda t: (t["timestamp"], t["info"]["emitUs"])
    )
    assert all(abs(emit - now_us) < 60_000_000 for _, emit in updates)
    ticker = await pro.watch_ticker("BTC/USDT:USDT")
    assert ticker["bid"] < ticker["ask"] and ticker["info"]["instType"] == "SWAP"


async def test_watch_order_book_follows_seq_ids(pro):
    nonces = await distinct(lambda: pro.watch_order_book("BTC/USDT"), count=3, key=lambda b: b["nonce"])
    book = await pro.watch_order_book("BTC/USDT")
    assert nonces == sorted(nonces) and book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) == 100
    top = await distinct(lambda: pro.watch_order_book("ETH/USDT", 5), key=lambda b: b["asks"][0])
    assert len(top) == 2


async def test_watch_trades_and_ohlcv_receive_live_updates(pro):
    trades = await distinct(lambda: pro.watch_trades("BTC/USDT"), key=lambda ts: ts[-1]["id"])
    assert len(trades) == 2
    last = (await pro.watch_trades("BTC/USDT"))[-1]
    assert "emitUs" in last["info"]
    candles = await distinct(lambda: pro.watch_ohlcv("BTC/USDT", "1m"), key=lambda c: tuple(c[-1]))
    assert candles[0][0] <= candles[1][0]


async def test_private_streams_push_balance_and_order_updates(pro):
    balance = await pro.watch_balance()
    assert balance["USDT"]["free"] == 1_000_000
    watching = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
    await asyncio.sleep(0.3)
    placed = await pro.create_order("BTC/USDT", "limit", "buy", 0.01, 20_000)
    async with asyncio.timeout(10):
        orders = await watching
    assert orders[-1]["id"] == placed["id"] and orders[-1]["status"] == "open"
    assert "emitUs" in orders[-1]["info"]
    await pro.cancel_order(placed["id"], "BTC/USDT")
    async with asyncio.timeout(10):
        while (await pro.watch_orders("BTC/USDT"))[-1]["status"] != "canceled":
            pass


async def test_wrong_secret_fails_the_websocket_login(async_clients):
    exchange = async_clients("okx", "emulator-okx-demo-key", "nope", "x")
    with pytest.raises(ccxt.AuthenticationError):
        async with asyncio.timeout(10):
            await exchange.watch_balance()


def _ws_url(emulator: Any, path: str) -> str:
    return ws_url(emulator, "/ws.okx.com/ws/v5/" + path)


def _apply(side: dict[str, list[str]], rows: list[list[str]]) -> None:
    for price, size, *_ in rows:
        if Decimal(size) == 0:
            side.pop(price, None)
        else:
            side[price] = [price, size]


def _checksum(bids: dict[str, list[str]], asks: dict[str, list[str]]) -> int:
    bid_rows = sorted(bids.values(), key=lambda r: Decimal(r[0]), reverse=True)[:25]
    ask_rows = sorted(asks.values(), key=lambda r: Decimal(r[0]))[:25]
    parts: list[str] = []
    for i in range(25):
        if i < len(bid_rows):
            parts += bid_rows[i]
        if i < len(ask_rows):
            parts += ask_rows[i]
    value = zlib.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


async def test_books_snapshot_then_updates_chain_and_match_their_checksums(emulator):
    async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(emulator, "public")) as ws:
        await ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
        ack = await ws.receive_json()
        assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "books", "instId": "BTC-USDT"}
        bids: dict[str, list[str]] = {}
        asks: dict[str, list[str]] = {}
        seq = None
        async with asyncio.timeout(10):
            for _ in range(4):
                message = await ws.receive_json()
                data = message["data"][0]
                if seq is None:
                    assert message["action"] == "snapshot" and data["prevSeqId"] == -1
                else:
                    assert message["action"] == "update" and data["prevSeqId"] == seq
                _apply(bids, data["bids"])
                _apply(asks, data["asks"])
                assert _checksum(bids, asks) == data["checksum"]
                assert isinstance(data["emitUs"], int) and data["emitUs"] > 1_600_000_000_000_000
                seq = data["seqId"]


async def test_raw_protocol_ping_errors_and_login(emulator, okx_credentials):
    key, secret, passphrase = okx_credentials
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(_ws_url(emulator, "public")) as ws:
            await ws.send_str("ping")
            assert await ws.receive_str() == "pong"
            await ws.send_json({"op": "subscribe", "args": [{"channel": "candle1m", "instId": "BTC-USDT"}]})
            assert (await ws.receive_json())["code"] == "60018"  # candles live on /business
            await ws.send_json({"op": "subscribe", "args": [{"channel": "tickers", "instId": "NOPE-USDT"}]})
            assert (await ws.receive_json())["code"] == "60018"
            await ws.send_str("{not json")
            assert (await ws.receive_json())["code"] == "60012"
        async with session.ws_connect(_ws_url(emulator, "business")) as ws:
            await ws.send_json({"op": "subscribe", "args": [{"channel": "candle1H", "instId": "ETH-USDT"}]})
            assert (await ws.receive_json())["event"] == "subscribe"
            async with asyncio.timeout(5):
                push = await ws.receive_json()
            assert len(push["data"][0]) == 9 and push["data"][0][8] == "0" and "emitUs" in push
        async with session.ws_connect(_ws_url(emulator, "private")) as ws:
            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
            assert (await ws.receive_json())["code"] == "60011"  # not logged in
            ts = str(int(time.time()))

            def login(secret_: str, passphrase_: str) -> dict[str, Any]:
                prehash = (ts + "GET/users/self/verify").encode()
                sign = base64.b64encode(hmac.new(secret_.encode(), prehash, hashlib.sha256).digest()).decode()
                args = {"apiKey": key, "passphrase": passphrase_, "timestamp": ts, "sign": sign}
                return {"op": "login", "args": [args]}

            await ws.send_json(login("wrong", passphrase))
            assert (await ws.receive_json())["code"] == "60007"
            await ws.send_json(login(secret, "wrong"))
            assert (await ws.receive_json())["code"] == "60024"
            await ws.send_json(login(secret, passphrase))
            assert (await ws.receive_json())["event"] == "login"
            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
            assert (await ws.receive_json())["event"] == "subscribe"


async def test_a_forced_disconnect_sends_the_service_upgrade_notice_then_closes(emulator):
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(emulator, "public")) as ws:
            await ws.send_json({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
            assert (await ws.receive_json(timeout=5))["event"] == "subscribe"
            emulator.faults.set("forced_disconnect", venue="okx", endpoint="ws.okx.com/*", grace_ms=50)
            notices = []
            async with asyncio.timeout(5):
                while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                    notices += [m for m in [orjson.loads(message.data)] if m.get("event") == "notice"]
            assert [n["code"] for n in notices] == ["64008"] and ws.close_code == 1001
    finally:
        emulator.faults.clear(venue="okx")
