"""The stream manager against the exchange emulator: leases, watchlist, conflation, cache,
health, and recovery from faults (dropped connections, a stalled socket)."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from connectors import close_stream_connectors
from markets.cache import market_data_get
from streams.groups import CONTROL_CHANNEL, StreamKey, group_name
from streams.manager import StreamManager, backoff_delay
from streams.models import StreamSubscription, WatchlistEntry
from tests.streams.support import FaultProxy, embedded_env, eventually, prepared_var_dir, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

HOLDER = "test-holder"


class GroupListener:
    """Everything the manager publishes to one stream's group, in order."""

    def __init__(self, key: StreamKey) -> None:
        self.key = key
        self.layer = get_channel_layer()
        self.updates: list[dict[str, Any]] = []
        self.states: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GroupListener:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(group_name(self.key), self.channel)
        self._task = asyncio.create_task(self._listen())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.layer.group_discard(group_name(self.key), self.channel)

    async def _listen(self) -> None:
        while True:
            event = await self.layer.receive(self.channel)
            frame = json.loads(event["text"])
            if event["type"] == "stream.update":
                frame["_at"] = time.monotonic()
                self.updates.append(frame)
            else:
                self.states.append(frame["state"])


@pytest.fixture
async def manager(venue: Any) -> AsyncIterator[StreamManager]:
    manager = StreamManager(use_watchlist=False)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()
        await close_stream_connectors()


def state(manager: StreamManager, k: StreamKey) -> str | None:
    sub = manager.subscriptions.get(k)
    return sub.state if sub is not None else None


def key(channel: str = "ticker", symbol: str = "BTC/USDT") -> StreamKey:
    return StreamKey("binance", "emulator", channel, symbol)


async def lease(k: StreamKey, holder: str = HOLDER, kind: str = "lease.renew", ttl: float = 30.0) -> None:
    await get_channel_layer().send(
        CONTROL_CHANNEL,
        {"type": kind, "holder": holder, "streams": [[k.exchange, k.channel, k.symbol]], "ttl": ttl},
    )


async def health(k: StreamKey) -> StreamSubscription | None:
    return await sync_to_async(
        StreamSubscription.objects.filter(
            exchange=k.exchange, environment=k.environment, channel=k.channel, symbol=k.symbol
        ).first
    )()


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lows = [backoff_delay(n, base=0.5, cap=30, rng=lambda: 0.0) for n in range(8)]
    highs = [backoff_delay(n, base=0.5, cap=30, rng=lambda: 1.0) for n in range(8)]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0]
    assert highs[:4] == [0.5, 1.0, 2.0, 4.0]
    assert highs[0] <= 1.0  # the first retry comes within a second
    assert max(highs) == 30 and backoff_delay(50, base=0.5, cap=30) <= 30


async def test_a_lease_opens_a_subscription_that_publishes_sequenced_states_and_writes_cache_and_health(
    manager: StreamManager,
) -> None:
    k = key("ticker")
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: len(listener.updates) >= 2, timeout=10)
    first, second = listener.updates[:2]
    assert second["seq"] == first["seq"] + 1
    assert first["data"]["symbol"] == "BTC/USDT" and first["data"]["bid"] and first["data"]["ask"]
    assert first["venue_time_ms"] and first["emit_us"] and first["received_us"] >= first["emit_us"]
    entry = await sync_to_async(market_data_get)(
        exchange="binance", environment="emulator", channel="ticker", symbol="BTC/USDT"
    )
    assert entry is not None and entry.source == "stream" and entry.sequence >= first["seq"]

    def fresh_and_live(row: StreamSubscription | None) -> bool:
        return (
            row is not None
            and row.state == "live"
            and row.leases == 1
            and row.messages >= 2
            and row.effective_state() == "live"
            and (row.age_seconds() or 0) < 2
        )

    # Written every 0.2 s from the I/O thread: wait for it rather than sleep a fixed time.
    row = await eventually(lambda: health(k), fresh_and_live, timeout=15)
    assert row is not None and row.state == "live" and row.leases == 1 and row.messages >= 2
    assert row.effective_state() == "live" and row.age_seconds() < 2


