"""Writes for orders, idempotency keys, guards and derivatives settings.

Journal first: :func:`order_place` validates everything it can locally, commits the order
row (with its client order id) in its own transaction, and only then sends it, once
(``create_order`` never retries). A lost answer leaves the order ``unknown`` for
reconciliation (:func:`order_sync_from_venue`); nothing here ever re-sends an order.

These functions must be called outside any transaction (``ATOMIC_REQUESTS`` is off), or the
journal row would not be committed before the request leaves.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import Throttled

from accounts.models import ApiToken, AuditEvent, ExchangeAccount
from accounts.services import account_connector, audit_record
from connectors import (
    BadSymbol,
    Connector,
    ConnectorError,
    CredentialsRejected,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
)
from markets.throttling import throttle_hit
from trading.errors import Conflict, IdempotentReplay, OrderFailed, invalid
from trading.models import TERMINAL_STATUSES, IdempotencyKey, Order, OrderEvent, OrderStatus, TradingGuard
from trading.selectors import trading_guard_get

logger = logging.getLogger(__name__)

# CCXT unified order status -> ours (an order with fills and status "open" is partially filled).
VENUE_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}

# Venue answers that certainly mean "not placed": the order is rejected. Any other error
# while placing leaves it unknown (see _submit).
DEFINITE_REJECTIONS = (
    InvalidOrder,
    InsufficientFunds,
    InvalidInput,
    BadSymbol,
    PermissionDenied,
    CredentialsRejected,
    NotSupported,
)

# --------------------------------------------------------------------------- placing


def order_place(
    *,
    account: ExchangeAccount,
    actor: Any,
    token: ApiToken | None = None,
    symbol: str,
    side: str,
    type: str,
    amount: Decimal,
    price: Decimal | None = None,
    time_in_force: str = "",
    reduce_only: bool = False,
    post_only: bool = False,
    client_order_id: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
    ip: str | None = None,
) -> Order:
    """Validate, journal, send once, and record the venue's answer.

    Returns the order: ``open``/``partially_filled``/``filled``/``canceled``/``expired`` when
    the venue answered, ``unknown`` when the answer was lost (the caller answers 202).
    Raises before journaling for invalid input or guards (nothing is stored or sent), and
    :class:`OrderFailed` after journaling when the venue refused the order (``rejected``)
    or did not process it (``failed``, e.g. rate limited).
    """
    order_rate_check(actor=actor, token=token)
    guard = _check_guards(account=account, symbol=symbol)
    connector = account_connector(account=account)
    market, qty, limit_price = connector.validate_order(symbol, type, side, amount, price)
    venue_options = _venue_options(connector, type=type, time_in_force=time_in_force, post_only=post_only)
    if reduce_only and not market.get("contract"):
        raise invalid("reduce_only", f"{symbol} is a spot market; reduce-only applies to contracts")
    _check_notional(guard=guard, connector=connector, market=market, side=side, qty=qty, price=limit_price)
    coid = _client_order_id(connector, client_order_id)

    order = _journal(
        account=account,
        actor=actor,
        token=token,
        symbol=symbol,
        side=side,
        type=type,
        amount=qty,
        price=limit_price,
        time_in_force=time_in_force,
        reduce_only=reduce_only,
        post_only=post_only,
        client_order_id=coid,
        idempotency_key=idempotency_key,
        ip=ip,
    )
    return _submit(order=order, connector=connector, venue_options=venue_options)


def order_rate_check(*, actor: Any, token: ApiToken | None) -> None:
    """At most ``ORDER_RATE_LIMIT`` ("count/seconds", default 50/10) order placements per
    token (per user for sessions) in a fixed window, so one tool cannot get the shared
    egress IP banned (B2 #33). Counted with the API throttle's atomic counter, which keeps
    its expiry on Redis and is exact within one process elsewhere."""
    count, seconds = _rate_limit()
    now = time.time()
    window = int(now // seconds)
    who = f"t{token.pk}" if token is not None else f"u{getattr(actor, 'pk', 'anon')}"
    placed = throttle_hit(f"trading:order-rate:{who}:{window}", seconds * 2)
    if placed > count:
        raise Throttled(
            wait=max(1, int((window + 1) * seconds - now + 0.999)),
            detail=f"At most {count} orders per {seconds} s per token",
        )


def _rate_limit() -> tuple[int, int]:
    raw = str(getattr(settings, "ORDER_RATE_LIMIT", "50/10"))
    count, _, seconds = raw.partition("/")
    return int(count), int(seconds or 1)


def _check_guards(*, account: ExchangeAccount, symbol: str) -> TradingGuard:
    """The operator's guards for this account, checked against the order; returned for the
    max-notional check once the market and price are known."""
    if not account.is_active:
        raise Conflict("This account is deactivated; an operator can reactivate it", code="account_inactive")
    guard = trading_guard_get(account=account)
    if guard.kill_switch:
        raise Conflict(
            "Trading on this account is switched off by an operator (kill switch)", code="trading_disabled"
        )
    if not guard.allows_symbol(symbol):
        raise invalid(
            "symbol",
            f"{str(symbol)[:40]} is not among this account's allowed symbols",
            code="symbol_not_allowed",
        )
    return guard


def _venue_options(connector: Connector, *, type: str, time_in_force: str, post_only: bool) -> dict[str, Any]:
    """Time in force and post-only, passed only where the connector takes them.

    The connector's create_order does not take them yet; asking for a non-default value is
    then a clear 400 rather than an order placed with different semantics than requested.
    """
    if post_only and type != Order.Type.LIMIT:
        raise invalid("post_only", "post-only applies to limit orders only")
    if time_in_force and type != Order.Type.LIMIT:
        raise invalid("time_in_force", "time in force applies to limit orders only")
    accepted = inspect.signature(connector.create_order).parameters
    options: dict[str, Any] = {}
    for name, value, default in (
        ("time_in_force", time_in_force, ("", "GTC")),
        ("post_only", post_only, (False,)),
    ):
        if value in default:
            continue
        if name not in accepted:
            raise NotSupported(f"{name} {value} is not supported for {connector.exchange_id} yet", field=name)
        options[name] = value
    return options


def _check_notional(
    *,
    guard: TradingGuard,
    connector: Connector,
    market: dict[str, Any],
    side: str,
    qty: Decimal,
    price: Decimal | None,
) -> None:
    if guard.max_notional is None:
        return
    if price is None:  # a market order: value it at the side it would take
        ticker = connector.fetch_ticker(market["symbol"])
        price = (ticker.get("ask") if side == "buy" else ticker.get("bid")) or ticker.get("last")
        if not price:
            raise ExchangeUnavailable(f"no price for {market['symbol']} to check the account's max notional")
    size = Decimal(str(market.get("contractSize") or 1)) if market.get("contract") else Decimal(1)
    notional = qty * size * price
    if notional > guard.max_notional:
        raise invalid(
            "amount",
            f"order value {notional.normalize():f} exceeds this account's max notional "
            f"{guard.max_notional.normalize():f}",
            code="max_notional_exceeded",
        )


def _client_order_id(connector: Connector, client_order_id: str | None) -> str:
    if client_order_id is None:
        return connector.new_client_order_id()
    pattern = connector.client_order_id_pattern
    if not pattern.match(client_order_id):
        message = f"client_order_id must match {pattern.pattern} on {connector.exchange_id}"
        raise invalid("client_order_id", message)
    return client_order_id


def _journal(
    *,
    account: ExchangeAccount,
    actor: Any,
    token: ApiToken | None,
    idempotency_key: IdempotencyKey | None,
    ip: str | None,
    **fields: Any,
) -> Order:
    """Commit the order intent, its first history entry, the idempotency link and the audit
    row together, before anything is sent."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    account=account,
                    created_by=actor if getattr(actor, "pk", None) else None,
                    created_by_token=token,
                    status=OrderStatus.PENDING_SUBMIT,
                    # The send follows this commit at once: stamping it here spares the hot
                    # path a second commit before the venue call.
                    submitted_at=timezone.now(),
                    **fields,
                )
        except IntegrityError:
            raise Conflict(
                f"client_order_id {fields['client_order_id']} is already used on this account",
                code="duplicate_client_order_id",
            ) from None
        OrderEvent.objects.create(
            order=order,
            from_status="",
            to_status=OrderStatus.PENDING_SUBMIT,
            reason="journaled before sending",
        )
        if idempotency_key is not None:
            IdempotencyKey.objects.filter(pk=idempotency_key.pk).update(order=order)
            idempotency_key.order = order
        audit_record(
            action=AuditEvent.Action.ORDER_PLACED,
            actor=actor,
            account=account,
            ip=ip,
            details={
                "order_id": order.pk,
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side,
                "type": order.type,
                "amount": _s(order.amount),
                "price": _s(order.price),
                "token": token.prefix if token else None,
            },
        )
    return order


