"""The embedded default's channel layer: Channels' in-memory layer, made linear for fan-out.

``InMemoryChannelLayer`` scans every channel and every group membership for expired
entries on *each* ``receive`` and ``group_send``, so relaying one state to N clients costs
O(N x memberships): measured at ~280 µs of CPU per delivery with 50 dashboard clients
(bench/streams.py). This subclass does that housekeeping at most once a second, sends to
group members without a task each, and copies flat events (our stream events hold only
strings and numbers) with ``dict()`` instead of ``deepcopy``. Semantics are unchanged:
at-most-once, per-channel capacity, message and group expiry. The process's stream
fan-out channel (:mod:`streams.fanout`) gets a capacity for one pending state per stream
unless ``channel_capacity`` configures one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from streams.fanout import FANOUT_CHANNEL_PREFIX

__all__ = ["EmbeddedChannelLayer"]

_FLAT = (str, int, float, bool, type(None))
# Far above the streams one process follows (a consumer's 50 at most each).
FANOUT_CAPACITY = 10_000


class EmbeddedChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args: Any, clean_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Channels' in-memory layer keeps channel_capacity as given (a dict of globs), which its
        # get_capacity cannot read; compiled here, configured patterns first, then the fan-out's.
        configured: dict[Any, int] = dict(kwargs.get("channel_capacity") or {})
        configured.setdefault(FANOUT_CHANNEL_PREFIX + "*", FANOUT_CAPACITY)
        self.channel_capacity = self.compile_capacities(configured)
        self.clean_interval = clean_interval
        self._next_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + self.clean_interval
        super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        if queue.full():
            raise ChannelFull(channel)
        copy = dict(message) if all(isinstance(v, _FLAT) for v in message.values()) else deepcopy(message)
        queue.put_nowait((time.time() + self.expiry, copy))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)  # raises TypeError, as the base layer does
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            # At most once, as with every layer: a full channel misses this state.
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)
