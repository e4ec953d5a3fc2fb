"""``Authorization: Bearer <token>`` authentication for internal tools."""

from __future__ import annotations

from typing import Any, cast

from rest_framework import authentication, exceptions

from accounts.models import ApiToken
from accounts.services import token_touch


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Looks the token up by its prefix and checks its SHA-512 hash, expiry and revocation."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key or " " in key:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'")
        try:
            token = cast(ApiToken, ApiToken.objects.get_from_key(key))
        except ApiToken.DoesNotExist:
            token = None
        # get_from_key excludes revoked tokens and checks the hash; expiry and the user are ours.
        if token is None or token.has_expired or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token")
        token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
