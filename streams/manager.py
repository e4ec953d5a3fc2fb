"""The stream manager: holds exchange WebSocket subscriptions and relays their state.

Shape (see docs/streams.md for the whole story):

* **One asyncio task per subscription** (:meth:`StreamManager._run`), kept in a set with a
  done-callback. It calls the connector's ``watch_*`` in a loop; on any error it marks the
  stream ``reconnecting``, waits an exponential backoff with jitter and calls again (ccxt
  opens a new socket and resubscribes). A **stall timer** watches the gap between
  messages: past ``STREAMS_STALE_AFTER_S`` the stream is ``stale``; past the channel's
  stall limit the socket is presumed half-open, closed, and reopened.
* **Demand**: consumers send leases to :data:`~streams.groups.CONTROL_CHANNEL` and renew
  them; the manager alone opens and closes subscriptions, dropping one
  ``STREAMS_LINGER_S`` after its last lease lapsed. The operator's watchlist (admin) keeps
  its streams open regardless.
* **Conflation**: each message replaces the stream's latest state; one publisher task
  sends at most ``STREAMS_MAX_RATE_HZ`` messages per stream (leading edge: an update that
  follows a quiet spell goes out at once), as one ``group_send`` of a pre-serialised,
  self-contained frame. The latest state also goes to the market-data cache
  (:mod:`markets.cache`), at most every ``STREAMS_CACHE_INTERVAL_S``.
* **Health** rows (:class:`~streams.models.StreamSubscription`) are upserted in one query
  per ``STREAMS_HEALTH_INTERVAL_S``, from a dedicated I/O thread so neither the event loop
  nor the web process's request thread waits on the database.
* **Stopping is bounded**: every wait on a cancelled task, a closing socket or the I/O
  thread is an ``asyncio.wait`` with a timeout (``STREAMS_STOP_GRACE_S``), never an
  unbounded ``await``, and no wait swallows the waiter's own cancellation (a ``drop()``
  that did once hung ``stop()`` forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connections

from connectors import (
    BadSymbol,
    InvalidInput,
    NotSupported,
    create_connector,
    create_stream_connector,
)
from connectors import close_stream_connectors as _close_stream_connectors
from markets.cache import market_data_get, market_data_put
from streams.conf import setting, stall_after
from streams.fanout import receive_forever
from streams.groups import CONTROL_CHANNEL, STREAM_CHANNELS, StreamKey, group_name
from streams.models import StreamState, StreamSubscription, WatchlistEntry
from streams.payloads import emit_stamp_us, merge_candles, shape_book, shape_ticker, shape_trades

__all__ = ["StreamManager", "Subscription", "backoff_delay"]

logger = logging.getLogger("streams.manager")

# Errors that reconnecting cannot fix: the stream is marked failed and left alone.
PERMANENT_ERRORS = (BadSymbol, NotSupported, InvalidInput)


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    Attempt 0 waits between base/2 and base, so the first retry comes within a second;
    the jitter spreads many streams reconnecting at once (catalogue B2 #1, #11).
    """
    step = min(cap, base * (2 ** min(attempt, 20)))
    return step / 2 + rng() * step / 2


# Close calls in flight (a reference keeps them from being collected mid-way).
_closing: set[asyncio.Future[Any]] = set()


