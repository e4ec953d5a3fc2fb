"""A real Celery worker (in this process, threads pool, in-memory broker) runs the jobs on
pytest's test database: fan-out, retries of temporary venue errors, a hung request cut by the
venue timeout (below the soft time limit) and retried. Runs on SQLite and on Postgres.

Faults are the emulator's own (``server.faults``): a 503 before handling, a held answer.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.jobs.conftest import far_below, place, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "GET api.binance.com/api/v3/account"


def snapshots(account: Any) -> int:
    from trading.balance_history import BalanceSnapshot

    return BalanceSnapshot.objects.filter(account=account).count()


def account_requests(emulator: Any) -> int:
    return int(emulator.stats.requests.get(("binance", ACCOUNT), 0))


def test_the_balance_fan_out_records_every_active_account(
    inprocess_worker: Any, make_venue_account: Any
) -> None:
    from trading.tasks import balances_sync_all

    accounts = [make_venue_account("binance"), make_venue_account("binance")]
    inactive = make_venue_account("binance", is_active=False)

    balances_sync_all.delay()

    wait_until(lambda: all(snapshots(a) == 1 for a in accounts), 20, what="a snapshot per account")
    assert snapshots(inactive) == 0


def test_a_temporary_venue_error_is_retried_with_backoff_until_it_succeeds(
    inprocess_worker: Any, venue_account: Any, emulator: Any, faults: Any
) -> None:
    from trading.tasks import account_balance_sync

    before = account_requests(emulator)
    # Five 503s: the connector's own three attempts fail, so the task retries (twice).
    faults.set("error", venue="binance", endpoint=ACCOUNT, count=5, status=503)

    account_balance_sync.delay(venue_account.pk)

    wait_until(lambda: snapshots(venue_account) == 1, 30, what="the retried sync")
    assert account_requests(emulator) - before == 6  # 5 refused + 1 answered
    time.sleep(0.5)
    assert snapshots(venue_account) == 1


def test_a_hung_venue_request_is_cut_by_the_venue_timeout_and_retried_later(
    inprocess_worker: Any, venue_account: Any, emulator: Any, faults: Any, settings: Any
) -> None:
    from connector_site.jobs import worst_case_venue_seconds
    from trading.tasks import account_balance_sync

    settings.JOBS_VENUE_TIMEOUT_MS = 700
    settings.JOBS_VENUE_RETRIES = 0
    settings.JOBS_RETRY_BACKOFF_BASE = 2.0  # the retry comes after the fault is cleared
    assert worst_case_venue_seconds() < settings.CELERY_TASK_SOFT_TIME_LIMIT
    hang = faults.set("hang", venue="binance", endpoint=ACCOUNT, max_s=30)
    started = time.monotonic()

    account_balance_sync.delay(venue_account.pk)

    wait_until(lambda: any(f["id"] == hang and f["hits"] for f in faults.list()), 10, what="the hung request")
    time.sleep(1.0)  # past the 0.7 s venue timeout, before the ~2 s retry
    assert snapshots(venue_account) == 0
    faults.clear(hang)
    wait_until(lambda: snapshots(venue_account) == 1, 20, what="the sync after the hang")
    assert 2 < time.monotonic() - started < 10  # cut at 0.7 s and retried, not held for 30 s


def test_the_default_venue_budget_ends_before_the_soft_time_limit(settings: Any) -> None:
    from connector_site.jobs import worst_case_venue_seconds

    assert worst_case_venue_seconds() < settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT


def test_a_rate_limited_job_waits_at_least_the_venues_retry_after() -> None:
    from connector_site.jobs import retry_delay
    from connectors import ExchangeUnavailable, RateLimited

    assert retry_delay(RateLimited("slow down", retry_after=30), 0) >= 30
    assert retry_delay(ExchangeUnavailable("down"), 0) < 30


def test_the_reconcile_fan_out_settles_an_unknown_order_through_the_worker(
    inprocess_worker: Any, venue_account: Any, owner: Any, emulator: Any, faults: Any
) -> None:
    from trading.models import Order
    from trading.tasks import unknown_orders_reconcile_all

    faults.set("error_after_accept", venue="binance", endpoint="POST api.binance.com/api/v3/order", count=1)
    order = place(venue_account, owner, far_below(emulator))
    assert order.status == "unknown"

    unknown_orders_reconcile_all.delay()

    wait_until(lambda: Order.objects.get(pk=order.pk).status == "open", 20, what="the reconciled order")
    assert emulator.stats.orders_accepted[("binance", venue_account.api_key)] == 1
