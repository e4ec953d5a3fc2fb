"""Stream health (written by the manager, read by the admin, the API and the dashboard)
and the operator's always-on watchlist."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

from streams.conf import setting
from streams.groups import STREAM_CHANNELS, StreamKey

CHANNEL_CHOICES = [(c, c) for c in STREAM_CHANNELS]


class StreamState(models.TextChoices):
    CONNECTING = "connecting", "connecting"
    LIVE = "live", "live"
    STALE = "stale", "stale"
    RECONNECTING = "reconnecting", "reconnecting"
    FAILED = "failed", "failed"


class WatchlistEntry(models.Model):
    """A stream the manager keeps open whether or not anyone watches it (dashboard rows)."""

    exchange = models.CharField(max_length=32)
    channel = models.CharField(max_length=16, choices=CHANNEL_CHOICES, default="ticker")
    symbol = models.CharField(max_length=64, help_text="Unified symbol, e.g. BTC/USDT or BTC/USDT:USDT")
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="Order on the dashboard (lowest first)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "symbol", "exchange"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "channel", "symbol"], name="watchlist_unique_stream")
        ]
        verbose_name = "watchlist entry"
        verbose_name_plural = "watchlist"

    def __str__(self) -> str:
        return f"{self.exchange} {self.channel} {self.symbol}"


class StreamSubscription(models.Model):
    """One exchange subscription held by the stream manager, with its health.

    The manager upserts the row at most once per ``STREAMS_HEALTH_INTERVAL_S`` and deletes
    it when it drops the subscription. Readers use :meth:`effective_state`, which also
    turns a row that stopped being refreshed (a dead manager) into ``stale``.
    """

    exchange = models.CharField(max_length=32)
    environment = models.CharField(max_length=16)
    channel = models.CharField(max_length=16, choices=CHANNEL_CHOICES)
    symbol = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=StreamState.choices, default=StreamState.CONNECTING)
    watchlisted = models.BooleanField(default=False)
    leases = models.PositiveIntegerField(default=0, help_text="Consumers currently asking for it")
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_event_time_ms = models.BigIntegerField(null=True, blank=True, help_text="Venue's event time")
    messages = models.BigIntegerField(default=0, help_text="Updates received from the venue")
    published = models.BigIntegerField(default=0, help_text="Conflated messages published")
    reconnects = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["exchange", "channel", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "environment", "channel", "symbol"], name="stream_subscription_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.environment} {self.channel} {self.symbol}"

    @property
    def key(self) -> StreamKey:
        return StreamKey(self.exchange, self.environment, self.channel, self.symbol)

    def age_seconds(self, now: object = None) -> float | None:
        """Seconds since the last message from the venue (None before the first one)."""
        if self.last_message_at is None:
            return None
        moment = now or timezone.now()
        return max(0.0, (moment - self.last_message_at).total_seconds())  # type: ignore[operator]

    def effective_state(self, now: object = None) -> str:
        """The stored state, except that a live stream whose last message (or whose row's
        refresh, if the manager died) is older than the stale threshold reads ``stale``."""
        moment = now or timezone.now()
        stale_after = float(setting("STREAMS_STALE_AFTER_S"))
        refresh_limit = timedelta(seconds=stale_after + 2 * float(setting("STREAMS_HEALTH_INTERVAL_S")))
        if self.state == StreamState.LIVE:
            age = self.age_seconds(moment)
            if age is None or age > stale_after or moment - self.updated_at > refresh_limit:  # type: ignore[operator]
                return StreamState.STALE
        return self.state
