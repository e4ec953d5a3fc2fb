"""Reads of stream health and the watchlist (admin, API, dashboard)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from streams.models import StreamSubscription, WatchlistEntry


def stream_health_list(*, environment: str | None = None) -> list[dict[str, Any]]:
    """Every subscription the manager holds, with its effective state and message age."""
    now = timezone.now()
    rows = StreamSubscription.objects.all()
    if environment:
        rows = rows.filter(environment=environment)
    result = []
    for row in rows:
        age = row.age_seconds(now)
        result.append(
            {
                "exchange": row.exchange,
                "environment": row.environment,
                "channel": row.channel,
                "symbol": row.symbol,
                "state": row.effective_state(now),
                "last_message_age_ms": None if age is None else round(age * 1000),
                "last_message_at": row.last_message_at,
                "reconnects": row.reconnects,
                "messages": row.messages,
                "published": row.published,
                "leases": row.leases,
                "watchlisted": row.watchlisted,
                "last_error": row.last_error,
                "started_at": row.started_at,
                "updated_at": row.updated_at,
            }
        )
    return result


def watchlist_list() -> list[WatchlistEntry]:
    return list(WatchlistEntry.objects.filter(enabled=True))
