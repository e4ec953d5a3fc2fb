"""A per-token request throttle whose count holds under concurrent requests.

DRF's own throttles read the request history from the cache, append and write it back: two
concurrent requests both read the same history and both pass (encode/django-rest-framework
#8127), and they key anonymous callers by ``X-Forwarded-For``. This one counts in a fixed
window with one atomic increment per request:

* on Redis (production), ``SET key 0 EX window NX`` and ``INCR key`` in one MULTI/EXEC, so
  the counter always has its expiry and every process sees the same count;
* on any other cache (the embedded default's database cache, tests' local memory), ``add``
  then ``incr`` under a process-wide lock: exact within one process, which is all the
  embedded default runs for HTTP.

The caller is the token (``token:<id>``), else the session user (``user:<id>``), else the
socket's address (``REMOTE_ADDR``; never a forwarded header, which any client can set). The
rate is ``settings.API_THROTTLE_RATE`` (``"600/min"``; ``None`` turns throttling off). An
over-limit request gets 429 with ``Retry-After`` (seconds to the next window) through the
project's error envelope.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

__all__ = ["TokenRateThrottle", "parse_rate", "throttle_hit"]

logger = logging.getLogger(__name__)

DEFAULT_RATE = "600/min"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_local_counter_lock = threading.Lock()


def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/min"`` -> ``(600, 60)``: requests allowed per window of that many seconds."""
    try:
        count, period = str(rate).split("/", 1)
        number = int(count)
        seconds = _PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(
            f"API_THROTTLE_RATE {rate!r} is not like '600/min' (per s, min, h or day)"
        ) from None
    if number < 1:
        raise ImproperlyConfigured("API_THROTTLE_RATE must allow at least one request")
    return number, seconds


def throttle_hit(key: str, window_seconds: int) -> int:
    """Count one request against ``key`` and return the count in its window (atomic)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return _redis_hit(cache, key, window_seconds)
    with _local_counter_lock:
        for _ in range(2):
            cache.add(key, 0, window_seconds)
            try:
                return int(cache.incr(key))
            except ValueError:  # expired between add and incr: start the window again
                continue
    raise RuntimeError("throttle counter could not be created")


def _redis_hit(cache: RedisCache, key: str, window_seconds: int) -> int:
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)
    pipeline = client.pipeline(transaction=True)
    # SET NX EX then INCR, in one MULTI/EXEC: the counter never exists without its expiry
    # (Django's cache.incr checks EXISTS and INCRs in two steps, and an INCR on a key that
    # expired in between would create a counter that never expires).
    pipeline.set(full_key, 0, ex=window_seconds, nx=True)
    pipeline.incr(full_key)
    _, count = pipeline.execute()
    return int(count)


class TokenRateThrottle(BaseThrottle):
    """``API_THROTTLE_RATE`` requests per window per token (or session user, or address)."""

    key_prefix = "throttle:v1"

    def __init__(self) -> None:
        rate = getattr(settings, "API_THROTTLE_RATE", DEFAULT_RATE)
        self.rate: tuple[int, int] | None = parse_rate(rate) if rate else None
        self._wait: float | None = None

    def caller(self, request: Any) -> str:
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None) is not None:
            return f"token:{token.pk}"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return f"addr:{request.META.get('REMOTE_ADDR') or 'unknown'}"

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        allowed, window = self.rate
        now = time.time()
        index = int(now // window)
        key = f"{self.key_prefix}:{self.caller(request)}:{window}:{index}"
        try:
            count = throttle_hit(key, window + 1)
        except Exception as exc:
            # Fail open: the cache being down is answered by the endpoints themselves (503);
            # refusing every request here would hide that behind 429s.
            logger.warning("throttle counter unavailable (%s); request allowed", type(exc).__name__)
            return True
        if count <= allowed:
            return True
        self._wait = max(1.0, math.ceil((index + 1) * window - now))
        return False

    def wait(self) -> float | None:
        return self._wait
