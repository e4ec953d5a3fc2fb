"""Writes for exchange accounts and API tokens; every change leaves one audit row.

Views, the admin and management commands call these; none of them writes the models
directly. No secret is ever put in an audit row, a log line or an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Q, TextField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from accounts import crypto
from accounts.models import ApiToken, AuditEvent, ExchangeAccount
from connectors import ConnectionCheck, Connector, Credentials, check_connection, create_connector
from markets.venues import follow_market_refreshes

logger = logging.getLogger(__name__)

SECRET_FIELDS = ("api_key", "api_secret", "passphrase")
PLAIN_FIELDS = ("label", "exchange", "environment", "uid", "is_active", "owner")


def audit_record(
    *,
    action: str,
    actor: Any = None,
    account: ExchangeAccount | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row. ``details`` must hold no secret (callers pass field names, outcomes)."""
    return AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "get_username", lambda: "system")(),
        account=account,
        account_label=account.label if account else "",
        exchange=account.exchange if account else "",
        ip_address=ip,
        details=details or {},
    )


@transaction.atomic
def account_create(
    *,
    actor: Any,
    owner: Any,
    label: str,
    exchange: str,
    environment: str,
    api_key: str,
    api_secret: str,
    passphrase: str | None = None,
    uid: str = "",
    is_active: bool = True,
    shared_with: Iterable[Any] = (),
    ip: str | None = None,
) -> ExchangeAccount:
    account = ExchangeAccount(
        owner=owner,
        label=label,
        exchange=exchange,
        environment=environment,
        api_key=api_key,
        api_secret=api_secret,
        passphrase=passphrase or None,
        uid=uid,
        is_active=is_active,
    )
    account.full_clean()
    account.save()
    account.shared_with.set(shared_with)
    audit_record(action=AuditEvent.Action.CREATED, actor=actor, account=account, ip=ip)
    return account


@transaction.atomic
def account_update(
    *, account: ExchangeAccount, actor: Any, changes: dict[str, Any], ip: str | None = None
) -> ExchangeAccount:
    """Apply ``changes``; a secret given as empty or None keeps the stored value.

    Writes one audit row naming the changed fields (``keys_changed`` when a secret changed).
    """
    changed: list[str] = []
    for name in PLAIN_FIELDS:
        if name in changes and getattr(account, name) != changes[name]:
            setattr(account, name, changes[name])
            changed.append(name)
    secrets_changed = [name for name in SECRET_FIELDS if changes.get(name)]
    for name in secrets_changed:
        setattr(account, name, changes[name])
    if "shared_with" in changes:
        before = set(account.shared_with.values_list("pk", flat=True))
        after = {user.pk for user in changes["shared_with"]}
        if before != after:
            account.shared_with.set(changes["shared_with"])
            changed.append("shared_with")
    if not changed and not secrets_changed:
        return account
    account.full_clean()
    account.save()
    action = AuditEvent.Action.KEYS_CHANGED if secrets_changed else AuditEvent.Action.CHANGED
    audit_record(
        action=action,
        actor=actor,
        account=account,
        ip=ip,
        details={"fields": changed + secrets_changed},
    )
    return account


@transaction.atomic
def account_delete(*, account: ExchangeAccount, actor: Any, ip: str | None = None) -> None:
    audit_record(
        action=AuditEvent.Action.DELETED,
        actor=actor,
        account=account,
        ip=ip,
        details={"account_id": account.pk},
    )
    account.delete()


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    already_current: int


