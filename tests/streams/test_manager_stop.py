"""Stopping the stream manager always finishes promptly: whatever its subscriptions are
doing (being dropped, reconnecting, stuck on a stalled venue socket, or inside a library
call that ignores cancellation), ``stop()`` returns within a bound and leaves no task of
its own running.

The first test is the regression for a teardown that hung forever: ``stop()`` cancelled
the housekeeping task while it was awaiting a dropped subscription's task, ``drop()``
swallowed that ``CancelledError`` and housekeeping went on looping, so ``stop()`` waited
for it forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer

import streams.manager as manager_module
from connectors import close_stream_connectors
from streams.groups import CONTROL_CHANNEL, StreamKey
from streams.manager import StreamManager
from tests.streams.support import FaultProxy, embedded_env, prepared_var_dir, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

GRACE_S = 1.0
# stop() waits at most one grace for its tasks, one for the sockets and one for the health
# rows; the rest is slack for a loaded CI machine. A hang is what this catches.
STOP_BOUND_S = 3 * GRACE_S + 7.0


def key(channel: str = "ticker", symbol: str = "BTC/USDT") -> StreamKey:
    return StreamKey("binance", "emulator", channel, symbol)


async def lease(k: StreamKey, *, ttl: float = 30.0, holder: str = "stop-test") -> None:
    await get_channel_layer().send(
        CONTROL_CHANNEL,
        {"type": "lease.renew", "holder": holder, "streams": [[k.exchange, k.channel, k.symbol]], "ttl": ttl},
    )


def state(manager: StreamManager, k: StreamKey) -> str | None:
    sub = manager.subscriptions.get(k)
    return sub.state if sub is not None else None


async def stop_within_bound(manager: StreamManager) -> None:
    """``manager.stop()``, failing the test if it has not returned within the bound; then no
    task the manager started may still be running."""
    try:
        async with asyncio.timeout(STOP_BOUND_S):
            await manager.stop()
    except TimeoutError:
        pytest.fail(f"StreamManager.stop() did not return within {STOP_BOUND_S} s")
    assert not manager.running_tasks(), manager.running_tasks()


@pytest.fixture(autouse=True)
def short_grace(settings: Any) -> None:
    settings.STREAMS_STOP_GRACE_S = GRACE_S


@pytest.fixture
async def manager(venue: Any) -> AsyncIterator[StreamManager]:
    manager = StreamManager(use_watchlist=False)
    await manager.start()
    try:
        yield manager
    finally:
        await stop_within_bound(manager)  # a no-op when the test stopped it already
        await close_stream_connectors()


class StubbornConnector:
    """A stream connector whose watch never delivers (a stalled socket) and, once cancelled,
    takes ``unwind_s`` to give up (a library finishing its unsubscribe). With ``ignore_cancel``
    it swallows every cancellation, and its close never returns, until ``release`` is set
    (the worst library imaginable)."""

    def __init__(self, *, unwind_s: float = 0.0, ignore_cancel: bool = False) -> None:
        self.unwind_s = unwind_s
        self.ignore_cancel = ignore_cancel
        self.release = asyncio.Event()
        self.watching = 0
        self.cancelled = 0
        self.closed = False

    async def watch_ticker(self, symbol: str) -> Any:
        self.watching += 1
        try:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                if not self.ignore_cancel:
                    raise
            # Swallowed: deaf to every further cancellation until the test releases it.
            while not self.release.is_set():
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    self.cancelled += 1
            raise asyncio.CancelledError
        finally:
            if self.unwind_s:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(self.unwind_s)
            self.watching -= 1

    async def close(self) -> None:
        self.closed = True
        if self.ignore_cancel:  # nor does its close handshake ever finish
            await self.release.wait()


@pytest.fixture
def stubborn(monkeypatch: pytest.MonkeyPatch, venue: Any) -> Iterator[StubbornConnector]:
    connector = StubbornConnector()
    monkeypatch.setattr(manager_module, "create_stream_connector", lambda *a, **kw: connector)
    yield connector
    connector.release.set()


async def test_stop_while_a_lapsed_stream_is_being_dropped_finishes(
    manager: StreamManager, stubborn: StubbornConnector
) -> None:
    """The CI hang: the housekeeping task is inside ``drop()`` (the subscription is gone from
    ``subscriptions``, its task still unwinding) when ``stop()`` cancels it."""
    stubborn.unwind_s = 0.5  # the dropped task takes a while to finish
    k = key("ticker", "ETH/USDT")
    await lease(k, ttl=0.3)
    assert await wait_until(lambda: k in manager.subscriptions and stubborn.watching == 1, timeout=10)
    assert await wait_until(lambda: k not in manager.subscriptions, timeout=10)
    assert stubborn.watching == 1, "the drop should still be waiting for the task"
    await stop_within_bound(manager)
    assert stubborn.watching == 0


async def test_stop_while_a_real_lapsed_stream_is_being_dropped_finishes(manager: StreamManager) -> None:
    """The same race against the emulator, as in the test that hung: stop right as the
    stream leaves ``subscriptions``."""
    k = key("ticker", "ETH/USDT")
    await lease(k, ttl=0.5)
    assert await wait_until(lambda: k in manager.subscriptions, timeout=10)
    assert await wait_until(lambda: k not in manager.subscriptions, timeout=10, step=0.001)
    await stop_within_bound(manager)


async def test_a_drop_that_is_cancelled_passes_the_cancellation_on(
    manager: StreamManager, stubborn: StubbornConnector
) -> None:
    stubborn.unwind_s = 2.0
    k = key()
    manager.ensure(k)
    assert await wait_until(lambda: stubborn.watching == 1, timeout=10)
    dropping = asyncio.create_task(manager.drop(k))
    assert await wait_until(lambda: stubborn.cancelled == 1, timeout=5)
    dropping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dropping


async def test_stop_is_bounded_even_when_a_watch_ignores_cancellation(
    manager: StreamManager, stubborn: StubbornConnector, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn.ignore_cancel = True
    k = key()
    await lease(k)
    assert await wait_until(lambda: stubborn.watching == 1, timeout=10)
    with caplog.at_level(logging.WARNING, logger="streams.manager"):
        async with asyncio.timeout(STOP_BOUND_S):
            await manager.stop()
    assert "did not finish" in caplog.text and "not closed within" in caplog.text
    assert stubborn.closed
    stubborn.release.set()  # the library gives up at last: nothing of ours is left behind
    assert await wait_until(lambda: not manager.running_tasks(), timeout=10), manager.running_tasks()


async def test_a_second_stop_waits_for_the_first(manager: StreamManager, stubborn: StubbornConnector) -> None:
    stubborn.unwind_s = 0.5
    await lease(key())
    assert await wait_until(lambda: stubborn.watching == 1, timeout=10)
    first = asyncio.create_task(manager.stop())
    await asyncio.sleep(0)
    async with asyncio.timeout(STOP_BOUND_S):
        await manager.stop()
    assert first.done() and stubborn.watching == 0
    await first


async def test_stop_is_prompt_while_the_venue_stalls_its_websockets(
    manager: StreamManager, venue: Any
) -> None:
    ticker, book = key("ticker"), key("orderbook")
    await lease(ticker)
    await lease(book)
    assert await wait_until(lambda: state(manager, ticker) == state(manager, book) == "live", timeout=15)
    await asyncio.to_thread(venue.server.faults.set, "stall_ws", "binance")
    # Silence: the streams go stale (the stall timer, 4 s here, has not acted yet).
    assert await wait_until(lambda: state(manager, ticker) == state(manager, book) == "stale", timeout=15)
    await stop_within_bound(manager)


async def test_stop_is_prompt_while_a_stream_is_reconnecting(manager: StreamManager, venue: Any) -> None:
    """The venue goes away: every attempt fails and the stream sits in its backoff.

    (Not ``drop_ws``: ccxt quietly redials a dropped socket when no watch is pending on it
    at that instant, so on a loaded machine the stream may never be seen reconnecting.)"""
    k = key("trades")
    await lease(k)
    assert await wait_until(lambda: state(manager, k) == "live", timeout=15)
    await asyncio.to_thread(venue.stop)
    assert await wait_until(
        lambda: state(manager, k) == "reconnecting" and manager.subscriptions[k].reconnects >= 2, timeout=15
    )
    await stop_within_bound(manager)


async def test_stop_is_prompt_while_reconnecting_through_a_frozen_link(venue: Any, settings: Any) -> None:
    """The link freezes (TCP up, nothing flows), the stall timer closes the socket and the
    stream reconnects into the same frozen link: its new socket hangs in the handshake, and
    the old one's close waits for a close frame that never comes."""
    proxy = FaultProxy(venue.port).start()
    settings.EMULATOR_URL = proxy.url
    settings.STREAMS_STALL_AFTER_S = 2.0
    manager = StreamManager(use_watchlist=False)
    await manager.start()
    k = key("orderbook")
    try:
        await lease(k)
        assert await wait_until(lambda: state(manager, k) == "live", timeout=15)
        proxy.stall(True)
        assert await wait_until(lambda: manager.subscriptions[k].reconnects >= 1, timeout=15)
        await asyncio.sleep(0.5)  # into the next attempt's handshake
        await stop_within_bound(manager)
    finally:
        await stop_within_bound(manager)
        await close_stream_connectors()
        proxy.close()


def test_run_streams_stops_promptly_on_sigterm_while_its_sockets_are_stalled(
    venue: Any, tmp_path: Any
) -> None:
    """SIGTERM takes the same bounded path: the default watchlist's streams are stuck on a
    stalled venue socket, and the process still exits, cleanly, well within the bound."""
    env = embedded_env(prepared_var_dir(tmp_path), venue.url)
    env["LOG_LEVEL"] = "INFO"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_streams"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a watchlisted stream has a message
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "is live" in line:
                break
        assert any("is live" in line for line in lines), "".join(lines)
        venue.server.faults.set("stall_ws", venue="binance")
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, "".join(lines) + output
        assert "stream manager stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
