"""The one retry decorator: retries :class:`TemporaryError` on reads with bounded backoff.

Only reads use it. Order placement is never decorated (a retried timeout could place the
order twice); see ``Connector.create_order``. The policy comes from the connector instance
(``retries``, ``backoff_base``, ``backoff_cap``, ``max_retry_after``) so tests and callers
with tighter latency budgets (a web view) can lower it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from .errors import RateLimited, TemporaryError

__all__ = ["RetryPolicy", "backoff_delay", "retrying"]

logger = logging.getLogger("connectors.retry")

P = ParamSpec("P")
R = TypeVar("R")

# Indirection so tests can patch the clock without slowing down.
sleep: Callable[[float], None] = time.sleep


class RetryPolicy(Protocol):
    exchange_id: str
    retries: int
    backoff_base: float
    backoff_cap: float
    max_retry_after: float


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential delay before retry number ``attempt`` (0-based): base, 2·base, 4·base … ≤ cap."""
    return min(cap, base * (2**attempt))


def retrying(method: Callable[P, R]) -> Callable[P, R]:
    """Retry a connector read on :class:`TemporaryError`, at most ``self.retries`` times.

    Waits ``backoff_delay`` between tries; on :class:`RateLimited` it waits at least the
    venue's ``Retry-After``. If the venue asks for a longer wait than ``max_retry_after``
    the error is raised at once (with ``retry_after`` set) instead of blocking the caller.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        policy: Any = args[0]
        attempt = 0
        while True:
            try:
                return method(*args, **kwargs)
            except TemporaryError as exc:
                if attempt >= policy.retries:
                    raise
                delay = backoff_delay(attempt, base=policy.backoff_base, cap=policy.backoff_cap)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    if exc.retry_after > policy.max_retry_after:
                        raise
                    delay = max(delay, exc.retry_after)
                attempt += 1
                logger.info(
                    "%s %s: %s (%s); retry %d/%d in %.2fs",
                    policy.exchange_id,
                    method.__name__,
                    type(exc).__name__,
                    exc.code,
                    attempt,
                    policy.retries,
                    delay,
                )
                sleep(delay)

    return wrapper