async def test_order_book_states_are_conflated_to_at_most_ten_per_second(
    manager: StreamManager, settings: Any
) -> None:
    settings.STREAMS_MAX_RATE_HZ = 10.0
    k = key("orderbook")
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: len(listener.updates) >= 1, timeout=10)
        assert await wait_until(lambda: len(listener.updates) >= 15, timeout=30)
    # The manager's own publish stamps, not when this listener got round to reading them:
    # on a loaded machine the listener can fall behind and read two frames back to back.
    times = [u["published_us"] / 1e6 for u in listener.updates]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(listener.updates) <= (times[-1] - times[0]) * 10 + 2
    assert min(gaps) >= 0.09  # scheduling slack under the 100 ms floor
    book = listener.updates[-1]["data"]
    assert len(book["bids"]) == 20 and float(book["bids"][0][0]) < float(book["asks"][0][0])
    assert manager.subscriptions[k].messages >= len(listener.updates)


async def test_ohlcv_states_carry_history_first_then_the_current_candles(manager: StreamManager) -> None:
    k = key("ohlcv")
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: len(listener.updates) >= 2, timeout=10)
    first, second = listener.updates[:2]
    assert first["data"]["full"] is True and len(first["data"]["candles"]) > 50
    assert second["data"]["full"] is False and 1 <= len(second["data"]["candles"]) <= 2
    assert second["data"]["candles"][-1][0] >= first["data"]["candles"][-1][0]


async def test_a_stream_is_dropped_a_while_after_its_last_lease_is_released(manager: StreamManager) -> None:
    k = key("trades")
    await lease(k)
    assert await wait_until(lambda: k in manager.subscriptions and manager.subscriptions[k].messages > 0, 10)
    await lease(k, kind="lease.release")
    assert await wait_until(lambda: k not in manager.subscriptions, timeout=10)
    assert await eventually(lambda: health(k), lambda row: row is None, timeout=10) is None


async def test_a_lapsed_lease_also_drops_the_stream(manager: StreamManager) -> None:
    k = key("ticker", "ETH/USDT")
    await lease(k, ttl=0.5)
    assert await wait_until(lambda: k in manager.subscriptions, timeout=10)
    assert await wait_until(lambda: k not in manager.subscriptions, timeout=10)


async def test_the_manager_ignores_control_messages_it_cannot_trust(manager: StreamManager) -> None:
    layer = get_channel_layer()
    await layer.send(
        CONTROL_CHANNEL, {"type": "lease.renew", "holder": "x", "streams": [["evil", "ticker", "A/B"]]}
    )
    await layer.send(CONTROL_CHANNEL, {"type": "lease.renew", "holder": "x", "streams": "nope"})
    await layer.send(CONTROL_CHANNEL, {"type": "lease.renew", "streams": [["binance", "ticker", "BTC/USDT"]]})
    await asyncio.sleep(0.3)
    assert manager.subscriptions == {}


async def test_an_unknown_symbol_fails_without_retrying(manager: StreamManager) -> None:
    k = key("ticker", "NOPE/USDT")
    await lease(k)
    assert await wait_until(
        lambda: k in manager.subscriptions and manager.subscriptions[k].state == "failed", 10
    )
    assert manager.subscriptions[k].reconnects == 0


async def test_watchlist_streams_stay_open_without_any_lease(venue: Any, settings: Any) -> None:
    await sync_to_async(WatchlistEntry.objects.all().delete)()
    await sync_to_async(WatchlistEntry.objects.create)(
        exchange="binance", channel="ticker", symbol="XRP/USDT"
    )
    manager = StreamManager(use_watchlist=True)
    await manager.start()
    try:
        k = key("ticker", "XRP/USDT")
        assert await wait_until(
            lambda: k in manager.subscriptions and manager.subscriptions[k].state == "live", 10
        )
        await asyncio.sleep(1.0)  # well past the linger time
        assert k in manager.subscriptions and manager.subscriptions[k].watchlisted
    finally:
        await manager.stop()
        await close_stream_connectors()


