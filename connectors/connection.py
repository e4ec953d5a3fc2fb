"""Test connection: check stored keys against the venue and report what they may do.

Used by the admin's "Test connection" action and by the API. Never raises for venue or
key problems: the result says what went wrong with a stable error code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .credentials import Credentials
from .environments import Environment
from .errors import ConnectorError, CredentialsRejected
from .factory import create_connector

__all__ = ["ConnectionCheck", "check_connection"]

logger = logging.getLogger("connectors.connection")


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of :func:`check_connection`.

    ``ok`` means the venue accepted the keys. ``can_read``/``can_trade``/``can_withdraw``
    are True/False where the venue tells, None where it does not. ``error_code`` is the
    connector error code when ``ok`` is False. ``warnings`` are for the operator (e.g. a
    key that may withdraw).
    """

    exchange_id: str
    environment: str
    ok: bool
    message: str
    can_read: bool | None = None
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    error_code: str | None = None
    warnings: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


def check_connection(
    exchange_id: str,
    credentials: Credentials,
    *,
    environment: Environment | str = Environment.LIVE,
    emulator_url: str | None = None,
) -> ConnectionCheck:
    """Prove ``credentials`` work on the venue (a signed balance read), then ask the venue
    what the key may do: Binance GET /sapi/v1/account/apiRestrictions, OKX GET
    /api/v5/account/config, Bybit GET /v5/user/query-api; other venues report read only."""
    env = str(Environment(environment).value) if environment in tuple(Environment) else str(environment)
    try:
        connector = create_connector(
            exchange_id, credentials, environment=environment, emulator_url=emulator_url
        )
        connector.fetch_balance()
    except ConnectorError as exc:
        logger.info("connection check %s %s failed: %s", exchange_id, env, exc.code)
        return ConnectionCheck(
            exchange_id=exchange_id,
            environment=env,
            ok=False,
            error_code=exc.code,
            message=_failure_message(exc),
        )

    can_trade = can_withdraw = None
    details: dict[str, Any] = {}
    notes: list[str] = []
    if connector.capabilities().get("api_permissions"):
        try:
            permissions = connector.fetch_permissions()
        except CredentialsRejected as exc:
            return ConnectionCheck(
                exchange_id=connector.exchange_id,
                environment=env,
                ok=False,
                error_code=exc.code,
                message=_failure_message(exc),
            )
        except ConnectorError as exc:
            notes.append(f"The exchange did not say what this key may do ({exc.code}).")
        else:
            can_trade, can_withdraw = permissions["trade"], permissions["withdraw"]
            details = permissions.get("info") or {}
    if can_withdraw:
        notes.append("This key may withdraw funds; we never need that: create a key without withdrawals.")
    summary = ", ".join(
        f"{name}: {'yes' if value else 'no' if value is False else 'unknown'}"
        for name, value in (("read", True), ("trade", can_trade), ("withdraw", can_withdraw))
    )
    return ConnectionCheck(
        exchange_id=connector.exchange_id,
        environment=env,
        ok=True,
        message=f"Connected to {connector.exchange_id} ({env}). {summary}.",
        can_read=True,
        can_trade=can_trade,
        can_withdraw=can_withdraw,
        warnings=tuple(notes),
        details=details,
    )


def _failure_message(exc: ConnectorError) -> str:
    if isinstance(exc, CredentialsRejected):
        return f"The exchange rejected the API key: check key, secret and passphrase. ({exc.message})"
    return str(exc)
