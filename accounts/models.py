"""Exchange accounts with encrypted keys, API tokens for internal tools, and the audit log."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from accounts.fields import SecretCharField
from connectors.environments import Environment
from connectors.exchanges import exchange_choices


class ExchangeAccount(models.Model):
    """One set of API keys on one venue, owned by a user and optionally shared with others.

    The key, secret and passphrase are Fernet tokens at rest; ``api_key_hint`` keeps the last
    four characters of the key so lists can show which key is stored without decrypting.
    """

    class EnvironmentChoice(models.TextChoices):
        LIVE = Environment.LIVE.value, "Live"
        SANDBOX = Environment.SANDBOX.value, "Sandbox (venue testnet)"
        EMULATOR = Environment.EMULATOR.value, "Emulator"

    label = models.CharField(max_length=100)
    exchange = models.CharField(max_length=40, choices=exchange_choices)
    environment = models.CharField(
        max_length=10, choices=EnvironmentChoice.choices, default=EnvironmentChoice.LIVE
    )
    api_key = SecretCharField(max_length=512)
    api_secret = SecretCharField(max_length=4096)  # PEM private keys (binance RSA/Ed25519) are long
    passphrase = SecretCharField(max_length=256, blank=True, null=True)
    uid = models.CharField(
        max_length=100, blank=True, help_text="Venue account/user id, where the venue needs one"
    )
    api_key_hint = models.CharField(max_length=8, editable=False, blank=True)
    is_active = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="exchange_accounts"
    )
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="shared_exchange_accounts",
        help_text="Teammates who may use this account (within their tokens' scopes and grants).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "label"], name="account_label_unique_per_owner"),
        ]
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.exchange}, {self.environment})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.api_key:
            self.api_key_hint = self.api_key[-4:]
        super().save(*args, **kwargs)

    @property
    def masked_api_key(self) -> str:
        return f"****{self.api_key_hint}" if self.api_key_hint else ""


class ApiTokenManager(APIKeyManager):
    def get_usable_keys(self) -> models.QuerySet:
        # Authentication reads the token's user on every request: one query, not two.
        return super().get_usable_keys().select_related("user")


class ApiToken(AbstractAPIKey):
    """A bearer token for internal tools: SHA-512 hashed at rest, shown once at creation.

    It reaches an exchange account only when granted it *and* its user may reach it.
    """

    SCOPES = ("market:read", "account:read", "trade", "accounts:admin")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scopes = models.JSONField(default=list, help_text="Any of: " + ", ".join(SCOPES))
    accounts = models.ManyToManyField(ExchangeAccount, blank=True, related_name="granted_tokens")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[ApiTokenManager] = ApiTokenManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def clean(self) -> None:
        super().clean()
        unknown = sorted(set(self.scopes or []) - set(self.SCOPES))
        if unknown:
            raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(unknown)}"})

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class AuditEvent(models.Model):
    """An append-only record of who did what to an account or token, when and from where.

    It never holds a secret: only labels, ids, field names and outcomes.
    """

    class Action(models.TextChoices):
        CREATED = "created"
        CHANGED = "changed"
        KEYS_CHANGED = "keys_changed"
        ROTATED = "rotated"
        TESTED = "tested"
        DELETED = "deleted"
        TOKEN_ISSUED = "token_issued"
        TOKEN_REVOKED = "token_revoked"
        ORDER_PLACED = "order_placed"
        ORDER_CANCELED = "order_canceled"
        VENUE_SETTING = "venue_setting"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept if the user is deleted")
    action = models.CharField(max_length=20, choices=Action.choices)
    account = models.ForeignKey(
        ExchangeAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    account_label = models.CharField(max_length=100, blank=True)
    exchange = models.CharField(max_length=40, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.account_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValidationError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("Audit events are append-only")
