"""Who is on the other end of a market-data WebSocket.

Three ways in, checked in this order at the handshake:

* ``Authorization: Bearer <token>`` (tools): the REST API's own lookup
  (:class:`accounts.authentication.BearerTokenAuthentication`), and the token must carry
  ``market:read``;
* ``?ticket=<ticket>`` (clients that cannot set headers): a single-use ticket valid for
  ``STREAMS_TICKET_TTL_S`` seconds, issued by ``POST /api/v1/streams/tickets/`` — never a
  long-lived token in a URL, where access logs would keep it;
* the browser session (the dashboard), via Channels' ``AuthMiddlewareStack``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework import exceptions

from accounts.authentication import BearerTokenAuthentication
from streams.conf import setting

__all__ = ["Identity", "authenticate_scope", "ticket_issue"]

SCOPE = "market:read"
_TICKET_PREFIX = "streams:ticket:"


@dataclass(frozen=True)
class Identity:
    user_id: int | None
    username: str
    via: str  # "token", "ticket", "session", or "" when refused
    error_code: str = ""
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def _refused(code: str, message: str) -> Identity:
    return Identity(None, "", "", code, message)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _ticket_key(ticket: str) -> str:
    return _TICKET_PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(*, user: Any) -> tuple[str, int]:
    """A single-use WebSocket ticket for ``user``: (ticket, seconds it stays valid)."""
    ttl = int(setting("STREAMS_TICKET_TTL_S"))
    ticket = secrets.token_urlsafe(32)
    cache.set(_ticket_key(ticket), user.pk, ttl)
    return ticket, ttl


def _ticket_redeem(ticket: str) -> int | None:
    key = _ticket_key(ticket)
    user_id = cache.get(key)
    if user_id is None:
        return None
    cache.delete(key)
    return int(user_id)


def authenticate_scope(scope: dict[str, Any]) -> Identity:
    """Synchronous (it reads the database): call it through ``database_sync_to_async``."""
    header = _header(scope, b"authorization")
    if header:
        try:
            result = BearerTokenAuthentication().authenticate(
                SimpleNamespace(headers={"authorization": header}, META={"HTTP_AUTHORIZATION": header})
            )
        except exceptions.AuthenticationFailed as exc:
            return _refused("authentication_failed", str(exc.detail))
        if result is None:
            return _refused("authentication_failed", "Authorization must be 'Bearer <token>'")
        user, token = result
        if not token.has_scope(SCOPE):
            return _refused("permission_denied", f"This token lacks the {SCOPE} scope")
        return Identity(user.pk, user.get_username(), "token")

    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    if "ticket" in query:
        user_id = _ticket_redeem(query["ticket"][0])
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
        if user is None:
            return _refused("authentication_failed", "Invalid, expired or already used ticket")
        return Identity(user.pk, user.get_username(), "ticket")

    user = scope.get("user")
    if user is not None and user.is_authenticated and user.is_active:
        return Identity(user.pk, user.get_username(), "session")
    return _refused("not_authenticated", "Log in, or send 'Authorization: Bearer <token>' with market:read")
