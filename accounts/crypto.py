"""The one module that encrypts and decrypts stored exchange secrets.

Keys come from ``FIELD_ENCRYPTION_KEYS`` (Fernet keys, newest first), never from
``SECRET_KEY``: a leaked or rotated SECRET_KEY neither exposes nor orphans stored secrets.
New values are encrypted under the newest key; any listed key decrypts, so keys rotate by
putting a new one first, running ``manage.py rotate_encryption_keys``, then removing the
old one. Stored tokens are standard Fernet (AES-128-CBC + HMAC-SHA256).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from connector_site.redaction import register_secret

__all__ = ["InvalidToken", "decrypt", "encrypt", "is_under_newest_key", "multi_fernet", "rotate"]


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: at least one Fernet key is needed")
    try:
        fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]
    except ValueError as exc:
        # Never echo the key itself; say which position is wrong.
        position = next(i for i, key in enumerate(keys) if not _is_fernet_key(key))
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS entry {position + 1} is not a Fernet key "
            "(32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key())"
        ) from exc
    return MultiFernet(fernets), fernets[0]


def _is_fernet_key(key: str | bytes) -> bool:
    try:
        Fernet(key.encode() if isinstance(key, str) else key)
    except ValueError:
        return False
    return True


def _current() -> tuple[MultiFernet, Fernet]:
    return _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS))


def multi_fernet() -> MultiFernet:
    """All configured keys: encrypts under the newest, decrypts with any."""
    return _current()[0]


def encrypt(plaintext: str) -> str:
    """Encrypt under the newest key; returns the Fernet token as text."""
    register_secret(plaintext)
    return _current()[0].encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key. Raises ``InvalidToken`` rather than returning ciphertext."""
    plaintext = _current()[0].decrypt(token.encode()).decode()
    register_secret(plaintext)
    return plaintext


def is_under_newest_key(token: str) -> bool:
    """True when the newest key alone decrypts ``token`` (nothing left to rotate)."""
    try:
        _current()[1].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the newest key (it keeps its original timestamp)."""
    return _current()[0].rotate(token.encode()).decode()
