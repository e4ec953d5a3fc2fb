"""The one place that names Channels groups and the manager's control channel.

A stream is (exchange, environment, channel, symbol). Channels group names may hold only
ASCII letters, digits, hyphens, underscores and periods and must be shorter than 100
characters, so every other character of a symbol (``/``, ``:``) is escaped as ``_XX``
(its hex code), ``_`` itself included, which keeps the mapping one-to-one.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

__all__ = [
    "CONTROL_CHANNEL",
    "STREAM_CHANNELS",
    "StreamKey",
    "group_name",
]

#: The channel the stream manager listens on for leases (one manager per deployment).
CONTROL_CHANNEL = "streams.control"
#: Market-data channels a client can subscribe to (names of the cache contract in markets/).
STREAM_CHANNELS = ("ticker", "orderbook", "trades", "ohlcv")

_SAFE = re.compile(r"[A-Za-z0-9.-]")
_MAX_GROUP_LENGTH = 99


class StreamKey(NamedTuple):
    """One stream: what a subscription, a lease, a group and a health row are about."""

    exchange: str
    environment: str
    channel: str
    symbol: str

    def label(self) -> str:
        return f"{self.exchange}:{self.environment}:{self.channel}:{self.symbol}"


def _escape(part: str) -> str:
    return "".join(ch if _SAFE.fullmatch(ch) else "".join(f"_{b:02x}" for b in ch.encode()) for ch in part)


def group_name(key: StreamKey) -> str:
    """``md.<exchange>.<environment>.<channel>.<escaped symbol>``; hashed if too long."""
    name = "md." + ".".join(_escape(part) for part in key)
    if len(name) > _MAX_GROUP_LENGTH:
        digest = hashlib.sha256(key.label().encode()).hexdigest()[:32]
        name = f"md.{_escape(key.exchange)[:20]}.h.{digest}"
    return name
