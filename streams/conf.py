"""Stream settings, each with a default here so the project settings stay short.

Override any of them in Django settings (tests shorten the timers).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Run the manager inside the ASGI web process (embedded default, in-memory layer).
    "STREAMS_IN_PROCESS": None,  # None: True when REDIS_URL is unset
    # Exchanges a client may subscribe to.
    "STREAMS_EXCHANGES": ("binance", "okx", "bybit"),
    # Conflation: at most this many messages per second per stream.
    "STREAMS_MAX_RATE_HZ": 10.0,
    # No message for this long: the stream is shown stale.
    "STREAMS_STALE_AFTER_S": 3.0,
    # No message for this long: the socket is presumed half-open and is reconnected.
    "STREAMS_STALL_AFTER_S": {"ticker": 10.0, "orderbook": 10.0, "ohlcv": 15.0, "trades": 60.0},
    # Reconnect backoff: first delay, cap, growth factor; full jitter on top.
    "STREAMS_BACKOFF_BASE_S": 0.5,
    "STREAMS_BACKOFF_CAP_S": 30.0,
    # A stream that stayed live this long resets its backoff.
    "STREAMS_BACKOFF_RESET_AFTER_S": 30.0,
    # Leases: a consumer renews every RENEW seconds for TTL seconds; a stream without any
    # lease is dropped LINGER seconds after the last one lapsed.
    "STREAMS_LEASE_TTL_S": 30.0,
    "STREAMS_LEASE_RENEW_S": 10.0,
    "STREAMS_LINGER_S": 30.0,
    # The latest state goes to the market-data cache at most this often per stream.
    "STREAMS_CACHE_INTERVAL_S": 0.25,
    # Health rows are written at most this often per stream.
    "STREAMS_HEALTH_INTERVAL_S": 1.0,
    # The watchlist is re-read from the database this often.
    "STREAMS_WATCHLIST_REFRESH_S": 5.0,
    # Per WebSocket client.
    "STREAMS_MAX_SUBSCRIPTIONS_PER_CLIENT": 50,
    "STREAMS_CLIENT_HIGH_WATER_BYTES": 512 * 1024,
    "STREAMS_CLIENT_MAX_BEHIND_S": 10.0,
    # Payload sizes.
    "STREAMS_BOOK_DEPTH": 20,
    "STREAMS_TRADES_KEPT": 30,
    "STREAMS_OHLCV_TIMEFRAME": "1m",
    "STREAMS_OHLCV_HISTORY": 300,
    # Stopping: each phase of StreamManager.stop() (cancelled tasks finishing, exchange
    # sockets closing, health rows deleted) waits at most this long, then moves on; a
    # dropped stream's task gets as long to finish before the sweep goes on without it.
    "STREAMS_STOP_GRACE_S": 5.0,
    # Short-lived WebSocket tickets (for clients that cannot set a header).
    "STREAMS_TICKET_TTL_S": 30,
}


def setting(name: str) -> Any:
    value = getattr(settings, name, DEFAULTS[name])
    if name == "STREAMS_IN_PROCESS" and value is None:
        return not getattr(settings, "REDIS_URL", "")
    return value


def stall_after(channel: str) -> float:
    value = setting("STREAMS_STALL_AFTER_S")
    if isinstance(value, dict):
        return float(value.get(channel, 15.0))
    return float(value)
