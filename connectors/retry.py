"""The one retry decorator: retries :class:`TemporaryError` on reads with bounded backoff.

Only reads use it. Order placement is never decorated (a retried timeout could place the
order twice); see ``Connector.create_order``. The policy comes from the connector instance
(``retries``, ``backoff_base``, ``backoff_cap``, ``max_retry_after``) so tests and callers
with tighter latency budgets (a web view) can lower it. The loop itself is tenacity's; this
module only says what is retryable and how long to wait.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

import tenacity

from .errors import RateLimited, TemporaryError

__all__ = ["RetryPolicy", "retrying"]

logger = logging.getLogger("connectors.retry")

P = ParamSpec("P")
R = TypeVar("R")

# Indirection so tests can patch the clock without slowing down (looked up at each sleep).
sleep: Callable[[float], None] = time.sleep


class RetryPolicy(Protocol):
    exchange_id: str
    retries: int
    backoff_base: float
    backoff_cap: float
    max_retry_after: float


def _retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    """A temporary error, unless the venue asks for a longer wait than the caller may block
    (then it is raised at once, ``retry_after`` set, for the caller to pass on)."""
    if not isinstance(exc, TemporaryError):
        return False
    too_long = isinstance(exc, RateLimited) and (exc.retry_after or 0) > policy.max_retry_after
    return not too_long


class _WaitAtLeastRetryAfter(tenacity.wait.wait_base):
    """Exponential backoff (base, 2·base, 4·base … ≤ cap), but never shorter than the
    venue's ``Retry-After``."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.backoff = tenacity.wait_exponential(multiplier=policy.backoff_base, max=policy.backoff_cap)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = float(self.backoff(retry_state))
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay


def retrying(method: Callable[P, R]) -> Callable[P, R]:
    """Retry a connector read on :class:`TemporaryError`, at most ``self.retries`` times."""

    def log_retry(policy: RetryPolicy, retry_state: tenacity.RetryCallState) -> None:
        exc: Any = retry_state.outcome.exception() if retry_state.outcome else None
        logger.info(
            "%s %s: %s (%s); retry %d/%d in %.2fs",
            policy.exchange_id,
            method.__name__,
            type(exc).__name__,
            getattr(exc, "code", ""),
            retry_state.attempt_number,
            policy.retries,
            retry_state.upcoming_sleep,
        )

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        policy: Any = args[0]
        retryer = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: _retryable(exc, policy)),
            stop=tenacity.stop_after_attempt(policy.retries + 1),
            wait=_WaitAtLeastRetryAfter(policy),
            before_sleep=functools.partial(log_retry, policy),
            sleep=lambda seconds: sleep(seconds),
            reraise=True,  # callers see our error classes, never tenacity's RetryError
        )
        return retryer(method, *args, **kwargs)

    return wrapper
