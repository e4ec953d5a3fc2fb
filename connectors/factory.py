"""The factory: allow-listed exchange id + environment + credentials -> a connector.

Instances are cached per (exchange, environment, emulator address, credentials
fingerprint): edited keys have a new fingerprint, so they never meet an instance built
with the old ones. Synchronous connectors are cached per thread (a CCXT instance and its
HTTP session are not thread-safe); stream connectors per event loop (a ccxt.pro instance
is bound to the loop its websockets run on). Markets are shared process-wide either way
(see :mod:`connectors.markets`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from typing import Any

from .base import Connector, StreamConnector
from .binance import BinanceConnector, BinanceStreamConnector
from .bybit import BybitConnector, BybitStreamConnector
from .credentials import Credentials
from .environments import Environment
from .errors import NotSupported
from .exchanges import SUPPORTED_EXCHANGES, normalise_exchange_id
from .okx import OkxConnector, OkxStreamConnector

__all__ = [
    "CONNECTORS",
    "STREAM_CONNECTORS",
    "clear_connector_cache",
    "close_stream_connectors",
    "create_connector",
    "create_stream_connector",
]

# Venue modules; every other allow-listed id runs on the base classes.
CONNECTORS: dict[str, type[Connector]] = {
    "binance": BinanceConnector,
    "okx": OkxConnector,
    "bybit": BybitConnector,
}
STREAM_CONNECTORS: dict[str, type[StreamConnector]] = {
    "binance": BinanceStreamConnector,
    "okx": OkxStreamConnector,
    "bybit": BybitStreamConnector,
}

# Per thread / per loop, the least recently used instances beyond this are dropped: a
# worker thread serving many accounts must not keep every session open forever.
MAX_CACHED_PER_THREAD = 64

CacheKey = tuple[str, str, str, str]

_local = threading.local()
_loop_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[CacheKey, StreamConnector]] = (
    weakref.WeakKeyDictionary()
)


def _resolve(
    exchange_id: str,
    credentials: Credentials | None,
    environment: Environment | str,
    emulator_url: str | None,
) -> tuple[str, Environment, str | None, CacheKey]:
    resolved = normalise_exchange_id(exchange_id) if isinstance(exchange_id, str) else None
    if resolved is None:
        shown = str(exchange_id)[:40]
        raise NotSupported(
            f"exchange {shown!r} is not supported; supported: {', '.join(SUPPORTED_EXCHANGES)}",
            field="exchange",
        )
    try:
        env = Environment(environment)
    except ValueError:
        raise NotSupported(
            f"environment {str(environment)[:20]!r} is not one of live, sandbox, emulator",
            field="environment",
        ) from None
    if credentials is not None and not isinstance(credentials, Credentials):
        raise TypeError("credentials must be a connectors.Credentials")
    if env is Environment.EMULATOR:
        if not emulator_url:
            raise NotSupported("the emulator environment needs emulator_url (settings.EMULATOR_URL)")
        url: str | None = emulator_url.rstrip("/")
    else:
        url = None  # only the emulator environment takes an address, and only from settings
    fingerprint = credentials.fingerprint if credentials is not None else ""
    return resolved, env, url, (resolved, env.value, url or "", fingerprint)


def create_connector(
    exchange_id: str,
    credentials: Credentials | None = None,
    *,
    environment: Environment | str = Environment.LIVE,
    emulator_url: str | None = None,
) -> Connector:
    """The synchronous connector for this exchange, environment and credentials, reused
    within the calling thread.

    ``exchange_id`` must be in :data:`~connectors.SUPPORTED_EXCHANGES` (aliases such as
    ``gateio`` resolve), else :class:`~connectors.errors.NotSupported`. ``emulator_url``
    is required for :attr:`Environment.EMULATOR` (pass ``settings.EMULATOR_URL``) and
    ignored otherwise. ``SANDBOX`` on a venue without a testnet raises ``NotSupported``.
    """
    resolved, env, url, key = _resolve(exchange_id, credentials, environment, emulator_url)
    cache: OrderedDict[CacheKey, Connector] | None = getattr(_local, "connectors", None)
    if cache is None:
        cache = _local.connectors = OrderedDict()
    connector = cache.get(key)
    if connector is not None:
        cache.move_to_end(key)
        return connector
    connector = CONNECTORS.get(resolved, Connector)(resolved, credentials, environment=env, emulator_url=url)
    cache[key] = connector
    while len(cache) > MAX_CACHED_PER_THREAD:
        _, dropped = cache.popitem(last=False)
        dropped.close()
    return connector


def create_stream_connector(
    exchange_id: str,
    credentials: Credentials | None = None,
    *,
    environment: Environment | str = Environment.LIVE,
    emulator_url: str | None = None,
) -> StreamConnector:
    """The asynchronous (ccxt.pro) connector, reused within the running event loop. Call
    it from a coroutine; close it with ``await connector.close()`` or
    :func:`close_stream_connectors`."""
    resolved, env, url, key = _resolve(exchange_id, credentials, environment, emulator_url)
    loop = asyncio.get_running_loop()
    cache = _loop_caches.get(loop)
    if cache is None:
        cache = _loop_caches[loop] = OrderedDict()
    connector = cache.get(key)
    if connector is not None and not connector.closed:
        cache.move_to_end(key)
        return connector
    connector = STREAM_CONNECTORS.get(resolved, StreamConnector)(
        resolved, credentials, environment=env, emulator_url=url
    )
    cache[key] = connector
    return connector


async def close_stream_connectors() -> None:
    """Close every stream connector of the running event loop (on shutdown)."""
    cache = _loop_caches.pop(asyncio.get_running_loop(), OrderedDict())
    for connector in list(cache.values()):
        await connector.close()


def clear_connector_cache() -> None:
    """Forget the calling thread's synchronous connectors (tests; after settings change)."""
    cache: Any = getattr(_local, "connectors", None)
    if cache:
        for connector in cache.values():
            connector.close()
        cache.clear()
