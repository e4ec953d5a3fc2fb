"""Admin: the always-on watchlist (editable) and stream health (read-only, written by the manager)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from streams.models import StreamState, StreamSubscription, WatchlistEntry

_STATE_COLOURS: dict[str, str] = {
    StreamState.LIVE: "#1a7f37",
    StreamState.STALE: "#b35900",
    StreamState.RECONNECTING: "#b35900",
    StreamState.CONNECTING: "#57606a",
    StreamState.FAILED: "#cf222e",
}


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(admin.ModelAdmin):
    list_display = ("symbol", "exchange", "channel", "enabled", "position")
    list_editable = ("enabled", "position")
    list_filter = ("exchange", "channel", "enabled")
    search_fields = ("symbol",)


@admin.register(StreamSubscription)
class StreamSubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "symbol", "exchange", "channel", "state_badge", "age", "reconnects", "messages", "published",
        "leases", "watchlisted", "last_error",
    )  # fmt: skip
    list_filter = ("exchange", "channel", "state", "watchlisted", "environment")
    search_fields = ("symbol",)
    readonly_fields = [f.name for f in StreamSubscription._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="state")
    def state_badge(self, obj: StreamSubscription) -> str:
        state = obj.effective_state()
        return format_html('<b style="color:{}">{}</b>', _STATE_COLOURS.get(state, "#57606a"), state)

    @admin.display(description="last message")
    def age(self, obj: StreamSubscription) -> str:
        seconds = obj.age_seconds()
        return "—" if seconds is None else f"{seconds:.1f} s ago"
