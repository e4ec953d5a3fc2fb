"""What every Celery job shares: a lock so a job never overlaps itself, retries of temporary
venue errors with backoff (at least the venue's Retry-After), and the venue budget of a job.

Tasks stay thin (load by id, call a service) and run their service through :func:`run_job`::

    @shared_task(bind=True, base=JobTask)
    def account_balance_sync(self, account_id):
        return run_job(self, f"balance:{account_id}", lambda: ...)

Locks live in the Django cache: ``add`` is atomic on Redis (production) and on the database
cache (embedded default). The lock's value is the task id, and a redelivered message keeps its
task id: a task that finds *its own* id in the lock is the redelivery of a run whose worker
died (the broker only redelivers after the hard time limit has killed any live run, see
docs/jobs.md), so it takes the lock over instead of waiting for it to expire. A lock held by
another task id means a run is in progress: the job is skipped (the next beat tick comes soon).
Locks expire after the hard time limit plus a margin, so a killed worker cannot hold one forever.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache

from connectors import Connector, ConnectorError, RateLimited, TemporaryError

__all__ = [
    "SKIPPED",
    "JobTask",
    "job_connector",
    "job_lock_acquire",
    "job_lock_release",
    "retry_delay",
    "run_job",
]

logger = logging.getLogger("jobs")
T = TypeVar("T")

SKIPPED = "skipped: already running"
LOCK_PREFIX = "jobs:lock:"
LOCK_MARGIN_SECONDS = 5


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class JobTask(Task):  # type: ignore[misc]
    """Base of every periodic job: late acknowledgement, redelivery when the worker is lost,
    a bounded number of retries. Time limits are the global ones (settings ``CELERY_TASK_*``)."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = 4
    ignore_result = True


def _lock_ttl(task: Task) -> int:
    hard = task.time_limit or task.app.conf.task_time_limit or 90
    return int(hard) + LOCK_MARGIN_SECONDS


def job_lock_acquire(name: str, *, owner: str, ttl: int) -> bool:
    """Take the lock ``name`` for ``owner`` (a task id); True if it is now ours."""
    key = LOCK_PREFIX + name
    if cache.add(key, owner, ttl):
        return True
    if cache.get(key) == owner:
        # The same message again: its earlier delivery died with its worker. Take over.
        cache.set(key, owner, ttl)
        logger.warning("job lock %s: taken over by the redelivery of task %s", name, owner)
        return True
    return False


def job_lock_release(name: str, *, owner: str) -> None:
    """Release ``name`` if ``owner`` still holds it (an expired lock may be someone else's now)."""
    key = LOCK_PREFIX + name
    if cache.get(key) == owner:
        cache.delete(key)


def retry_delay(exc: BaseException, retries: int) -> float:
    """Seconds before retry number ``retries`` (0-based): exponential from
    ``JOBS_RETRY_BACKOFF_BASE`` (2 s) capped at ``JOBS_RETRY_BACKOFF_CAP`` (60 s), plus up to
    20 % jitter; never sooner than a rate limit's Retry-After."""
    base = float(_setting("JOBS_RETRY_BACKOFF_BASE", 2.0))
    cap = float(_setting("JOBS_RETRY_BACKOFF_CAP", 60.0))
    delay = min(cap, base * (2**retries))
    delay += random.uniform(0, delay * 0.2)  # noqa: S311  (jitter, not crypto)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited) and retry_after:
        delay = max(delay, float(retry_after))
    return delay


def run_job(task: Task, lock_name: str, work: Callable[[], T]) -> T | str:
    """Run ``work()`` under the lock ``lock_name``; skip if another run holds it.

    A :class:`~connectors.TemporaryError` (including rate limits) or the soft time limit (a
    hung venue) schedules a retry with :func:`retry_delay`; after ``max_retries`` the error
    is raised and the task fails (the next beat tick starts afresh). Other errors fail at once.
    """
    owner = task.request.id or "local"
    if not job_lock_acquire(lock_name, owner=owner, ttl=_lock_ttl(task)):
        logger.info("job %s: %s", lock_name, SKIPPED)
        return SKIPPED
    try:
        return work()
    except (TemporaryError, SoftTimeLimitExceeded, ConnectorError) as exc:
        if not _retryable(exc):
            raise
        delay = retry_delay(exc, task.request.retries)
        logger.warning(
            "job %s: %s; retry %d/%d in %.1fs",
            lock_name,
            getattr(exc, "code", type(exc).__name__),
            task.request.retries + 1,
            task.max_retries,
            delay,
        )
        raise task.retry(exc=exc, countdown=delay) from exc
    finally:
        job_lock_release(lock_name, owner=owner)


def _retryable(exc: BaseException) -> bool:
    """Temporary venue errors, and the soft time limit cutting a hung call. The connector
    translates whatever its venue call raises, the time limit included, so a cut inside a
    venue call arrives as a ConnectorError chained from SoftTimeLimitExceeded."""
    if isinstance(exc, TemporaryError | SoftTimeLimitExceeded):
        return True
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, SoftTimeLimitExceeded):
            return True
        cause = cause.__cause__
    return False


def job_connector(connector: Connector) -> Connector:
    """Give a connector the background budget of a job: a venue timeout
    (``JOBS_VENUE_TIMEOUT_MS``, 10 s) and in-call retries short enough that the worst case,
    every attempt timing out plus the backoff between them, ends before the soft time limit.

    The factory hands out one cached instance per thread, so this is set on every hand-out.
    """
    connector.exchange.timeout = int(_setting("JOBS_VENUE_TIMEOUT_MS", 10_000))
    connector.retries = int(_setting("JOBS_VENUE_RETRIES", 2))
    connector.backoff_base = 0.5
    connector.backoff_cap = 4.0
    # A longer Retry-After is not slept on inside the task: it comes out as RateLimited and
    # the task retries after it (run_job), without holding a worker process meanwhile.
    connector.max_retry_after = 5.0
    return connector


def worst_case_venue_seconds() -> float:
    """How long one connector call of a job can take at most (every attempt timing out)."""
    timeout = int(_setting("JOBS_VENUE_TIMEOUT_MS", 10_000)) / 1000
    retries = int(_setting("JOBS_VENUE_RETRIES", 2))
    backoff = sum(min(4.0, 0.5 * 2**n) for n in range(retries))
    return timeout * (retries + 1) + backoff
