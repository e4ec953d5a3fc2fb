"""Operators see orders with their history (read-only) and set each account's trading guard."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from trading.models import Order, OrderEvent, TradingGuard
from trading.services import trading_guard_update


class ReadOnlyMixin:
    """What the jobs and the order journal record is changed only by services, never by hand
    (viewing needs the "view" permission). Shared with ``trading/admin_balances.py``."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderEventInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderEvent
    fields = ("at", "from_status", "to_status", "reason", "payload")
    readonly_fields = fields
    extra = 0
    can_delete = False


STATUS_COLOURS = {
    "open": "#1565c0",
    "partially_filled": "#1565c0",
    "filled": "#2e7d32",
    "unknown": "#e65100",
    "rejected": "#c62828",
    "failed": "#c62828",
}


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, admin.ModelAdmin):  # type: ignore[misc]
    list_display = (
        "id",
        "account",
        "symbol",
        "side",
        "type",
        "amount",
        "price",
        "filled",
        "status_column",
        "client_order_id",
        "created_at",
    )
    list_filter = ("status", "side", "type", "account__exchange")
    search_fields = ("client_order_id", "exchange_order_id", "symbol", "account__label")
    list_select_related = ("account",)
    raw_id_fields = ("account", "created_by", "created_by_token")
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderEventInline]
    date_hierarchy = "created_at"

    @admin.display(description="status", ordering="status")
    def status_column(self, obj: Order) -> str:
        return format_html(
            '<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "inherit"), obj.get_status_display()
        )


@admin.register(TradingGuard)
class TradingGuardAdmin(admin.ModelAdmin):
    list_display = ("account", "kill_switch", "max_notional", "symbols_column", "updated_at")
    list_filter = ("kill_switch",)
    list_select_related = ("account",)
    search_fields = ("account__label",)
    raw_id_fields = ("account",)

    @admin.display(description="allowed symbols")
    def symbols_column(self, obj: TradingGuard) -> str:
        return ", ".join(obj.allowed_symbols) or "all"

    def save_model(self, request: HttpRequest, obj: TradingGuard, form: Any, change: bool) -> None:
        # Through the service, so each change is audited like the admin's account changes.
        changes = {
            name: form.cleaned_data[name]
            for name in ("allowed_symbols", "max_notional", "kill_switch")
            if name in form.changed_data or not change
        }
        guard = trading_guard_update(
            account=obj.account, actor=request.user, ip=request.META.get("REMOTE_ADDR"), **changes
        )
        obj.pk = guard.pk


# Balance history and external orders (the jobs issue), in their own module.
from trading import admin_balances  # noqa: E402, F401
