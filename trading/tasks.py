"""Celery jobs that keep accounts and orders true to the venue (schedule: connector_site/beat.py).

Thin: each loads its rows by id and calls a service in ``trading/reconciliation.py``. The
``*_all`` jobs fan out one task per account or order, each with an ``expires`` so a backlog
cannot pile up (a stale sync is worth nothing: the next tick sends a fresh one). Locks,
retries and the venue budget: ``connector_site/jobs.py``. Semantics: docs/jobs.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from celery import shared_task

from connector_site.jobs import JobTask, run_job

if TYPE_CHECKING:
    from accounts.models import ExchangeAccount

# A fanned-out task not started within this many seconds is dropped by the worker.
FAN_OUT_EXPIRES_SECONDS = 55


def _fan_out(job: JobTask, name: str, ids: Callable[[], Iterable[int]], task: Any) -> int:
    """Run ``job`` (under the lock ``name``) sending one ``task(id)`` per id, each with an
    expiry so a backlog of stale syncs cannot pile up."""

    def fan_out() -> int:
        chosen = list(ids())
        for pk in chosen:
            task.apply_async((pk,), expires=FAN_OUT_EXPIRES_SECONDS)
        return len(chosen)

    return run_job(job, name, fan_out)  # type: ignore[return-value]


def _active_account(account_id: int) -> ExchangeAccount | None:
    """The account if it still exists and is active; None (nothing to do) when it was deleted
    or deactivated since the fan-out."""
    from accounts.models import ExchangeAccount

    return ExchangeAccount.objects.filter(pk=account_id, is_active=True).first()


@shared_task(bind=True, base=JobTask)
def balances_sync_all(self: JobTask) -> int:
    """One :func:`account_balance_sync` per active account."""
    from trading.reconciliation import accounts_to_sync

    return _fan_out(
        self,
        "balances_sync_all",
        lambda: accounts_to_sync().values_list("id", flat=True),
        account_balance_sync,
    )


@shared_task(bind=True, base=JobTask)
def account_balance_sync(self: JobTask, account_id: int) -> Any:
    """Fetch one account's balances into its balance history."""
    from trading import reconciliation

    def work() -> Any:
        account = _active_account(account_id)
        if account is None:
            return None
        return reconciliation.account_balance_sync(account=account).pk

    return run_job(self, f"account_balance_sync:{account_id}", work)


@shared_task(bind=True, base=JobTask)
def open_orders_sync_all(self: JobTask) -> int:
    """One :func:`account_open_orders_sync` per active account."""
    from trading.reconciliation import accounts_to_sync

    return _fan_out(
        self,
        "open_orders_sync_all",
        lambda: accounts_to_sync().values_list("id", flat=True),
        account_open_orders_sync,
    )


@shared_task(bind=True, base=JobTask)
def account_open_orders_sync(self: JobTask, account_id: int) -> Any:
    """Compare one account's open orders on the venue with ours; record external ones."""
    from trading import reconciliation

    def work() -> Any:
        account = _active_account(account_id)
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

    return _fan_out(
        self,
        "unknown_orders_reconcile_all",
        lambda: orders_to_reconcile().values_list("id", flat=True)[:500],
        order_reconcile,
    )


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
