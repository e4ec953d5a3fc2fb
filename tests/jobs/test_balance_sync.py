"""The balance sync: one history row per distinct state, so reruns add nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.jobs.conftest import ccxt_client

pytestmark = pytest.mark.django_db


def test_it_records_the_venue_balances_as_the_first_history_row(venue_account: Any, emulator: Any) -> None:
    from trading.balance_history import BalanceSnapshot
    from trading.reconciliation import account_balance_sync

    snapshot = account_balance_sync(account=venue_account)

    assert BalanceSnapshot.objects.filter(account=venue_account).count() == 1
    free, locked = emulator.balance("binance", venue_account.api_key, "BTC")
    assert Decimal(snapshot.balances["BTC"]["total"]) == free + locked
    assert snapshot.first_seen_at == snapshot.last_seen_at


def test_a_rerun_with_unchanged_balances_only_moves_last_seen(venue_account: Any) -> None:
    from trading.balance_history import BalanceSnapshot
    from trading.reconciliation import account_balance_sync

    first = account_balance_sync(account=venue_account)
    again = account_balance_sync(account=venue_account)

    assert BalanceSnapshot.objects.filter(account=venue_account).count() == 1
    assert again.pk == first.pk
    assert again.last_seen_at > first.first_seen_at


def test_a_changed_balance_starts_a_new_history_row(venue_account: Any, emulator: Any) -> None:
    from trading.balance_history import BalanceSnapshot
    from trading.reconciliation import account_balance_sync

    account_balance_sync(account=venue_account)
    price = int(emulator.market("binance", "BTC/USDT").price() / 2)
    ccxt_client(emulator, venue_account).create_order("BTC/USDT", "limit", "buy", 0.01, price)
    changed = account_balance_sync(account=venue_account)

    rows = list(BalanceSnapshot.objects.filter(account=venue_account).order_by("id"))
    assert len(rows) == 2
    assert rows[1].pk == changed.pk
    assert Decimal(changed.balances["USDT"]["used"]) == Decimal("0.01") * price


def test_the_sync_task_skips_while_another_run_holds_the_lock(venue_account: Any) -> None:
    from connector_site.jobs import SKIPPED, job_lock_acquire
    from trading.balance_history import BalanceSnapshot
    from trading.tasks import account_balance_sync

    assert job_lock_acquire(f"account_balance_sync:{venue_account.pk}", owner="another-run", ttl=30)

    outcome = account_balance_sync.apply(args=(venue_account.pk,), task_id="this-run").get()

    assert outcome == SKIPPED
    assert not BalanceSnapshot.objects.filter(account=venue_account).exists()


def test_a_redelivered_task_takes_over_its_own_dead_runs_lock(venue_account: Any) -> None:
    from django.core.cache import cache

    from connector_site.jobs import job_lock_acquire
    from trading.balance_history import BalanceSnapshot
    from trading.tasks import account_balance_sync

    lock = f"account_balance_sync:{venue_account.pk}"
    assert job_lock_acquire(lock, owner="task-1", ttl=30)  # its first delivery died holding it

    account_balance_sync.apply(args=(venue_account.pk,), task_id="task-1").get()
    account_balance_sync.apply(args=(venue_account.pk,), task_id="task-1").get()  # and again

    assert BalanceSnapshot.objects.filter(account=venue_account).count() == 1
    assert cache.get("jobs:lock:" + lock) is None  # released when done


def test_a_deactivated_account_is_not_synced(venue_account: Any) -> None:
    from trading.balance_history import BalanceSnapshot
    from trading.tasks import account_balance_sync

    venue_account.is_active = False
    venue_account.save()

    assert account_balance_sync.apply(args=(venue_account.pk,)).get() is None
    assert not BalanceSnapshot.objects.filter(account=venue_account).exists()
