"""Orders (journal first), their state history, idempotency keys and per-account guards.

An :class:`Order` row is written and committed *before* its request leaves for the venue,
so a crash or a lost answer still leaves the intent (with its client order id) on record
for reconciliation. Every status change goes through ``trading.services`` and leaves one
:class:`OrderEvent`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import ApiToken, ExchangeAccount


class OrderStatus(models.TextChoices):
    PENDING_SUBMIT = "pending_submit", "Pending submit (journaled, not yet answered)"
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELED = "canceled", "Canceled"
    REJECTED = "rejected", "Rejected by the venue"
    UNKNOWN = "unknown", "Unknown outcome (awaiting reconciliation)"
    FAILED = "failed", "Failed (the venue did not process it)"
    EXPIRED = "expired", "Expired"


OPEN_STATUSES = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.FAILED, OrderStatus.EXPIRED}
)

# The state machine: which status may follow which. Terminal statuses have no way out;
# ``unknown`` leaves only through reconciliation (a venue answer), never by re-sending.
TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING_SUBMIT: frozenset(
        {
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,
            OrderStatus.UNKNOWN,
        }
    ),
    OrderStatus.UNKNOWN: frozenset(
        {
            OrderStatus.OPEN,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
            OrderStatus.FAILED,  # the venue never received it (reconciliation's verdict)
        }
    ),
    OrderStatus.OPEN: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
    ),
}


class Order(models.Model):
    """One order on one exchange account, journaled before it is sent.

    ``client_order_id`` is ours, generated (or taken from the caller) before sending; it is
    how an ``unknown`` order is found on the venue. ``exchange_order_id`` is the venue's,
    known once the venue answered.
    """

    class Side(models.TextChoices):
        BUY = "buy"
        SELL = "sell"

    class Type(models.TextChoices):
        LIMIT = "limit"
        MARKET = "market"

    class TimeInForce(models.TextChoices):
        GTC = "GTC", "Good till cancelled"
        IOC = "IOC", "Immediate or cancel"
        FOK = "FOK", "Fill or kill"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="orders")
    client_order_id = models.CharField(max_length=64)
    exchange_order_id = models.CharField(max_length=128, blank=True, db_index=True)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=10, choices=Type.choices)
    amount = models.DecimalField(max_digits=36, decimal_places=18)
    price = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    filled = models.DecimalField(max_digits=36, decimal_places=18, default=Decimal(0))
    average = models.DecimalField(max_digits=36, decimal_places=18, null=True, blank=True)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, blank=True)
    reduce_only = models.BooleanField(default=False)
    post_only = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_SUBMIT, db_index=True
    )
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error_message = models.CharField(max_length=500, blank=True)
    # How often reconciliation asked the venue and it did not know the order (B2 #21).
    reconcile_misses = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="order_client_id_unique_per_account"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="order_amount_positive"),
        ]
        indexes = [models.Index(fields=["account", "status", "-id"])]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.amount} {self.symbol} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def can_become(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, frozenset())


class OrderEvent(models.Model):
    """One entry of an order's append-only history: a status change (or a noted attempt,
    such as a cancel request, where ``from_status == to_status``)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=OrderStatus.choices)
    reason = models.CharField(max_length=200)
    # A summary of the venue's answer (ids, status, filled, error code), never its raw body.
    payload = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}: {self.reason}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("Order events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("Order events are append-only")


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a caller sent, with the first response to it.

    Unique per token (or, for browser sessions, per user), so the same key can never start
    a second order. ``response_status`` is null while the first request is in flight.
    """

    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # sha256 of method, path and the canonical JSON body: a reused key with another body is a 409.
    fingerprint = models.CharField(max_length=64)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "key"],
                condition=models.Q(token__isnull=False),
                name="idempotency_key_per_token",
            ),
            models.UniqueConstraint(
                fields=["user", "key"],
                condition=models.Q(token__isnull=True),
                name="idempotency_key_per_session_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status or 'in flight'})"

    @property
    def is_complete(self) -> bool:
        return self.response_status is not None


class TradingGuard(models.Model):
    """Pre-trade limits an operator sets per account; checked before any order is journaled."""

    account = models.OneToOneField(ExchangeAccount, on_delete=models.CASCADE, related_name="trading_guard")
    allowed_symbols = models.JSONField(
        default=list,
        blank=True,
        help_text='Unified symbols such as ["BTC/USDT", "ETH/USDT"]; empty allows all.',
    )
    max_notional = models.DecimalField(
        max_digits=36,
        decimal_places=18,
        null=True,
        blank=True,
        help_text="Largest order value (amount x price, in the quote currency).",
    )
    kill_switch = models.BooleanField(default=False, help_text="Refuse every new order on this account.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "trading guard"

    def __str__(self) -> str:
        return f"Guard for {self.account}"

    def clean(self) -> None:
        symbols = self.allowed_symbols
        if not isinstance(symbols, list) or not all(isinstance(s, str) and s.strip() for s in symbols):
            raise ValidationError({"allowed_symbols": 'A JSON list of symbols, e.g. ["BTC/USDT"]'})
        self.allowed_symbols = sorted({s.strip() for s in symbols})
        if self.max_notional is not None and self.max_notional <= 0:
            raise ValidationError({"max_notional": "Must be greater than zero (leave empty for no limit)."})

    def allows_symbol(self, symbol: str) -> bool:
        return not self.allowed_symbols or symbol in self.allowed_symbols


# Models of the Celery jobs issue, in their own modules (balance history, orders placed outside us).
from trading import balance_history, external_orders  # noqa: E402, F401