def secrets_rotate(*, batch_size: int = 200, actor: Any = None) -> RotationResult:
    """Re-encrypt every stored secret under the newest key.

    Each row is rewritten in its own small transaction straight from its stored tokens
    (no decrypt into model fields), so an interrupted run leaves every row readable and a
    second run picks up where the first stopped.
    """
    rotated = already_current = 0
    last_pk = 0
    while True:
        # Cast to plain text: the stored tokens as they are, not decrypted through the field.
        raw = {f"raw_{name}": Cast(name, output_field=TextField()) for name in SECRET_FIELDS}
        rows = list(
            ExchangeAccount.objects.filter(pk__gt=last_pk)
            .order_by("pk")
            .annotate(**raw)
            .values_list("pk", "label", "exchange", *raw)[:batch_size]
        )
        if not rows:
            break
        for pk, label, exchange, *tokens in rows:
            last_pk = pk
            stale = {
                name: crypto.rotate(token)
                for name, token in zip(SECRET_FIELDS, tokens, strict=True)
                if token and not crypto.is_under_newest_key(token)
            }
            if not stale:
                already_current += 1
                continue
            # A raw update: model save() would decrypt and re-encrypt through the field.
            with transaction.atomic():
                ExchangeAccount.objects.filter(pk=pk).update(
                    **{name: Value(token, output_field=TextField()) for name, token in stale.items()}
                )
                audit_record(
                    action=AuditEvent.Action.ROTATED,
                    actor=actor,
                    account=ExchangeAccount(pk=pk, label=label, exchange=exchange),
                    details={"fields": sorted(stale)},
                )
            rotated += 1
    return RotationResult(rotated=rotated, already_current=already_current)


@transaction.atomic
def token_issue(
    *,
    user: Any,
    name: str,
    scopes: Iterable[str],
    accounts: Iterable[ExchangeAccount] = (),
    expires_at: datetime | None = None,
    actor: Any = None,
    ip: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is shown once and never stored."""
    token = ApiToken(user=user, name=name, scopes=sorted(set(scopes)), expiry_date=expires_at)
    token.full_clean(exclude=["id", "prefix", "hashed_key"])
    created, plaintext = ApiToken.objects.create_key(
        user=user, name=name, scopes=token.scopes, expiry_date=expires_at
    )
    token = cast(ApiToken, created)
    granted = list(accounts)
    token.accounts.set(granted)
    audit_record(
        action=AuditEvent.Action.TOKEN_ISSUED,
        actor=actor or user,
        ip=ip,
        details={
            "token": token.prefix,
            "user": user.get_username(),
            "scopes": token.scopes,
            "accounts": [account.pk for account in granted],
        },
    )
    return token, plaintext


def token_revoke(*, token: ApiToken, actor: Any = None, ip: str | None = None) -> None:
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked=True)
        token.revoked = True
        audit_record(
            action=AuditEvent.Action.TOKEN_REVOKED, actor=actor, ip=ip, details={"token": token.prefix}
        )


def token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token (a conditional UPDATE, no read-modify-write).
    A token whose row was just read with a recent use costs no write at all."""
    now = timezone.now()
    cutoff = now - timedelta(minutes=1)
    if token.last_used_at is not None and token.last_used_at >= cutoff:
        return
    ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff), pk=token.pk).update(
        last_used_at=now
    )


def account_credentials(*, account: ExchangeAccount) -> Credentials:
    """Decrypted credentials for the connectors; they never leave this process."""
    return Credentials(
        api_key=account.api_key, secret=account.api_secret, passphrase=account.passphrase or None
    )


def account_connector(*, account: ExchangeAccount) -> Connector:
    """The synchronous connector for this account's venue, environment and current keys.

    Connectors are cached per credentials fingerprint, so edited keys get a new instance.
    The emulator's address comes from settings, never from the account. Its markets follow
    refreshes made by another process (``markets.venues.follow_market_refreshes``).
    """
    follow_market_refreshes()
    return create_connector(
        account.exchange,
        account_credentials(account=account),
        environment=account.environment,
        emulator_url=settings.EMULATOR_URL,
    )


def account_test_connection(
    *, account: ExchangeAccount, actor: Any, ip: str | None = None
) -> ConnectionCheck:
    """Check the stored keys against the venue; audited with the outcome, never the keys."""
    result = check_connection(
        account.exchange,
        account_credentials(account=account),
        environment=account.environment,
        emulator_url=settings.EMULATOR_URL,
    )
    audit_record(
        action=AuditEvent.Action.TESTED,
        actor=actor,
        account=account,
        ip=ip,
        details={
            "ok": result.ok,
            "error_code": result.error_code,
            "can_read": result.can_read,
            "can_trade": result.can_trade,
            "can_withdraw": result.can_withdraw,
        },
    )
    return result
