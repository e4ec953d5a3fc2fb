"""Reads: orders of an account, guards, and balances and positions straight from the venue."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import ExchangeAccount
from accounts.services import account_connector
from connectors.types import Balance, Position
from trading.models import Order, TradingGuard


def order_list(
    *, account: ExchangeAccount, status: str | None = None, symbol: str | None = None
) -> QuerySet[Order]:
    """The account's orders, newest first, optionally by status and symbol."""
    queryset = Order.objects.filter(account=account)
    if status:
        queryset = queryset.filter(status=status)
    if symbol:
        queryset = queryset.filter(symbol=symbol)
    return queryset.order_by("-id")


def order_get(*, account: ExchangeAccount, order_id: int) -> Order:
    """One order of this account, or ``Order.DoesNotExist`` (another account's id included)."""
    return Order.objects.select_related("account").get(account=account, pk=order_id)


def trading_guard_get(*, account: ExchangeAccount) -> TradingGuard:
    """The account's guard; an unsaved permissive one when the operator set none."""
    try:
        return TradingGuard.objects.get(account=account)
    except TradingGuard.DoesNotExist:
        return TradingGuard(account=account)


def account_balance(
    *, account: ExchangeAccount, account_type: str | None = None, include_zero: bool = False
) -> Balance:
    """Balances from the venue (never cached: trading decisions read it)."""
    balance = account_connector(account=account).fetch_balance(account_type=account_type)
    if not include_zero:
        balance["balances"] = {
            code: entry
            for code, entry in balance["balances"].items()
            if entry.get("total") or entry.get("used")
        }
    return balance


def account_positions(*, account: ExchangeAccount, symbols: list[str] | None = None) -> list[Position]:
    """Open positions from the venue (contracts only; empty positions dropped)."""
    positions: list[Any] = account_connector(account=account).fetch_positions(symbols)
    return [p for p in positions if p.get("contracts")]