def _submit(*, order: Order, connector: Connector, venue_options: dict[str, Any]) -> Order:
    try:
        reply = connector.create_order(
            order.symbol,
            order.type,
            order.side,
            order.amount,
            order.price,
            client_order_id=order.client_order_id,
            reduce_only=order.reduce_only,
            **venue_options,
        )
    except OutcomeUnknown as exc:
        order_transition(
            order, OrderStatus.UNKNOWN, "no answer from the venue; reconcile by client order id", error=exc
        )
        return order
    except RateLimited as exc:
        # Refused before processing (429/418): nothing was placed.
        order_transition(order, OrderStatus.FAILED, "rate limited by the venue; not placed", error=exc)
        raise OrderFailed(order, exc) from exc
    except DEFINITE_REJECTIONS as exc:
        order_transition(order, OrderStatus.REJECTED, "rejected by the venue", error=exc)
        raise OrderFailed(order, exc) from exc
    except ConnectorError as exc:
        # Anything else (a temporary error, or a venue error we cannot classify, such as
        # a 5xx whose body carries an unmapped code) may have followed processing: the
        # venue's own rule is "execution status UNKNOWN", never a failure.
        order_transition(order, OrderStatus.UNKNOWN, "unclassified venue error while placing", error=exc)
        return order
    except Exception:
        # A bug after the request may have left: we cannot know, so it is unknown.
        logger.exception("unexpected error while placing order %s", order.pk)
        unknown = OutcomeUnknown("unexpected error while placing", client_order_id=order.client_order_id)
        order_transition(order, OrderStatus.UNKNOWN, "unexpected error while placing", error=unknown)
        return order
    _apply_venue_order(order, reply, reason="accepted by the venue")
    return order


