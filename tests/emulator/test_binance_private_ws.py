"""Private Binance streams with ccxt.pro and a raw client: order and balance updates, listen keys, expiry."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import ccxt
import pytest

from tests.emulator.clients import until, ws_url

PERP = "BTC/USDT:USDT"


@pytest.fixture
async def pro(async_clients, credentials):
    return async_clients("binance", *credentials)


@pytest.fixture
def short_listen_keys(emulator):
    previous = emulator.configure("binance", listen_key_ttl_ms=1200)
    yield
    emulator.configure("binance", **previous)


async def test_watch_orders_receives_a_new_spot_order_and_its_fill(pro, emulator, held_market):
    held_market("ETH/USDT", "3000")
    watching = asyncio.ensure_future(
        until(lambda: pro.watch_orders("ETH/USDT"), lambda os: os[-1]["status"] == "open")
    )
    await asyncio.sleep(0.3)  # subscribed through the WebSocket API (userDataStream.subscribe.signature)
    placed = await pro.create_order("ETH/USDT", "limit", "buy", 0.1, 2990, {"clientOrderId": "wsfill1"})
    opened = (await watching)[-1]
    assert opened["id"] == placed["id"] and opened["clientOrderId"] == "wsfill1" and opened["filled"] == 0

    emulator.market("binance", "ETH/USDT").set_price("2980", hold=True)  # the book crosses the order
    filled = await until(lambda: pro.watch_orders("ETH/USDT"), lambda os: os[-1]["status"] == "closed")
    assert filled[-1]["id"] == placed["id"] and filled[-1]["filled"] == 0.1 and filled[-1]["average"] == 2990
    assert filled[-1]["info"]["e"] == "executionReport" and filled[-1]["info"]["x"] == "TRADE"


async def test_watch_balance_receives_the_change_of_a_fill(pro):
    watching = asyncio.ensure_future(pro.watch_balance())
    await asyncio.sleep(0.3)
    await pro.create_order("BTC/USDT", "market", "buy", 0.01)
    async with asyncio.timeout(10):
        balance = await watching
    assert balance["info"]["e"] == "outboundAccountPosition"
    assert balance["BTC"]["free"] > 10 and balance["USDT"]["free"] < 1_000_000


async def test_futures_orders_and_positions_arrive_on_the_listen_key_stream(pro, emulator):
    watching = asyncio.ensure_future(
        until(lambda: pro.watch_orders(PERP), lambda os: os[-1]["status"] == "closed")
    )
    await asyncio.sleep(0.3)  # POST /fapi/v1/listenKey, then fstream /private/ws?listenKey=...
    await pro.create_order(PERP, "market", "buy", 0.02)
    closed = (await watching)[-1]
    assert (
        closed["info"]["e"] == "ORDER_TRADE_UPDATE"
        if "e" in closed["info"]
        else closed["info"]["X"] == "FILLED"
    )
    assert closed["filled"] == 0.02
    positions = asyncio.ensure_future(
        until(
            lambda: pro.watch_positions([PERP]), lambda ps: ps and ps[-1]["contracts"] == pytest.approx(0.03)
        )
    )
    await asyncio.sleep(0.3)
    await pro.create_order(PERP, "market", "buy", 0.01)
    updated = await positions
    assert updated[-1]["symbol"] == PERP and updated[-1]["side"] == "long"
    await pro.create_order(PERP, "market", "sell", 0.03, params={"reduceOnly": True})


async def test_a_listen_key_that_is_not_kept_alive_expires_on_the_stream(emulator, pro, short_listen_keys):
    listen_key = (await pro.fapiPrivatePostListenKey())["listenKey"]
    url = ws_url(emulator, f"/fstream.binance.com/ws/{listen_key}")
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await asyncio.sleep(0.6)
        await pro.fapiPrivatePutListenKey()  # a keep-alive pushes the expiry out
        events = []
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                events.append(json.loads(message.data))
        assert events[-1]["e"] == "listenKeyExpired" and events[-1]["listenKey"] == listen_key
        assert ws.close_code == 1000
    with pytest.raises(ccxt.AuthenticationError, match="-1125"):  # This listenKey does not exist.
        await pro.fapiPrivatePutListenKey()
    assert (await pro.fapiPrivatePostListenKey())["listenKey"] != listen_key


async def test_a_spot_listen_key_stream_carries_execution_reports(emulator, pro):
    listen_key = (await pro.publicPostUserDataStream())["listenKey"]
    url = ws_url(emulator, f"/stream.binance.com/ws/{listen_key}")
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await asyncio.sleep(0.2)
        await pro.create_order("BTC/USDT", "market", "sell", 0.01)
        kinds = []
        async with asyncio.timeout(5):
            while "TRADE" not in kinds:
                event = await ws.receive_json()
                kinds.append(event.get("x") or event["e"])
    assert kinds[0] == "NEW" and "outboundAccountPosition" in kinds
    await pro.publicDeleteUserDataStream({"listenKey": listen_key})


async def test_a_wrong_secret_on_the_websocket_api_is_an_authentication_error(async_clients):
    exchange = async_clients("binance", "emulator-binance-demo-key", "wrong")
    # Binance answers {"status": 400, "error": {"code": -1022, ...}}: CCXT 4.5.90 raises an
    # AuthenticationError, then its cleanup of the failed subscription raises KeyError('spot') on top of it.
    with pytest.raises((ccxt.AuthenticationError, KeyError)) as caught:
        async with asyncio.timeout(5):
            await exchange.watch_balance()
    chain = [caught.value, caught.value.__context__]
    assert any(isinstance(e, ccxt.AuthenticationError) and "-1022" in str(e) for e in chain)
