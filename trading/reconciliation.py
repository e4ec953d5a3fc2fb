"""Keeping our picture of each account true: balances, open orders, orders of unknown outcome.

Called by the Celery jobs in ``trading/tasks.py`` (and usable from a shell). Every function is
idempotent: it reads the venue and *upserts* what it saw, so running it twice, or a redelivered
task running it again, changes nothing the second time. Nothing here ever sends an order:
an order of unknown outcome is looked up on the venue by its client order id, never re-sent
(reliability catalogue B2 #18, #19, #21, #22).

Reconciliation rules for an order in ``unknown`` (docs/jobs.md):

* found on the venue (by client order id) → its real state is recorded (one history entry);
* not found → one *miss* is counted; after at least ``RECONCILE_MAX_MISSES`` misses *and*
  ``RECONCILE_GRACE_SECONDS`` since it was sent, it is marked ``failed`` with the evidence
  (checks, first and last check, the answer), since a fresh order may not be visible at once;
* an order still ``pending_submit`` after ``RECONCILE_PENDING_STALE_SECONDS`` (its sender died
  between journaling and recording the answer) becomes ``unknown`` and follows the same rules;
* an open order the venue has and our journal does not is recorded as an
  :class:`~trading.external_orders.ExternalOrder`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ExchangeAccount
from accounts.services import account_connector
from connector_site.jobs import job_connector
from connectors import Connector, ConnectorError, TemporaryError
from markets.cache import jsonable
from trading.balance_history import BalanceSnapshot
from trading.external_orders import ExternalOrder
from trading.models import OPEN_STATUSES, Order, OrderStatus
from trading.services import order_sync_from_venue, order_transition

__all__ = [
    "OpenOrdersSync",
    "account_balance_sync",
    "account_open_orders_sync",
    "accounts_to_sync",
    "order_reconcile",
    "orders_to_reconcile",
]

logger = logging.getLogger(__name__)

# Our orders that may still be open on the venue (checked against its open orders).
_MAYBE_OPEN = (*OPEN_STATUSES, OrderStatus.UNKNOWN)
# At most this many of our orders are looked up one by one per account and run; the rest
# wait for the next run (keeps a run well inside the soft time limit).
MAX_LOOKUPS_PER_RUN = 50


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _connector(account: ExchangeAccount) -> Connector:
    return job_connector(account_connector(account=account))


# --------------------------------------------------------------------------- selectors


def accounts_to_sync() -> QuerySet[ExchangeAccount]:
    """Active accounts: the ones the balance and open-order syncs visit."""
    return ExchangeAccount.objects.filter(is_active=True).order_by("id")


def orders_to_reconcile(*, now: datetime | None = None) -> QuerySet[Order]:
    """Orders of unknown outcome, and orders stuck in ``pending_submit`` (their sender died)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=float(_setting("RECONCILE_PENDING_STALE_SECONDS", 120)))
    return Order.objects.filter(
        Q(status=OrderStatus.UNKNOWN) | Q(status=OrderStatus.PENDING_SUBMIT, created_at__lte=stale),
        account__is_active=True,
    ).order_by("id")


# --------------------------------------------------------------------------- balances


def _venue_time(timestamp_ms: Any) -> datetime | None:
    if not isinstance(timestamp_ms, int | float) or timestamp_ms <= 0:
        return None
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def account_balance_sync(*, account: ExchangeAccount) -> BalanceSnapshot:
    """Fetch the account's balances and record them in its history.

    Same balances as the latest row → that row's ``last_seen_at`` moves (no new row);
    different → a new row. So a rerun within the same state changes nothing but a timestamp.
    """
    balance = _connector(account).fetch_balance()
    balances = {
        currency: jsonable(entry)
        for currency, entry in sorted(balance["balances"].items())
        if entry.get("total") or entry.get("free") or entry.get("used")
    }
    digest = hashlib.sha256(json.dumps(balances, sort_keys=True).encode()).hexdigest()
    now = timezone.now()
    with transaction.atomic():
        # Lock the account row: two runs racing (a lock expired, a manual run) serialise here.
        ExchangeAccount.objects.select_for_update().filter(pk=account.pk).exists()
        latest = BalanceSnapshot.objects.filter(account=account).order_by("-first_seen_at", "-id").first()
        if latest is not None and latest.digest == digest:
            BalanceSnapshot.objects.filter(pk=latest.pk).update(last_seen_at=now)
            latest.last_seen_at = now
            return latest
        return BalanceSnapshot.objects.create(
            account=account,
            balances=balances,
            digest=digest,
            first_seen_at=now,
            last_seen_at=now,
            venue_time=_venue_time(balance.get("timestamp")),
        )