# --------------------------------------------------------------------------- state changes


def _s(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _summary(reply: dict[str, Any]) -> dict[str, Any]:
    """What we keep of a venue answer: ids, status and amounts, never the raw body."""
    keys = ("id", "clientOrderId", "status", "filled", "remaining", "average", "price", "amount", "timestamp")
    return {k: (_s(v) if isinstance(v, Decimal) else v) for k, v in reply.items() if k in keys}


def _status_from_venue(reply: dict[str, Any]) -> str | None:
    status = VENUE_STATUS.get(str(reply.get("status") or "open"))
    filled = reply.get("filled") or Decimal(0)
    if status == OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def _apply_venue_order(order: Order, reply: Any, *, reason: str) -> Order:
    """Take status, venue id and fills from a venue answer (create, fetch or cancel)."""
    fields: dict[str, Any] = {}
    if reply.get("id") and not order.exchange_order_id:
        fields["exchange_order_id"] = str(reply["id"])[:128]
    if reply.get("filled") is not None:
        fields["filled"] = reply["filled"]
    if reply.get("average"):
        fields["average"] = reply["average"]
    status = _status_from_venue(reply) or order.status
    return order_transition(order, status, reason, payload=_summary(reply), **fields)


def order_transition(
    order: Order,
    status: str,
    reason: str,
    *,
    error: ConnectorError | None = None,
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> Order:
    """Move ``order`` to ``status`` with one history entry, by a conditional UPDATE on the
    status we read (two writers racing, e.g. cancel and reconciliation, cannot both win)."""
    if error is not None:
        fields["last_error_code"] = error.code
        fields["last_error_message"] = str(error)[:500]
        payload = {**(payload or {}), "error": error.code}
    for _ in range(3):
        current, old_filled = order.status, order.filled
        changes_status = status != current
        if changes_status and not order.can_become(status):
            logger.info("order %s: ignoring %s -> %s (%s)", order.pk, current, status, reason)
            status, changes_status = current, False
        with transaction.atomic():
            updated = Order.objects.filter(pk=order.pk, status=current).update(
                status=status, updated_at=timezone.now(), **fields
            )
            if updated:
                filled_moved = "filled" in fields and fields["filled"] != old_filled
                if changes_status or (status == OrderStatus.PARTIALLY_FILLED and filled_moved):
                    OrderEvent.objects.create(
                        order=order,
                        from_status=current,
                        to_status=status,
                        reason=reason,
                        payload=payload or {},
                    )
                order.status = status
                for name, value in fields.items():
                    setattr(order, name, value)
                return order
        order.refresh_from_db()
    raise Conflict("The order changed while it was being updated; try again", code="order_changed")


# --------------------------------------------------------------------------- cancel and sync


def order_cancel(*, order: Order, actor: Any, token: ApiToken | None = None, ip: str | None = None) -> Order:
    """Cancel an open order at the venue (not retried: on a temporary error, fetch the order
    to see whether the cancel went through). One audit row per request, with its outcome."""
    if order.status in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN):
        raise Conflict(
            "The order's outcome is not known yet; it is being reconciled", code="order_outcome_unknown"
        )
    if not order.is_open:
        raise Conflict(f"The order is {order.status}, not open", code="order_not_open")
    connector = account_connector(account=order.account)
    outcome = "canceled"
    try:
        reply = connector.cancel_order(order.exchange_order_id, order.symbol)
    except OrderNotFound:
        # Gone at the venue meanwhile (filled or cancelled elsewhere): learn how it ended.
        outcome = "not_open"
        order_sync_from_venue(order=order)
        raise Conflict(f"The order is {order.status} at the venue, not open", code="order_not_open") from None
    except ConnectorError as exc:
        outcome = exc.code
        raise
    finally:
        audit_record(
            action=AuditEvent.Action.ORDER_CANCELED,
            actor=actor,
            account=order.account,
            ip=ip,
            details={
                "order_id": order.pk,
                "client_order_id": order.client_order_id,
                "outcome": outcome,
                "token": token.prefix if token else None,
            },
        )
    if not reply.get("status"):
        reply = {**reply, "status": "canceled"}
    return _apply_venue_order(order, reply, reason="cancelled on request")


def order_cancel_all(
    *,
    account: ExchangeAccount,
    actor: Any,
    token: ApiToken | None = None,
    symbol: str | None = None,
    ip: str | None = None,
) -> tuple[list[Order], list[tuple[Order, ConnectorError | Conflict]]]:
    """Cancel every open order we journaled on this account (optionally one symbol).
    Returns (cancelled, [(order, error)]); one order's failure does not stop the others."""
    queryset = Order.objects.filter(
        account=account, status__in=[OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED]
    )
    if symbol:
        queryset = queryset.filter(symbol=symbol)
    canceled: list[Order] = []
    failed: list[tuple[Order, ConnectorError | Conflict]] = []
    for order in queryset.select_related("account").order_by("id"):
        try:
            canceled.append(order_cancel(order=order, actor=actor, token=token, ip=ip))
        except (ConnectorError, Conflict) as exc:
            failed.append((order, exc))
    return canceled, failed


def order_sync_from_venue(*, order: Order) -> Order:
    """Ask the venue how the order stands (by its id, or by client order id when the venue
    never answered) and record it. A venue that does not know an ``unknown`` order counts
    a miss; reconciliation decides when it is lost. Never sends an order."""
    if order.is_terminal:
        return order
    connector = account_connector(account=order.account)
    try:
        if order.exchange_order_id:
            reply = connector.fetch_order(order.exchange_order_id, order.symbol)
        else:
            reply = connector.fetch_order_by_client_id(order.symbol, order.client_order_id)
    except OrderNotFound:
        Order.objects.filter(pk=order.pk).update(reconcile_misses=F("reconcile_misses") + 1)
        order.refresh_from_db()
        return order
    return _apply_venue_order(order, reply, reason="synced from the venue")


# --------------------------------------------------------------------------- idempotency


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """sha256 of the method, the path and the body as canonical JSON (key order and
    whitespace do not matter; values do)."""
    if hasattr(data, "lists"):  # a QueryDict (form body)
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{body}".encode()).hexdigest()


def idempotency_claim(*, user: Any, token: ApiToken | None, key: str, fingerprint: str) -> IdempotencyKey:
    """Claim ``key`` for this request, or explain why not.

    Returns the new in-flight record. Raises :class:`IdempotentReplay` when the same request
    already finished (answer with its stored response), ``Conflict(idempotency_key_reused)``
    when the key was used for a different request, and ``Conflict(request_in_progress)`` with
    Retry-After when the first request is still in flight after waiting
    ``IDEMPOTENCY_WAIT_SECONDS`` for it. The unique constraint decides races: of two
    concurrent inserts exactly one wins.
    """
    deadline = time.monotonic() + float(getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 5.0))
    while True:
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(user=user, token=token, key=key, fingerprint=fingerprint)
        except IntegrityError:
            pass
        existing = _idempotency_existing(user=user, token=token, key=key)
        if existing is None:
            continue  # released between our insert and our read: try again
        if existing.fingerprint != fingerprint:
            raise Conflict(
                "This Idempotency-Key was used for a different request", code="idempotency_key_reused"
            )
        if existing.is_complete:
            raise IdempotentReplay(existing)
        if _is_stale(existing):
            if existing.order_id is not None:
                # The first request died after journaling: its order is the answer.
                raise IdempotentReplay(existing, orphaned=True)
            if _reclaim(existing):
                return existing
        if time.monotonic() >= deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry later",
                code="request_in_progress",
                wait=1,
            )
        time.sleep(0.05)


