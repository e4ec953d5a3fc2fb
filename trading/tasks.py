"""Celery jobs that keep accounts and orders true to the venue (schedule: connector_site/beat.py).

Thin: each loads its rows by id and calls a service in ``trading/reconciliation.py``. The
``*_all`` jobs fan out one task per account or order, each with an ``expires`` so a backlog
cannot pile up (a stale sync is worth nothing: the next tick sends a fresh one). Locks,
retries and the venue budget: ``connector_site/jobs.py``. Semantics: docs/jobs.md.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from connector_site.jobs import JobTask, run_job

# A fanned-out task not started within this many seconds is dropped by the worker.
FAN_OUT_EXPIRES_SECONDS = 55


@shared_task(bind=True, base=JobTask)
def balances_sync_all(self: JobTask) -> int:
    """One :func:`account_balance_sync` per active account."""
    from trading.reconciliation import accounts_to_sync

    def fan_out() -> int:
        ids = list(accounts_to_sync().values_list("id", flat=True))
        for account_id in ids:
            account_balance_sync.apply_async((account_id,), expires=FAN_OUT_EXPIRES_SECONDS)
        return len(ids)

    return run_job(self, "balances_sync_all", fan_out)  # type: ignore[return-value]


@shared_task(bind=True, base=JobTask)
def account_balance_sync(self: JobTask, account_id: int) -> Any:
    """Fetch one account's balances into its balance history."""
    from accounts.models import ExchangeAccount
    from trading import reconciliation

    def work() -> Any:
        account = ExchangeAccount.objects.filter(pk=account_id, is_active=True).first()
        if account is None:
            return None  # deleted or deactivated since the fan-out: nothing to do
        return reconciliation.account_balance_sync(account=account).pk

    return run_job(self, f"account_balance_sync:{account_id}", work)


@shared_task(bind=True, base=JobTask)
def open_orders_sync_all(self: JobTask) -> int:
    """One :func:`account_open_orders_sync` per active account."""
    from trading.reconciliation import accounts_to_sync

    def fan_out() -> int:
        ids = list(accounts_to_sync().values_list("id", flat=True))
        for account_id in ids:
            account_open_orders_sync.apply_async((account_id,), expires=FAN_OUT_EXPIRES_SECONDS)
        return len(ids)

    return run_job(self, "open_orders_sync_all", fan_out)  # type: ignore[return-value]


@shared_task(bind=True, base=JobTask)
def account_open_orders_sync(self: JobTask, account_id: int) -> Any:
    """Compare one account's open orders on the venue with ours; record external ones."""
    from accounts.models import ExchangeAccount
    from trading import reconciliation

    def work() -> Any:
        account = ExchangeAccount.objects.filter(pk=account_id, is_active=True).first()
        if account is None:
            return None
        result = reconciliation.account_open_orders_sync(account=account)
        return {
            "venue_open": result.venue_open,
            "external": result.external_seen,
            "checked": result.ours_checked,
        }

    # Shares the per-account lock name space with nothing else: a balance sync may run beside it.
    return run_job(self, f"account_open_orders_sync:{account_id}", work)


@shared_task(bind=True, base=JobTask)
def unknown_orders_reconcile_all(self: JobTask) -> int:
    """One :func:`order_reconcile` per order of unknown outcome (or stuck pending)."""
    from trading.reconciliation import orders_to_reconcile

    def fan_out() -> int:
        ids = list(orders_to_reconcile().values_list("id", flat=True)[:500])
        for order_id in ids:
            order_reconcile.apply_async((order_id,), expires=FAN_OUT_EXPIRES_SECONDS)
        return len(ids)

    return run_job(self, "unknown_orders_reconcile_all", fan_out)  # type: ignore[return-value]


@shared_task(bind=True, base=JobTask)
def order_reconcile(self: JobTask, order_id: int) -> Any:
    """Look one order of unknown outcome up on the venue by its client order id (never re-sends it)."""
    from trading import reconciliation
    from trading.models import Order

    def work() -> Any:
        order = Order.objects.select_related("account").filter(pk=order_id).first()
        if order is None:
            return None
        return reconciliation.order_reconcile(order=order).status

    # The open-orders sync may reconcile the same order; both go through the order's
    # conditional status UPDATE, so the later one changes nothing.
    return run_job(self, f"order_reconcile:{order_id}", work)
