"""Orders the venue has on an account that this system did not place.

Someone traded on the venue's website, or another tool uses the same keys. The open-orders
sync records each one it sees (upserted on the venue's order id) so operators see them in
the admin; nothing here ever cancels or changes them. Our own orders live in
:class:`trading.models.Order` and are matched by client order id first.

Imported at the end of ``trading/models.py`` so Django registers it with the trading app.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from accounts.models import ExchangeAccount


class ExternalOrder(models.Model):
    """An open order seen on the venue that is not in our order journal."""

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="external_orders")
    exchange_order_id = models.CharField(max_length=128)
    client_order_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, blank=True)
    type = models.CharField(max_length=20, blank=True)
    amount = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    price = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    filled = models.DecimalField(max_digits=36, decimal_places=18, default=Decimal(0))
    # CCXT's unified status as the venue last reported it ("open" while it is listed).
    venue_status = models.CharField(max_length=20, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # Set when the order stopped being among the venue's open orders (filled or cancelled there).
    gone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "exchange_order_id"], name="external_order_unique_per_account"
            )
        ]
        ordering = ["-first_seen_at", "-id"]
        verbose_name = "external order"

    def __str__(self) -> str:
        return f"external {self.side} {self.amount} {self.symbol} ({self.exchange_order_id})"

    @property
    def is_open(self) -> bool:
        return self.gone_at is None
