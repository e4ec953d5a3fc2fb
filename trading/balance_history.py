"""Balance history: one row per distinct state of an account's balances on the venue.

The balance sync (``trading.reconciliation.account_balance_sync``) runs every minute. Rather
than a row per run, a row is one *state*: it is valid from ``first_seen_at`` until
``last_seen_at``, and a run that finds the same balances only moves ``last_seen_at``. So the
history stays small, and a redelivered or overlapping run can never add a duplicate row.

Imported at the end of ``trading/models.py`` so Django registers it with the trading app.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from accounts.models import ExchangeAccount


class BalanceSnapshot(models.Model):
    """The balances of one account (currencies with a non-zero total), as the venue reported
    them between ``first_seen_at`` and ``last_seen_at``."""

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="balance_snapshots")
    # {"BTC": {"free": "1.5", "used": "0", "total": "1.5"}, ...}: Decimals as strings.
    balances = models.JSONField(default=dict)
    # sha256 of the canonical JSON of ``balances``: equal states have equal digests.
    digest = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    venue_time = models.DateTimeField(
        null=True, blank=True, help_text="The venue's timestamp, if it sent one"
    )

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        indexes = [models.Index(fields=["account", "-first_seen_at"], name="balance_snapshot_recent")]
        verbose_name = "balance snapshot"
        verbose_name_plural = "balance history"

    def __str__(self) -> str:
        return f"{self.account} from {self.first_seen_at:%Y-%m-%d %H:%M:%S}"

    def total(self, currency: str) -> str | None:
        entry: Any = self.balances.get(currency)
        return entry.get("total") if isinstance(entry, dict) else None
