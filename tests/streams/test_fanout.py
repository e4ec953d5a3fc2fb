"""The per-process stream fan-out on the embedded layer: one membership per stream, every
state handed to each local subscriber, memberships given up with the last subscriber."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.fanout import fanout_for
from streams.groups import StreamKey, group_name
from streams.layers import EmbeddedChannelLayer
from tests.streams.support import wait_until


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def stream_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def key(n: int) -> StreamKey:
    return StreamKey("binance", "emulator", "ticker", f"C{n}/USDT")


def event(k: StreamKey, seq: int) -> dict[str, Any]:
    return {"type": "stream.update", "stream": k.label(), "seq": seq, "text": "{}"}


async def test_one_publishing_pass_over_many_streams_reaches_every_subscriber() -> None:
    # More streams than a consumer channel's default capacity (100), published back to back
    # as the manager's publishing pass does: none may be dropped on the way to the fan-out.
    layer = EmbeddedChannelLayer()
    fanout = fanout_for(layer)
    keys = [key(n) for n in range(150)]
    first, second = Recorder(), Recorder()
    for k in keys:
        await fanout.join(k, first)
        await fanout.join(k, second)
    assert all(len(layer.groups[group_name(k)]) == 1 for k in keys)

    for k in keys:
        await layer.group_send(group_name(k), event(k, 1))
    await layer.group_send("elsewhere", event(key(999), 1))  # not followed here: ignored
    assert await wait_until(lambda: len(first.events) == len(second.events) == 150, timeout=10)
    assert {e["stream"] for e in first.events} == {k.label() for k in keys}

    for k in keys:
        await fanout.leave(k, first)
    assert all(len(layer.groups[group_name(k)]) == 1 for k in keys)  # second still follows
    for k in keys:
        await fanout.leave(k, second)
    assert not any(layer.groups.get(group_name(k)) for k in keys)
    assert fanout.channel is None  # the receive task ended with the last subscriber
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("streams fan-out")]
