"""One channel-layer membership per process and stream, shared by that process's clients.

If every consumer joined a stream's group itself, each published state would cost, *per
client*, a layer send (a copy and a queue put; a msgpack decode on channels_redis), a
receive, a task and an ``asyncio.wait`` in Channels' consumer loop and a dispatch, before
the frame is even written: most of our CPU per delivery in bench/streams.py. Instead, the
consumers of one process (on one event loop and layer) register here; the fan-out joins a
stream's group once, with one channel of its own, receives each state once and hands the
same pre-serialised text to every local consumer's bounded outbox.

It uses only the layer's public ``new_channel``, ``receive``, ``group_add`` and
``group_discard``, so it behaves the same on the embedded in-memory layer and on
channels_redis. Semantics are unchanged: at most once (a full fan-out channel misses a
state, as a full consumer channel did; the next state is complete), group memberships are
refreshed as the consumers used to refresh theirs, and when the last local client of a
stream leaves, the membership is discarded. With no client left the receive task ends
(on channels_redis that also unsubscribes the channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any, Protocol

from streams.conf import setting
from streams.groups import StreamKey, group_name

__all__ = ["FANOUT_CHANNEL_PREFIX", "StreamFanout", "fanout_for", "receive_forever"]

logger = logging.getLogger("streams.fanout")

#: Fan-out channel names start with this. One publishing pass of the manager can queue one
#: state per stream the process follows, so a layer with a per-channel capacity needs more
#: room for these than a consumer's 100 (streams.layers.EmbeddedChannelLayer gives it).
FANOUT_CHANNEL_PREFIX = "streams.fanout."
#: Event types the manager publishes to stream groups.
STREAM_EVENTS = ("stream.update", "stream.status")


async def receive_forever(layer: Any, channel: str, what: str) -> AsyncIterator[dict[str, Any]]:
    """The messages of a layer channel for as long as the caller reads. A failed receive
    (Redis restarting) is logged and retried after a second instead of ending the reader."""
    while True:
        try:
            message = await layer.receive(channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("%s receive failed; retrying", what, exc_info=True)
            await asyncio.sleep(1.0)
            continue
        yield message


class Subscriber(Protocol):
    def stream_event(self, event: dict[str, Any]) -> None: ...


class StreamFanout:
    """The local subscribers of each stream, behind one layer channel."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        # stream label -> local consumers; weak, so a consumer whose instance died without
        # its disconnect handler is not kept alive by this.
        self.subscribers: dict[str, weakref.WeakSet[Subscriber]] = {}
        self.groups: dict[str, str] = {}  # stream label -> group name
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    async def join(self, key: StreamKey, subscriber: Subscriber) -> None:
        """Deliver ``key``'s events to ``subscriber``; returns once the group is joined, so
        a snapshot read after it cannot miss both the cache and the next update."""
        label = key.label()
        async with self._lock:
            members = self.subscribers.get(label)
            if members is None:
                if self.channel is None:
                    await self._start()
                assert self.channel is not None
                group = group_name(key)
                await self.layer.group_add(group, self.channel)
                self.groups[label] = group
                members = self.subscribers[label] = weakref.WeakSet()
            members.add(subscriber)

    async def leave(self, key: StreamKey, subscriber: Subscriber) -> None:
        label = key.label()
        async with self._lock:
            members = self.subscribers.get(label)
            if members is None:
                return
            members.discard(subscriber)
            if members:
                return
            del self.subscribers[label]
            group = self.groups.pop(label)
            if self.channel is not None:
                await self.layer.group_discard(group, self.channel)
            if not self.subscribers:
                await self._stop()

    def deliver(self, event: dict[str, Any]) -> None:
        """Hand one event to every local subscriber of its stream (no awaiting: each
        consumer only queues it in its outbox, so nobody waits for a slow client)."""
        members = self.subscribers.get(event.get("stream"))  # type: ignore[arg-type]
        if not members:
            return
        for subscriber in tuple(members):
            try:
                subscriber.stream_event(event)
            except Exception:
                logger.exception("a stream consumer failed to take an event")

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel(prefix=FANOUT_CHANNEL_PREFIX)
        self._tasks = [
            asyncio.create_task(self._receive(self.channel), name="streams fan-out"),
            asyncio.create_task(self._refresh(self.channel), name="streams fan-out refresh"),
        ]

    async def _stop(self) -> None:
        tasks, self._tasks, self.channel = self._tasks, [], None
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: the receive's clean-up (a Redis unsubscribe) must not hold a leave up.
            await asyncio.wait(tasks, timeout=float(setting("STREAMS_STOP_GRACE_S")))

    async def _receive(self, channel: str) -> None:
        async for event in receive_forever(self.layer, channel, "stream fan-out"):
            if event.get("type") in STREAM_EVENTS:
                self.deliver(event)

    async def _refresh(self, channel: str) -> None:
        """Re-join the groups now and then: layers may expire memberships (group_expiry)."""
        every = float(setting("STREAMS_LEASE_RENEW_S"))
        while True:
            await asyncio.sleep(every)
            for group in list(self.groups.values()):
                with contextlib.suppress(Exception):
                    await self.layer.group_add(group, channel)


_PerLoop = weakref.WeakKeyDictionary[Any, "StreamFanout"]  # channel layer -> its fan-out
_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PerLoop] = weakref.WeakKeyDictionary()


def fanout_for(layer: Any) -> StreamFanout:
    """The running event loop's fan-out for ``layer`` (layers and loops are not shared)."""
    per_loop = _fanouts.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    fanout = per_loop.get(layer)
    if fanout is None:
        fanout = per_loop[layer] = StreamFanout(layer)
    return fanout