# --------------------------------------------------------------------------- open orders


@dataclass
class OpenOrdersSync:
    """What one open-orders sync saw and did (for logs and tests)."""

    venue_open: int = 0
    external_seen: int = 0
    external_gone: int = 0
    ours_checked: list[int] = field(default_factory=list)


def _venue_open_orders(connector: Connector) -> list[dict[str, Any]]:
    if connector.exchange_id == "binance":
        # All symbols in one request (weight 80 instead of 6 per symbol); CCXT refuses it
        # unless told that we know the cost. Once a minute is well inside the budget.
        connector.exchange.options.setdefault("fetchOpenOrders", {})["warnWithoutSymbol"] = False
    return [dict(order) for order in connector.fetch_open_orders()]


def _match_ours(account: ExchangeAccount, venue_orders: list[dict[str, Any]]) -> dict[str, Order]:
    """Our journaled orders among the venue's, keyed by venue order id (client id first)."""
    client_ids = {str(o["clientOrderId"]) for o in venue_orders if o.get("clientOrderId")}
    venue_ids = {str(o["id"]) for o in venue_orders if o.get("id")}
    ours = Order.objects.filter(account=account).filter(
        Q(client_order_id__in=client_ids) | Q(exchange_order_id__in=venue_ids)
    )
    by_client = {o.client_order_id: o for o in ours}
    by_venue = {o.exchange_order_id: o for o in ours if o.exchange_order_id}
    matched: dict[str, Order] = {}
    for venue_order in venue_orders:
        order = by_client.get(str(venue_order.get("clientOrderId") or "")) or by_venue.get(
            str(venue_order["id"])
        )
        if order is not None:
            matched[str(venue_order["id"])] = order
    return matched


def _differs(order: Order, venue_order: dict[str, Any]) -> bool:
    filled = venue_order.get("filled")
    return order.status not in OPEN_STATUSES or (filled is not None and filled != order.filled)


def _record_external(account: ExchangeAccount, venue_order: dict[str, Any], now: datetime) -> None:
    values = {
        "client_order_id": str(venue_order.get("clientOrderId") or "")[:64],
        "symbol": str(venue_order.get("symbol") or "")[:64],
        "side": str(venue_order.get("side") or "")[:4],
        "type": str(venue_order.get("type") or "")[:20],
        "amount": venue_order.get("amount"),
        "price": venue_order.get("price"),
        "filled": venue_order.get("filled") or 0,
        "venue_status": str(venue_order.get("status") or "open")[:20],
        "last_seen_at": now,
        "gone_at": None,
    }
    exchange_order_id = str(venue_order["id"])[:128]
    try:
        with transaction.atomic():
            _, created = ExternalOrder.objects.update_or_create(
                account=account,
                exchange_order_id=exchange_order_id,
                defaults=values,
                create_defaults={**values, "first_seen_at": now},
            )
    except IntegrityError:  # inserted by a racing run between our read and our insert
        ExternalOrder.objects.filter(account=account, exchange_order_id=exchange_order_id).update(**values)
        created = False
    if created:
        logger.warning(
            "account %s: open order %s on %s was not placed through us; recorded as external",
            account.pk,
            exchange_order_id,
            venue_order.get("symbol"),
        )