async def test_it_recovers_from_dropped_connections_through_reconnecting_to_live(
    manager: StreamManager, venue: Any
) -> None:
    k = key("ticker")
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: state(manager, k) == "live", timeout=10)
        assert await wait_until(lambda: bool(listener.updates), timeout=5)
        seq_before = listener.updates[-1]["seq"]
        await asyncio.to_thread(venue.stop)  # every socket to the venue is cut
        assert await wait_until(lambda: manager.subscriptions[k].state == "reconnecting", timeout=10)
        row = await eventually(
            lambda: health(k), lambda r: r is not None and r.state == "reconnecting" and r.reconnects >= 1, 10
        )
        assert row is not None and row.state == "reconnecting" and row.reconnects >= 1
        await asyncio.to_thread(venue.start)  # the venue comes back on the same address
        assert await wait_until(lambda: manager.subscriptions[k].state == "live", timeout=20)
        count = len(listener.updates)
        assert await wait_until(lambda: len(listener.updates) > count, timeout=10)
    assert "reconnecting" in listener.states and listener.states[-1] == "live"
    assert listener.updates[-1]["seq"] > seq_before  # the sequence continues, never restarts
    row = await eventually(
        lambda: health(k), lambda r: r is not None and r.state == "live" and r.reconnects >= 1, 10
    )
    assert row is not None and row.state == "live" and row.reconnects >= 1


async def test_a_stalled_socket_goes_stale_then_is_reconnected_and_resubscribed(
    venue: Any, settings: Any
) -> None:
    proxy = FaultProxy(venue.port).start()
    settings.EMULATOR_URL = proxy.url
    settings.STREAMS_STALL_AFTER_S = 3.0
    manager = StreamManager(use_watchlist=False)
    await manager.start()
    k = key("orderbook")
    try:
        async with GroupListener(k) as listener:
            await lease(k)
            assert await wait_until(
                lambda: k in manager.subscriptions and manager.subscriptions[k].state == "live", 10
            )
            proxy.stall(True)  # TCP stays up, nothing flows: a half-open connection
            assert await wait_until(lambda: manager.subscriptions[k].state == "stale", timeout=4)
            assert manager.subscriptions[k].reconnects == 0
            proxy.drop()  # the stall timer's reconnect goes through; the old sockets are gone
            proxy.stall(False)
            assert await wait_until(lambda: manager.subscriptions[k].reconnects >= 1, timeout=6)
            assert await wait_until(lambda: manager.subscriptions[k].state == "live", timeout=10)
        assert listener.states[:3] == ["live", "stale", "reconnecting"] or "stale" in listener.states
        assert listener.states[-1] == "live"
    finally:
        await manager.stop()
        await close_stream_connectors()
        proxy.close()


async def test_the_stall_timer_alone_reconnects_a_half_open_socket(venue: Any, settings: Any) -> None:
    proxy = FaultProxy(venue.port).start()
    settings.EMULATOR_URL = proxy.url
    settings.STREAMS_STALL_AFTER_S = 2.0
    manager = StreamManager(use_watchlist=False)
    await manager.start()
    k = key("trades")
    try:
        await lease(k)
        assert await wait_until(
            lambda: k in manager.subscriptions and manager.subscriptions[k].state == "live", 10
        )
        proxy.stall(True)
        # Nobody touches the connection: only the stall timer can notice and act.
        assert await wait_until(lambda: manager.subscriptions[k].reconnects >= 1, timeout=6)
        proxy.stall(False)
        assert await wait_until(lambda: manager.subscriptions[k].state == "live", timeout=10)
    finally:
        await manager.stop()
        await close_stream_connectors()
        proxy.close()


