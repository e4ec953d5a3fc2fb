"""Admin (read-only) for what the jobs record: each account's balance history, and orders the
venue has that we did not place. Imported at the end of trading/admin.py."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from trading.admin import ReadOnlyMixin
from trading.balance_history import BalanceSnapshot
from trading.external_orders import ExternalOrder

SUMMARY_CURRENCIES = 5


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[misc]
    """Balance history: filter by account to see one account's states over time."""

    list_display = ("account", "first_seen_at", "last_seen_at", "summary")
    list_filter = ("account__exchange", "account")
    list_select_related = ("account",)
    search_fields = ("account__label",)
    date_hierarchy = "first_seen_at"
    fields = ("account", "first_seen_at", "last_seen_at", "venue_time", "balances_table", "digest")
    readonly_fields = fields

    @admin.display(description="largest holdings (total)")
    def summary(self, obj: BalanceSnapshot) -> str:
        rows = sorted(
            ((code, entry.get("total") or "0") for code, entry in obj.balances.items()),
            key=lambda row: -float(row[1]),
        )
        shown = ", ".join(f"{code} {total}" for code, total in rows[:SUMMARY_CURRENCIES])
        more = len(rows) - SUMMARY_CURRENCIES
        return f"{shown} (+{more} more)" if more > 0 else shown

    @admin.display(description="balances")
    def balances_table(self, obj: BalanceSnapshot) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (code, entry.get("free"), entry.get("used"), entry.get("total"))
                for code, entry in sorted(obj.balances.items())
            ),
        )
        return format_html(
            "<table><tr><th>currency</th><th>free</th><th>used</th><th>total</th></tr>{}</table>", rows
        )


@admin.register(ExternalOrder)
class ExternalOrderAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[misc]
    """Open orders seen on the venue that were not placed through this system."""

    list_display = (
        "account",
        "symbol",
        "side",
        "type",
        "amount",
        "price",
        "filled",
        "venue_status",
        "exchange_order_id",
        "first_seen_at",
        "gone_at",
    )
    list_filter = ("venue_status", "account__exchange", "account")
    list_select_related = ("account",)
    search_fields = ("exchange_order_id", "client_order_id", "symbol", "account__label")
    readonly_fields = [f.name for f in ExternalOrder._meta.fields]