def account_open_orders_sync(*, account: ExchangeAccount) -> OpenOrdersSync:
    """Compare the venue's open orders with ours and record the difference.

    * venue order that is ours (by client order id, else venue id) whose state differs, and
      ours that the venue no longer lists as open → looked up on the venue
      (:func:`order_sync_from_venue`: filled, cancelled, ... with one history entry);
    * venue order that is not ours → upserted as an :class:`ExternalOrder`; external orders
      no longer listed get ``gone_at``.
    """
    connector = _connector(account)
    venue_orders = [o for o in _venue_open_orders(connector) if o.get("id")]
    now = timezone.now()
    result = OpenOrdersSync(venue_open=len(venue_orders))
    matched = _match_ours(account, venue_orders)

    # External orders first (one upsert each), then our orders (one venue lookup each).
    for venue_order in venue_orders:
        if str(venue_order["id"]) not in matched:
            _record_external(account, venue_order, now)
            result.external_seen += 1
    seen_ids = [str(o["id"])[:128] for o in venue_orders]
    result.external_gone = (
        ExternalOrder.objects.filter(account=account, gone_at__isnull=True)
        .exclude(exchange_order_id__in=seen_ids)
        .update(gone_at=now, venue_status="not_open")
    )

    to_check: list[Order] = [
        matched[str(o["id"])]
        for o in venue_orders
        if str(o["id"]) in matched and _differs(matched[str(o["id"])], o)
    ]
    listed = {order.pk for order in matched.values()}
    to_check += list(
        Order.objects.filter(account=account, status__in=_MAYBE_OPEN)
        .exclude(pk__in=listed)
        .select_related("account")
        .order_by("id")[:MAX_LOOKUPS_PER_RUN]
    )
    for order in to_check[:MAX_LOOKUPS_PER_RUN]:
        if order.status == OrderStatus.UNKNOWN:
            order_reconcile(order=order)  # same lookup, plus the lost-order rule
        else:
            order_sync_from_venue(order=order)
        result.ours_checked.append(order.pk)

    return result


# --------------------------------------------------------------------------- unknown orders


def _sent_at(order: Order) -> datetime:
    return order.submitted_at or order.created_at


def order_reconcile(*, order: Order, now: datetime | None = None) -> Order:
    """Settle one order of unknown outcome by asking the venue; never re-sends it.

    Returns the order in its new state: the venue's (found), still ``unknown`` (not found
    yet, one more miss counted), or ``failed`` (not found after the grace period and enough
    checks, with the evidence in its history entry). Temporary venue errors propagate (the
    job retries); other venue errors leave the order as it is and count no miss.
    """
    order.refresh_from_db()
    now = now or timezone.now()
    if order.status == OrderStatus.PENDING_SUBMIT:
        pending_for = (now - order.created_at).total_seconds()
        if pending_for < float(_setting("RECONCILE_PENDING_STALE_SECONDS", 120)):
            return order
        order_transition(
            order,
            OrderStatus.UNKNOWN,
            f"still pending_submit after {int(pending_for)} s: its sender stopped; "
            "reconcile by client order id",
        )
    if order.status != OrderStatus.UNKNOWN:
        return order

    _connector(order.account)  # the job's venue budget for the lookup below
    try:
        order = order_sync_from_venue(order=order)
    except TemporaryError:
        raise
    except ConnectorError as exc:
        logger.warning("order %s: reconciliation lookup failed (%s); left unknown", order.pk, exc.code)
        return order
    if order.status != OrderStatus.UNKNOWN:
        logger.info("order %s reconciled: %s", order.pk, order.status)
        return order
    return _maybe_lost(order, now)


def _maybe_lost(order: Order, now: datetime) -> Order:
    """Mark an order the venue keeps not knowing as failed, once the evidence is enough."""
    max_misses = int(_setting("RECONCILE_MAX_MISSES", 3))
    grace = float(_setting("RECONCILE_GRACE_SECONDS", 120))
    waited = (now - _sent_at(order)).total_seconds()
    if order.reconcile_misses < max_misses or waited < grace:
        return order
    evidence = {
        "lookup": "client_order_id",
        "client_order_id": order.client_order_id,
        "venue_answer": "order_not_found",
        "checks": order.reconcile_misses,
        "sent_at": _sent_at(order).isoformat(),
        "last_check_at": now.isoformat(),
        "waited_seconds": int(waited),
        "grace_seconds": int(grace),
    }
    logger.warning(
        "order %s: not on the venue after %d checks; marked failed", order.pk, order.reconcile_misses
    )
    return order_transition(
        order,
        OrderStatus.FAILED,
        f"not found on the venue by client order id after {order.reconcile_misses} checks over "
        f"{int(waited)} s: the venue never received it",
        payload=evidence,
    )