async def recovers_from(manager: StreamManager, k: StreamKey, inject: Any, *, through: str) -> GroupListener:
    """Lease ``k``, wait until live, ``inject()`` a fault, and wait for ``through`` then live."""
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: state(manager, k) == "live", timeout=10)
        assert await wait_until(lambda: bool(listener.updates), timeout=5)
        await asyncio.to_thread(inject)
        assert await wait_until(lambda: through in listener.states, timeout=10), listener.states
        assert await wait_until(lambda: state(manager, k) == "live" and listener.states[-1] == "live", 15)
        count = len(listener.updates)
        assert await wait_until(lambda: len(listener.updates) > count, timeout=5)
    return listener


async def test_it_recovers_from_the_venue_dropping_its_websockets(manager: StreamManager, venue: Any) -> None:
    k = key("ticker")
    await recovers_from(
        manager, k, lambda: venue.server.faults.set("drop_ws", venue="binance"), through="reconnecting"
    )
    assert manager.subscriptions[k].reconnects >= 1
    row = await eventually(lambda: health(k), lambda r: r is not None and r.reconnects >= 1, 10)
    assert row is not None and row.reconnects >= 1


async def test_it_recovers_from_the_venue_stalling_its_websockets(manager: StreamManager, venue: Any) -> None:
    k = key("orderbook")
    fault: list[str] = []
    listener = await recovers_from(
        manager,
        k,
        lambda: fault.append(venue.server.faults.set("stall_ws", venue="binance")),
        through="stale",
    )
    venue.server.faults.clear(fault[0])
    assert "reconnecting" in listener.states  # the stall timer, not the venue, ended it
    assert manager.subscriptions[k].reconnects >= 1


async def test_it_recovers_from_a_malformed_frame(manager: StreamManager, venue: Any) -> None:
    k = key("orderbook")
    listener = await recovers_from(
        manager, k, lambda: venue.server.faults.set("malformed_frame", venue="binance"), through="stale"
    )
    assert "reconnecting" in listener.states
    assert all(float(u["data"]["bids"][0][0]) < float(u["data"]["asks"][0][0]) for u in listener.updates)


async def test_a_sequence_gap_in_the_depth_stream_never_publishes_an_inconsistent_book(
    manager: StreamManager, venue: Any
) -> None:
    k = key("orderbook")
    async with GroupListener(k) as listener:
        await lease(k)
        assert await wait_until(lambda: state(manager, k) == "live", timeout=10)
        await asyncio.to_thread(venue.server.faults.set, "sequence_gap", "binance")
        await asyncio.sleep(3.0)
        assert await wait_until(lambda: state(manager, k) == "live", timeout=15)
        count = len(listener.updates)
        assert await wait_until(lambda: len(listener.updates) > count, timeout=5)
    # ccxt detects the gap (U != previous u + 1) and rejects the watcher: we reconnect and
    # resnapshot rather than publish a book built across the gap.
    assert "reconnecting" in listener.states and listener.states[-1] == "live"
    assert all(float(u["data"]["bids"][0][0]) < float(u["data"]["asks"][0][0]) for u in listener.updates)


def test_run_streams_stops_cleanly_on_sigterm(venue: Any, tmp_path: Any) -> None:
    env = embedded_env(prepared_var_dir(tmp_path), venue.url)
    manage = [sys.executable, "manage.py"]
    process = subprocess.Popen(
        [*manage, "run_streams"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []  # a layer warning (and whatever else is logged), then "running"
        while not any("stream manager running" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert "stream manager running" in lines[-1], lines
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        # Generous: stop() is bounded (three STREAMS_STOP_GRACE_S at worst), then the
        # interpreter exits; a loaded CI machine adds its own delay.
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert "stream manager stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