class Stalled(Exception):
    """No message for longer than the stall limit: the socket is presumed half-open."""


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(eq=False)
class Subscription:
    """One exchange subscription and everything the manager knows about it."""

    key: StreamKey
    watchlisted: bool = False
    state: str = StreamState.CONNECTING
    leases: dict[str, float] = field(default_factory=dict)  # holder -> expiry (monotonic)
    idle_since: float | None = None
    task: asyncio.Task[None] | None = None
    # Latest state and its stamps.
    data: Any = None
    candles: list[list[Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    venue_time_ms: int | None = None
    emit_us: int | None = None
    received_us: int | None = None
    last_message_mono: float | None = None
    live_since: float | None = None
    # Counters.
    seq: int = 0
    messages: int = 0
    published: int = 0
    reconnects: int = 0
    last_error: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Publishing bookkeeping.
    dirty: bool = False
    full_next: bool = True
    last_publish: float = 0.0
    last_cache_write: float = 0.0
    health_version: int = 0
    health_written: int = -1

    @functools.cached_property
    def group(self) -> str:
        return group_name(self.key)  # once: escaping the symbol is not free, and it is per publish

    def changed(self) -> None:
        self.health_version += 1

    def set_state(self, state: str, error: str = "") -> bool:
        if error:
            self.last_error = error[:300]
        if state == self.state:
            return False
        self.state = state
        self.changed()
        return True

    def wanted(self) -> bool:
        return self.watchlisted or bool(self.leases)


class StreamManager:
    """Owns every exchange subscription of one deployment (one instance, one event loop)."""

    def __init__(
        self,
        *,
        channel_layer: Any = None,
        environment: str | None = None,
        emulator_url: str | None = None,
        use_watchlist: bool = True,
    ) -> None:
        self.layer = channel_layer or get_channel_layer()
        self.environment = environment or settings.MARKET_DATA_ENVIRONMENT
        self.emulator_url = emulator_url or settings.EMULATOR_URL
        self.use_watchlist = use_watchlist
        self.subscriptions: dict[StreamKey, Subscription] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._service_tasks: list[asyncio.Task[Any]] = []
        self._connectors: set[Any] = set()  # the stream connectors this manager has used
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        self._started = False
        self._dropped_rows: set[StreamKey] = set()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streams-io")
        self.interval = 1.0 / float(setting("STREAMS_MAX_RATE_HZ"))
        self.stale_after = float(setting("STREAMS_STALE_AFTER_S"))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Clear old health rows, then start the control, publisher and housekeeping tasks."""
        if self._started:
            return
        self._started = True
        await self._in_io(self._clear_rows)
        for coro in (self._control_loop(), self._publish_loop(), self._housekeeping_loop()):
            task = asyncio.create_task(coro)
            self._service_tasks.append(task)
            task.add_done_callback(self._service_done)
        logger.info("stream manager started (%s environment)", self.environment)

    async def stop(self) -> None:
        """Cancel every task, close the exchange sockets, delete this manager's health rows.

        Always returns promptly: each of those three steps waits at most
        ``STREAMS_STOP_GRACE_S``; a task or a socket that has not finished by then is
        logged and left to finish on its own. Calling it again (a second SIGTERM, a
        lifespan shutdown after the Twisted trigger) waits for the same stop."""
        if self._stop_task is None:
            self._stopping = True
            self._stop_task = asyncio.ensure_future(self._stop())
        # Shielded: a caller that gives up waiting does not abort the stop half-way.
        await asyncio.shield(self._stop_task)

    async def _stop(self) -> None:
        grace = float(setting("STREAMS_STOP_GRACE_S"))
        await self._cancel_tasks(grace)
        await self._close_sockets(grace)
        done, _ = await asyncio.wait({asyncio.ensure_future(self._in_io(self._last_io))}, timeout=grace)
        if not done:
            logger.warning("stream health rows not deleted within %.1f s; stopping without", grace)
        else:
            with contextlib.suppress(Exception):
                done.pop().result()
        self._io.shutdown(wait=False)
        logger.info("stream manager stopped")

    def running_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks this manager started that have not finished (after stop(): none, unless
        some code ignored cancellation for longer than the grace)."""
        return [task for task in (*self._service_tasks, *self._tasks) if not task.done()]

    async def _cancel_tasks(self, grace: float) -> None:
        """Cancel every task and wait, at most ``grace``, for them to finish. Cancelled twice,
        half-way: a task spawned meanwhile, or one that caught the first cancellation to
        clean up and is stuck doing so, is told again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for attempt in range(2):
            tasks = self.running_tasks()
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            timeout = (deadline - loop.time()) / (2 - attempt)
            await asyncio.wait(tasks, timeout=max(timeout, 0.0))
        stuck = self.running_tasks()
        if stuck:
            logger.warning(
                "%d stream task(s) did not finish within %.1f s of being cancelled; stopping without "
                "them: %s",
                len(stuck),
                grace,
                ", ".join(sorted(task.get_name() for task in stuck)),
            )

    async def _close_sockets(self, grace: float) -> None:
        """Close the exchange sockets (every connector at once, and any stall-timer close
        still in flight), waiting at most ``grace``: a close handshake on a stalled socket
        is never answered."""
        loop = asyncio.get_running_loop()
        ours = {asyncio.ensure_future(c.close()) for c in self._connectors}
        ours |= {f for f in _closing if not f.done() and f.get_loop() is loop}
        # Then the rest of this loop's cached connectors (the manager's are closed by then).
        closes = {*ours, asyncio.ensure_future(self._close_cached_connectors(frozenset(ours)))}
        _, pending = await asyncio.wait(closes, timeout=grace)
        for future in closes - pending:
            if not future.cancelled() and future.exception() is not None:
                logger.info("error while closing exchange sockets ignored: %r", future.exception())
        if pending:
            logger.warning(
                "exchange sockets not closed within %.1f s; abandoning %d close(s)", grace, len(pending)
            )
            for future in pending:
                future.cancel()
        self._connectors.clear()

    @staticmethod
    async def _close_cached_connectors(first: frozenset[asyncio.Future[Any]]) -> None:
        if first:
            await asyncio.wait(first)
        await _close_stream_connectors()

    def _last_io(self) -> None:
        """The I/O thread's last job: delete the health rows, close its database connection."""
        try:
            self._clear_rows()
        finally:
            connections.close_all()

    def _service_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream manager service task died", exc_info=task.exception())

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream task %s died", task.get_name(), exc_info=task.exception())

    def _helper_done(self, task: asyncio.Future[Any]) -> None:
        """A helper whose outcome its owner stopped waiting for (a watch cancelled when its
        subscription stopped): retrieved here so asyncio does not report it as lost."""
        self._tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled():
            task.exception()

    async def _in_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        def call() -> Any:
            close_old_connections()
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._io, call)

    # ------------------------------------------------------------------ demand

    def ensure(self, key: StreamKey, *, watchlisted: bool = False) -> Subscription:
        """The subscription for ``key``, started if it was not held yet."""
        sub = self.subscriptions.get(key)
        if sub is None:
            sub = Subscription(key=key, watchlisted=watchlisted)
            self.subscriptions[key] = sub
            self._dropped_rows.discard(key)
            if not self._stopping:  # nothing new starts once stop() has begun
                sub.task = asyncio.create_task(self._run(sub), name=f"stream {key.label()}")
                self._tasks.add(sub.task)
                sub.task.add_done_callback(self._task_done)
                logger.info("subscribing %s", key.label())
        elif watchlisted:
            sub.watchlisted = True
        sub.idle_since = None
        sub.changed()
        return sub

    async def drop(self, *keys: StreamKey) -> None:
        """Stop holding these streams: cancel their tasks and wait (at most
        ``STREAMS_STOP_GRACE_S``) for them to finish.

        The wait is an ``asyncio.wait``, not ``await task``: the caller's own cancellation
        (``stop()`` cancelling the housekeeping task mid-drop) must propagate, never be taken
        for the dropped task's, and a task slow to unwind must not hold the caller up."""
        tasks = []
        for key in keys:
            sub = self.subscriptions.pop(key, None)
            if sub is None:
                continue
            logger.info("dropping %s (no lease for %.1f s)", key.label(), setting("STREAMS_LINGER_S"))
            self._dropped_rows.add(key)
            if sub.task is not None and not sub.task.done():
                sub.task.cancel()
                tasks.append(sub.task)
        if not tasks:
            return
        grace = float(setting("STREAMS_STOP_GRACE_S"))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:  # still in self._tasks: stop() will wait for it again
            logger.warning("%s did not finish within %.1f s of being dropped", task.get_name(), grace)

    def lease(self, key: StreamKey, holder: str, ttl: float) -> None:
        sub = self.ensure(key)
        sub.leases[holder] = time.monotonic() + ttl

    def release(self, key: StreamKey, holder: str) -> None:
        sub = self.subscriptions.get(key)
        if sub is None:
            return
        sub.leases.pop(holder, None)
        sub.changed()
        if not sub.wanted() and sub.idle_since is None:
            sub.idle_since = time.monotonic()

    def _stream_keys(self, message: dict[str, Any]) -> list[StreamKey]:
        """Streams named in a control message, checked: the manager trusts no sender."""
        allowed = set(setting("STREAMS_EXCHANGES"))
        keys = []
        for item in message.get("streams") or []:
            if not (
                isinstance(item, list | tuple) and len(item) == 3 and all(isinstance(p, str) for p in item)
            ):
                continue
            exchange, channel, symbol = item
            if exchange in allowed and channel in STREAM_CHANNELS and 0 < len(symbol) <= 64:
                keys.append(StreamKey(exchange, self.environment, channel, symbol))
        return keys

    def handle_control(self, message: dict[str, Any]) -> None:
        holder = message.get("holder")
        if not isinstance(holder, str):
            return
        kind = message.get("type")
        if kind == "lease.renew":
            ttl = min(float(message.get("ttl") or setting("STREAMS_LEASE_TTL_S")), 300.0)
            for key in self._stream_keys(message):
                self.lease(key, holder, ttl)
        elif kind == "lease.release":
            for key in self._stream_keys(message):
                self.release(key, holder)

    async def _control_loop(self) -> None:
        async for message in receive_forever(self.layer, CONTROL_CHANNEL, "control channel"):
            try:
                self.handle_control(message)
            except Exception:
                logger.exception("bad control message ignored")

    def sweep_leases(self, now: float | None = None) -> list[StreamKey]:
        """Expire lapsed leases; return the streams whose linger time is over."""
        now = time.monotonic() if now is None else now
        linger = float(setting("STREAMS_LINGER_S"))
        to_drop = []
        for key, sub in self.subscriptions.items():
            lapsed = [holder for holder, expiry in sub.leases.items() if expiry <= now]
            for holder in lapsed:
                expiry = sub.leases.pop(holder)
                sub.changed()
                if not sub.leases:
                    sub.idle_since = expiry
            if sub.wanted():
                sub.idle_since = None
                continue
            if sub.idle_since is None:
                sub.idle_since = now
            if now - sub.idle_since >= linger:
                to_drop.append(key)
        return to_drop

    async def _refresh_watchlist(self) -> None:
        def read() -> list[tuple[str, str, str]]:
            return list(
                WatchlistEntry.objects.filter(enabled=True).values_list("exchange", "channel", "symbol")
            )

        try:
            rows = await self._in_io(read)
        except Exception:
            logger.warning("could not read the watchlist", exc_info=True)
            return
        allowed = set(setting("STREAMS_EXCHANGES"))
        wanted = {
            StreamKey(exchange, self.environment, channel, symbol)
            for exchange, channel, symbol in rows
            if exchange in allowed and channel in STREAM_CHANNELS
        }
        for key in wanted:
            self.ensure(key, watchlisted=True)
        for key, sub in self.subscriptions.items():
            if sub.watchlisted and key not in wanted:
                sub.watchlisted = False
                sub.changed()

    async def _housekeeping_loop(self) -> None:
        refresh_every = float(setting("STREAMS_WATCHLIST_REFRESH_S"))
        health_every = float(setting("STREAMS_HEALTH_INTERVAL_S"))
        next_refresh = 0.0
        while True:
            now = time.monotonic()
            if self.use_watchlist and now >= next_refresh:
                await self._refresh_watchlist()
                next_refresh = now + refresh_every
            await self.drop(*self.sweep_leases())
            self._check_staleness()
            try:
                await self._write_health()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("could not write stream health", exc_info=True)
            await asyncio.sleep(min(health_every, 0.5))

    def _check_staleness(self) -> None:
        now = time.monotonic()
        for sub in self.subscriptions.values():
            quiet = now - (sub.last_message_mono or now) > self.stale_after
            if sub.state == StreamState.LIVE and quiet and sub.set_state(StreamState.STALE):
                self._status(sub)

    # ------------------------------------------------------------------ health rows

    def _clear_rows(self) -> None:
        StreamSubscription.objects.filter(environment=self.environment).delete()

    async def _write_health(self) -> None:
        health_every = float(setting("STREAMS_HEALTH_INTERVAL_S"))
        rows = []
        now = datetime.now(UTC)
        for sub in self.subscriptions.values():
            # Live streams change every message; write them once per interval, as a heartbeat too.
            due = sub.health_written != sub.health_version or (
                sub.messages and now.timestamp() - getattr(sub, "_health_at", 0.0) >= health_every
            )
            if not due:
                continue
            sub.health_written = sub.health_version
            sub._health_at = now.timestamp()  # type: ignore[attr-defined]
            last = (
                datetime.fromtimestamp(sub.received_us / 1e6, tz=UTC) if sub.received_us is not None else None
            )
            rows.append(
                StreamSubscription(
                    exchange=sub.key.exchange,
                    environment=sub.key.environment,
                    channel=sub.key.channel,
                    symbol=sub.key.symbol,
                    state=sub.state,
                    watchlisted=sub.watchlisted,
                    leases=len(sub.leases),
                    last_message_at=last,
                    last_event_time_ms=sub.venue_time_ms,
                    messages=sub.messages,
                    published=sub.published,
                    reconnects=sub.reconnects,
                    last_error=sub.last_error,
                    started_at=sub.started_at,
                    updated_at=now,
                )
            )
        dropped = list(self._dropped_rows)
        self._dropped_rows.clear()
        if rows or dropped:
            await self._in_io(self._save_rows, rows, dropped)

    @staticmethod
    def _save_rows(rows: list[StreamSubscription], dropped: list[StreamKey]) -> None:
        if rows:
            StreamSubscription.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["exchange", "environment", "channel", "symbol"],
                update_fields=[
                    "state", "watchlisted", "leases", "last_message_at", "last_event_time_ms", "messages",
                    "published", "reconnects", "last_error", "started_at", "updated_at",
                ],
            )  # fmt: skip
        for key in dropped:
            StreamSubscription.objects.filter(
                exchange=key.exchange, environment=key.environment, channel=key.channel, symbol=key.symbol
            ).delete()

    # ------------------------------------------------------------------ one task per subscription

    async def _run(self, sub: Subscription) -> None:
        """Watch one stream forever: reconnect with backoff on errors and stalls."""
        base = float(setting("STREAMS_BACKOFF_BASE_S"))
        cap = float(setting("STREAMS_BACKOFF_CAP_S"))
        reset_after = float(setting("STREAMS_BACKOFF_RESET_AFTER_S"))
        await self._seed_sequence(sub)
        attempt = 0
        while True:
            try:
                connector = create_stream_connector(
                    sub.key.exchange, environment=sub.key.environment, emulator_url=self.emulator_url
                )
                self._connectors.add(connector)
                if sub.key.channel == "ohlcv":
                    await self._load_candles(sub)
                await self._consume(sub, connector)
            except PERMANENT_ERRORS as exc:
                logger.warning("%s failed for good: %s", sub.key.label(), exc)
                if sub.set_state(StreamState.FAILED, f"{type(exc).__name__}: {exc}"):
                    self._status(sub)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # A ccxt future cancelled under us (its client closed): just another disconnect.
                error = "stream cancelled by the client library"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if sub.live_since is not None and time.monotonic() - sub.live_since >= reset_after:
                attempt = 0
            sub.live_since = None
            sub.reconnects += 1
            sub.set_state(StreamState.RECONNECTING, error)
            sub.changed()
            self._status(sub)  # every reconnect, so clients see the count rise
            delay = backoff_delay(attempt, base=base, cap=cap)
            attempt += 1
            logger.info("%s: %s; reconnecting in %.2f s", sub.key.label(), error, delay)
            await asyncio.sleep(delay)

    async def _consume(self, sub: Subscription, connector: Any) -> None:
        stall = stall_after(sub.key.channel)
        started = time.monotonic()
        check = min(0.25, self.stale_after / 4)
        pending: asyncio.Task[tuple[Any, int | None, int | None]] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.create_task(self._next(sub, connector), name=f"watch {sub.key.label()}")
                    pending.add_done_callback(self._helper_done)
                done, _ = await asyncio.wait({pending}, timeout=check)
                if not done:
                    now = time.monotonic()
                    quiet = now - max(sub.last_message_mono or started, started)
                    if quiet >= stall:
                        self._force_reconnect(connector, stall)
                        raise Stalled(f"no message for {quiet:.1f} s")
                    stale = quiet >= self.stale_after and sub.state == StreamState.LIVE
                    if stale and sub.set_state(StreamState.STALE):
                        self._status(sub)
                    continue
                finished, pending = pending, None
                self._on_message(sub, *finished.result())
        finally:
            if pending is not None and not pending.done():
                # Bounded, and our own cancellation propagates (``await pending`` inside a
                # suppress(BaseException) used to swallow it). A watch that outlives the wait
                # is kept in self._tasks, so stop() still waits for it.
                pending.cancel()
                self._tasks.add(pending)
                await asyncio.wait({pending}, timeout=min(1.0, float(setting("STREAMS_STOP_GRACE_S"))))

    async def _next(self, sub: Subscription, connector: Any) -> tuple[Any, int | None, int | None]:
        """The next state of the stream: (data, venue time ms, emulator emit stamp µs)."""
        channel, symbol = sub.key.channel, sub.key.symbol
        if channel == "ticker":
            ticker = await connector.watch_ticker(symbol)
            return shape_ticker(ticker), ticker.get("timestamp"), emit_stamp_us(ticker.get("info"))
        if channel == "orderbook":
            book = await connector.watch_order_book(symbol)
            return shape_book(book, int(setting("STREAMS_BOOK_DEPTH"))), book.get("timestamp"), None
        if channel == "trades":
            trades = await connector.watch_trades(symbol)
            sub.trades = shape_trades(trades, sub.trades, int(setting("STREAMS_TRADES_KEPT")))
            last = trades[-1] if trades else {}
            return sub.trades, last.get("timestamp"), emit_stamp_us(last.get("info"))
        candles = await connector.watch_ohlcv(symbol, setting("STREAMS_OHLCV_TIMEFRAME"))
        sub.candles = merge_candles(sub.candles, candles, int(setting("STREAMS_OHLCV_HISTORY")))
        return sub.candles, (int(candles[-1][0]) if candles else None), None

    async def _load_candles(self, sub: Subscription) -> None:
        """OHLCV history over REST on every (re)connect, so a gap while disconnected is filled."""
        timeframe = setting("STREAMS_OHLCV_TIMEFRAME")
        limit = int(setting("STREAMS_OHLCV_HISTORY"))

        def fetch() -> list[list[Any]]:
            connector = create_connector(
                sub.key.exchange, environment=sub.key.environment, emulator_url=self.emulator_url
            )
            return connector.fetch_ohlcv(sub.key.symbol, timeframe, limit=limit)

        candles = await self._in_io(fetch)
        sub.candles = merge_candles(sub.candles, candles, limit)
        sub.full_next = True

    @staticmethod
    def _force_reconnect(connector: Any, stall: float) -> None:
        """Close the sockets that went quiet (all of this venue's, if none looks quiet):
        every watcher on them gets a NetworkError and reconnects, resubscribing."""
        import ccxt

        exchange = connector.exchange
        clients = dict(getattr(exchange, "clients", None) or {})
        now_ms = exchange.milliseconds()
        quiet = {
            url: c
            for url, c in clients.items()
            if now_ms - (c.last_message_at or getattr(c, "connectionEstablished", 0) or 0) >= stall * 900
        }
        for url, client in (quiet or clients).items():
            error = ccxt.NetworkError(f"{url}: no message for {stall:.0f} s, reconnecting")
            client.error = error
            client.reject(error)
            closing = asyncio.ensure_future(client.close())
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
            if exchange.clients.get(url) is client:
                del exchange.clients[url]

    def _on_message(
        self, sub: Subscription, data: Any, venue_time_ms: int | None, emit_us: int | None
    ) -> None:
        sub.data = data
        sub.venue_time_ms = venue_time_ms
        sub.emit_us = emit_us
        sub.received_us = _now_us()
        sub.last_message_mono = time.monotonic()
        sub.messages += 1
        if sub.state != StreamState.LIVE:
            if sub.state in (StreamState.CONNECTING, StreamState.RECONNECTING):
                logger.info("%s is live", sub.key.label())
            sub.set_state(StreamState.LIVE)
            sub.live_since = sub.last_message_mono
            self._status(sub)
        self._mark_dirty(sub)

    # ------------------------------------------------------------------ conflation and publishing

    def _mark_dirty(self, sub: Subscription) -> None:
        if not sub.dirty:
            sub.dirty = True
            self._wakeup.set()

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            now = loop.time()
            next_due: float | None = None
            for sub in list(self.subscriptions.values()):
                if not sub.dirty:
                    continue
                due = sub.last_publish + self.interval
                if due <= now:
                    sub.dirty = False
                    sub.last_publish = now
                    try:
                        await self._publish(sub)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        logger.warning("publishing %s failed", sub.key.label(), exc_info=True)
                else:
                    next_due = due if next_due is None else min(next_due, due)
            timeout = None if next_due is None else max(0.0, next_due - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def frame(self, sub: Subscription, *, full: bool) -> dict[str, Any]:
        """The self-contained message a client receives for the stream's current state."""
        data = sub.data
        if sub.key.channel == "ohlcv":
            data = {
                "timeframe": setting("STREAMS_OHLCV_TIMEFRAME"),
                "candles": sub.candles if full else sub.candles[-2:],
                "full": full,
            }
        return {
            "type": "update",
            "exchange": sub.key.exchange,
            "environment": sub.key.environment,
            "channel": sub.key.channel,
            "symbol": sub.key.symbol,
            "seq": sub.seq,
            "venue_time_ms": sub.venue_time_ms,
            "emit_us": sub.emit_us,
            "received_us": sub.received_us,
            "published_us": _now_us(),
            "data": data,
        }

    async def _publish(self, sub: Subscription) -> None:
        sub.seq += 1
        first = sub.published == 0
        full = sub.full_next
        sub.full_next = False
        message = self.frame(sub, full=full)
        now = time.monotonic()
        if first:
            # Written before the first publish so a consumer that joins the group, then reads
            # the cache for its snapshot, cannot miss both.
            await self._write_cache(sub, message)
        elif now - sub.last_cache_write >= float(setting("STREAMS_CACHE_INTERVAL_S")):
            self._spawn(self._write_cache(sub, message))
        await self.layer.group_send(
            sub.group,
            {
                "type": "stream.update",
                "stream": sub.key.label(),
                "seq": sub.seq,
                "text": orjson.dumps(message).decode(),
            },
        )
        sub.published += 1

    async def _write_cache(self, sub: Subscription, message: dict[str, Any]) -> None:
        sub.last_cache_write = time.monotonic()
        data = message["data"]
        if sub.key.channel == "ohlcv":
            data = {**data, "candles": sub.candles, "full": True}
        names = {
            "exchange": sub.key.exchange,
            "environment": sub.key.environment,
            "channel": sub.key.channel,
            "symbol": sub.key.symbol,
        }

        def put() -> None:
            market_data_put(
                **names,
                data=data,
                source="stream",
                venue_time_ms=message["venue_time_ms"],
                received_time_ms=(message["received_us"] or _now_us()) // 1000,
                sequence=message["seq"],
            )

        try:
            await self._in_io(put)
        except Exception:
            logger.warning("cache write for %s failed", sub.key.label(), exc_info=True)

    async def _seed_sequence(self, sub: Subscription) -> None:
        """Continue the sequence of the cached entry, so a restart never makes it go back."""

        def read() -> int:
            entry = market_data_get(
                exchange=sub.key.exchange,
                environment=sub.key.environment,
                channel=sub.key.channel,
                symbol=sub.key.symbol,
            )
            return entry.sequence if entry is not None else 0

        try:
            sub.seq = max(sub.seq, await self._in_io(read))
        except Exception:
            logger.info("no cached sequence for %s", sub.key.label())

    def _status(self, sub: Subscription) -> None:
        """Tell the stream's clients its state changed (live, stale, reconnecting, failed)."""
        message = {
            "type": "status",
            "exchange": sub.key.exchange,
            "environment": sub.key.environment,
            "channel": sub.key.channel,
            "symbol": sub.key.symbol,
            "state": sub.state,
            "reconnects": sub.reconnects,
            "error": sub.last_error if sub.state != StreamState.LIVE else "",
        }
        event = {"type": "stream.status", "stream": sub.key.label(), "text": orjson.dumps(message).decode()}
        self._spawn(self.layer.group_send(sub.group, event))

    def _spawn(self, coro: Any) -> None:
        if self._stopping:  # stop() is cancelling every task: start no new ones
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ChannelFull):
                logger.warning("background send failed: %r", exc)

    # ------------------------------------------------------------------ introspection (tests, admin)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            key.label(): {
                "state": sub.state,
                "reconnects": sub.reconnects,
                "messages": sub.messages,
                "published": sub.published,
                "leases": len(sub.leases),
                "seq": sub.seq,
            }
            for key, sub in self.subscriptions.items()
        }
