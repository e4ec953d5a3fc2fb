"""Real worker processes (prefork, as in production) on the real Redis broker and pytest's
Postgres test database, against the emulator:

* beat fires the schedule and the worker's polling updates the cache and the database;
* a worker killed mid-task (SIGKILL) has its task redelivered to another worker, and the
  rerun adds no duplicate rows;
* the venue's 5xx after accepting an order leaves exactly one order on the venue, recorded
  with its true state by reconciliation;
* a hung venue request is cut by the task's soft time limit (prefork enforces it) and the
  task is retried later.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.jobs.conftest import ccxt_client, far_below, place, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def publish(start: Any, task: Any, *args: Any, **options: Any) -> None:
    task.apply_async(args, queue=start.queue, **options)


def test_beat_fires_the_schedule_and_polling_updates_the_cache_and_the_database(
    subprocess_worker: Any, venue_account: Any
) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from connector_site.beat import schedule_seed
    from markets.cache import market_data_get
    from streams.models import WatchlistEntry
    from trading.balance_history import BalanceSnapshot

    WatchlistEntry.objects.update_or_create(
        exchange="binance", channel="ticker", symbol="ETH/USDT", defaults={"enabled": True}
    )
    schedule_seed()
    fast, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.filter(
        task__in=["trading.tasks.balances_sync_all", "markets.tasks.watchlist_tickers_poll"]
    ).update(interval=fast)

    subprocess_worker(beat=True)

    def polled() -> Any:
        return market_data_get(
            exchange="binance", environment="emulator", channel="ticker", symbol="ETH/USDT"
        )

    entry = wait_until(polled, 30, what="a polled ticker in the cache")
    assert entry.source == "poll" and entry.data["symbol"] == "ETH/USDT"
    wait_until(lambda: BalanceSnapshot.objects.filter(account=venue_account).exists(), 30, what="a snapshot")
    balances = PeriodicTask.objects.get(task="trading.tasks.balances_sync_all")
    wait_until(
        lambda: PeriodicTask.objects.get(pk=balances.pk).total_run_count >= 1, 10, what="beat's record"
    )
    assert PeriodicTask.objects.get(pk=balances.pk).last_run_at is not None
    # Several runs, still one row: the balances did not change.
    wait_until(lambda: PeriodicTask.objects.get(pk=balances.pk).total_run_count >= 3, 15, what="more runs")
    assert BalanceSnapshot.objects.filter(account=venue_account).count() == 1


def test_a_worker_killed_mid_task_has_it_redelivered_and_the_rerun_duplicates_nothing(
    subprocess_worker: Any, venue_account: Any, owner: Any, emulator: Any, faults: Any
) -> None:
    from trading.external_orders import ExternalOrder
    from trading.models import Order
    from trading.tasks import account_open_orders_sync

    market = emulator.market("binance", "BTC/USDT")
    ccxt_client(emulator, venue_account).create_order(
        "BTC/USDT", "limit", "buy", 0.002, float(far_below(emulator))
    )
    ours = place(venue_account, owner, Decimal(int(market.price() * Decimal("0.98"))))
    assert ours.status == "open"
    market.set_price(ours.price * Decimal("0.99"), hold=True)  # ours fills on the venue
    try:
        # The task records the external order, then looks ours up: that lookup hangs.
        hang = faults.set("hang", venue="binance", endpoint="GET api.binance.com/api/v3/order", max_s=60)
        first = subprocess_worker(name="first")
        publish(subprocess_worker, account_open_orders_sync, venue_account.pk)
        wait_until(
            lambda: any(f["id"] == hang and f["hits"] for f in faults.list()), 20, what="the task mid-way"
        )
        assert ExternalOrder.objects.filter(account=venue_account).count() == 1
        first.kill()
        faults.clear(hang)

        second = subprocess_worker(name="second", env={"JOBS_TEST_VISIBILITY_TIMEOUT": "2"})
        wait_until(
            lambda: Order.objects.get(pk=ours.pk).status == "filled", 30, what="the redelivered task's result"
        )
    finally:
        market.release()

    # The rerun found its own dead run's lock (same task id) and took it over.
    wait_until(lambda: "taken over by the redelivery" in second.output(), 5, what="the takeover in the log")
    assert ExternalOrder.objects.filter(account=venue_account).count() == 1
    events = [(e.from_status, e.to_status) for e in Order.objects.get(pk=ours.pk).events.order_by("id")]
    assert events.count(("open", "filled")) == 1
    assert Order.objects.filter(account=venue_account).count() == 1


def test_a_5xx_after_accepting_leaves_one_order_on_the_venue_recorded_with_its_true_state(
    subprocess_worker: Any, venue_account: Any, owner: Any, emulator: Any, faults: Any
) -> None:
    from trading.models import Order
    from trading.tasks import unknown_orders_reconcile_all

    faults.set("error_after_accept", venue="binance", endpoint="POST api.binance.com/api/v3/order", count=1)
    order = place(venue_account, owner, far_below(emulator))
    assert order.status == "unknown"
    subprocess_worker()

    publish(subprocess_worker, unknown_orders_reconcile_all)

    wait_until(lambda: Order.objects.get(pk=order.pk).status == "open", 30, what="the reconciled order")
    order.refresh_from_db()
    assert order.exchange_order_id
    assert emulator.stats.orders_accepted[("binance", venue_account.api_key)] == 1
    venue_open = ccxt_client(emulator, venue_account).fetch_open_orders("BTC/USDT")
    assert [(o["id"], o["clientOrderId"]) for o in venue_open] == [
        (order.exchange_order_id, order.client_order_id)
    ]


def test_a_hung_venue_request_is_cut_by_the_soft_time_limit_and_retried_later(
    subprocess_worker: Any, venue_account: Any, faults: Any
) -> None:
    from trading.balance_history import BalanceSnapshot
    from trading.tasks import account_balance_sync

    # The venue timeout is longer than the time limits here, so only the limit can cut it;
    # the retry comes ~3 s later, after the fault is cleared.
    worker = subprocess_worker(
        env={
            "CELERY_TASK_SOFT_TIME_LIMIT": "2",
            "CELERY_TASK_TIME_LIMIT": "4",
            "JOBS_VENUE_TIMEOUT_MS": "30000",
            "JOBS_RETRY_BACKOFF_BASE": "3",
            "JOBS_RETRY_BACKOFF_CAP": "5",
        }
    )
    hang = faults.set("hang", venue="binance", endpoint="GET api.binance.com/api/v3/account", max_s=60)

    # Time limits travel in the message (the publisher's settings): publish with the worker's.
    publish(subprocess_worker, account_balance_sync, venue_account.pk, soft_time_limit=2, time_limit=4)

    wait_until(lambda: "SoftTimeLimitExceeded" in worker.output(), 15, what="the soft time limit")
    wait_until(lambda: "retry 1/4" in worker.output(), 5, what="the retry scheduled")
    assert not BalanceSnapshot.objects.filter(account=venue_account).exists()
    faults.clear(hang)
    wait_until(lambda: BalanceSnapshot.objects.filter(account=venue_account).exists(), 15, what="the retry")
    assert BalanceSnapshot.objects.filter(account=venue_account).count() == 1
    assert "TimeLimitExceeded(4" not in worker.output()  # cut by the soft limit, the hard one never needed
