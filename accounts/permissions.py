"""Token scopes: each API view names the scope each HTTP method needs."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiToken


class HasTokenScope(BasePermission):
    """The token's scopes cover the view's ``required_scopes`` for this method.

    Views declare ``required_scopes = {"GET": "account:read", "POST": "trade"}`` (or one
    string for every method). Session-authenticated staff in the browser act with their
    user's rights; the per-account check happens in selectors either way.
    """

    message = "This token lacks the scope this operation needs"

    def has_permission(self, request: Any, view: Any) -> bool:
        required = scope_required(view, request.method)
        token = request.auth
        if isinstance(token, ApiToken):
            # A method the view does not name is refused rather than left open.
            return required is not None and token.has_scope(required)
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        # Staff sessions may read; writes from a browser session need a superuser.
        return request.method in SAFE_METHODS or user.is_superuser


def scope_required(view: Any, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None)
    if isinstance(scopes, dict):
        return scopes.get(method) or (scopes.get("GET") if method in ("HEAD", "OPTIONS") else None)
    return scopes
