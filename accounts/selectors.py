"""Reads: which accounts a user or token may reach."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import ApiToken, ExchangeAccount


def _visible_to(user: Any) -> Q:
    if getattr(user, "is_superuser", False):
        return Q()
    return Q(owner=user) | Q(shared_with=user)


def account_list_reachable(*, user: Any, token: ApiToken | None = None) -> QuerySet[ExchangeAccount]:
    """Accounts the user may reach and, for a token, that the token was granted.

    A token with no grants reaches no account, even if its user owns many.
    """
    queryset = ExchangeAccount.objects.filter(_visible_to(user))
    if token is not None:
        queryset = queryset.filter(granted_tokens=token)
    return queryset.distinct().select_related("owner").order_by("label", "id")


def account_get_reachable(*, user: Any, token: ApiToken | None, account_id: int) -> ExchangeAccount:
    """One reachable account, or ``ExchangeAccount.DoesNotExist`` (the API answers 404 either way)."""
    return account_list_reachable(user=user, token=token).get(pk=account_id)