def _idempotency_existing(*, user: Any, token: ApiToken | None, key: str) -> IdempotencyKey | None:
    scope = {"token": token} if token is not None else {"token__isnull": True, "user": user}
    return IdempotencyKey.objects.filter(key=key, **scope).select_related("order").first()


def _is_stale(record: IdempotencyKey) -> bool:
    stale_after = timedelta(seconds=float(getattr(settings, "IDEMPOTENCY_STALE_SECONDS", 60)))
    return record.created_at <= timezone.now() - stale_after


def _reclaim(record: IdempotencyKey) -> bool:
    """Take over an in-flight key whose request died before journaling an order (so nothing
    was sent); a conditional UPDATE lets exactly one waiting request win."""
    now = timezone.now()
    claimed = IdempotencyKey.objects.filter(
        pk=record.pk, order__isnull=True, response_status__isnull=True, created_at=record.created_at
    ).update(created_at=now)
    record.created_at = now
    return claimed == 1


def idempotency_complete(
    *, record: IdempotencyKey, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    """Store the first response to the key (only once)."""
    IdempotencyKey.objects.filter(pk=record.pk, response_status__isnull=True).update(
        response_status=status,
        response_body=body,
        response_headers=headers or {},
        completed_at=timezone.now(),
    )


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget an in-flight key whose request stopped before journaling an order (invalid
    input, a guard, a venue error on market loading): the caller may fix and retry it."""
    IdempotencyKey.objects.filter(pk=record.pk, order__isnull=True, response_status__isnull=True).delete()


# --------------------------------------------------------------------------- guards and derivatives


def trading_guard_update(
    *, account: ExchangeAccount, actor: Any, ip: str | None = None, **changes: Any
) -> TradingGuard:
    """Change an account's guard (the admin calls this); audited like other account changes."""
    guard, _ = TradingGuard.objects.get_or_create(account=account)
    for name, value in changes.items():
        setattr(guard, name, value)
    guard.full_clean()
    with transaction.atomic():
        guard.save()
        audit_record(
            action=AuditEvent.Action.CHANGED,
            actor=actor,
            account=account,
            ip=ip,
            details={"fields": [f"trading_guard.{name}" for name in sorted(changes)]},
        )
    return guard


def _venue_setting(
    *,
    account: ExchangeAccount,
    actor: Any,
    ip: str | None,
    capability: str,
    what: str,
    setting: str,
    details: dict[str, Any],
    call: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Send one derivatives setting through ``call(connector)``, audited with its outcome.

    A venue without the capability is refused before anything is sent (and nothing is
    audited). ``call`` takes the connector as ``Any``: the OKX/Bybit extras live on the venue
    subclasses, and the capability check above is what guarantees them.
    """
    connector = account_connector(account=account)
    if not connector.capabilities().get(capability):
        raise NotSupported(f"{what} is not available on {connector.exchange_id}")
    outcome = "ok"
    try:
        return call(connector)
    except ConnectorError as exc:
        outcome = exc.code
        raise
    finally:
        audit_record(
            action=AuditEvent.Action.VENUE_SETTING,
            actor=actor,
            account=account,
            ip=ip,
            details={"setting": setting, **details, "outcome": outcome},
        )


def account_set_leverage(
    *, account: ExchangeAccount, actor: Any, symbol: str, leverage: Decimal, ip: str | None = None
) -> dict[str, Any]:
    return _venue_setting(
        account=account,
        actor=actor,
        ip=ip,
        capability="set_leverage",
        what="Setting leverage",
        setting="leverage",
        details={"symbol": symbol, "leverage": _s(leverage)},
        call=lambda connector: connector.set_leverage(leverage, symbol),
    )


def account_set_position_mode(
    *, account: ExchangeAccount, actor: Any, hedged: bool, ip: str | None = None
) -> dict[str, Any]:
    return _venue_setting(
        account=account,
        actor=actor,
        ip=ip,
        capability="position_mode",
        what="Switching the position mode",
        setting="position_mode",
        details={"hedged": hedged},
        call=lambda connector: connector.set_position_mode(hedged=hedged),
    )


def position_set_tpsl(
    *,
    account: ExchangeAccount,
    actor: Any,
    symbol: str,
    take_profit: Decimal | None = None,
    stop_loss: Decimal | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    return _venue_setting(
        account=account,
        actor=actor,
        ip=ip,
        capability="trading_stop",
        what="Take-profit/stop-loss on a position",
        setting="tpsl",
        details={"symbol": symbol, "take_profit": _s(take_profit), "stop_loss": _s(stop_loss)},
        call=lambda connector: connector.set_trading_stop(
            symbol, take_profit=take_profit, stop_loss=stop_loss
        ),
    )


def position_adjust_margin(
    *, account: ExchangeAccount, actor: Any, symbol: str, amount: Decimal, ip: str | None = None
) -> dict[str, Any]:
    return _venue_setting(
        account=account,
        actor=actor,
        ip=ip,
        capability="margin_adjustment",
        what="Adjusting a position's margin",
        setting="margin",
        details={"symbol": symbol, "amount": _s(amount)},
        call=lambda connector: connector.adjust_margin(symbol, amount),
    )


__all__ = [
    "TERMINAL_STATUSES",
    "account_set_leverage",
    "account_set_position_mode",
    "idempotency_claim",
    "idempotency_complete",
    "idempotency_release",
    "order_cancel",
    "order_cancel_all",
    "order_place",
    "order_sync_from_venue",
    "position_adjust_margin",
    "position_set_tpsl",
    "request_fingerprint",
    "trading_guard_update",
]
