"""API credentials for one exchange account, as the connectors take them.

The caller (``accounts``) decrypts the stored secrets and builds a :class:`Credentials`; the
connectors never see the database. Nothing here prints a secret: ``repr``/``str`` show the
last four characters of the API key only, and the fingerprint used to key instance caches
is a keyed hash under a per-process random key, so it cannot be checked against a guess
outside this process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Credentials"]

# Per-process key for fingerprints: fingerprints are only ever compared inside this process.
_FINGERPRINT_KEY = secrets.token_bytes(32)


@dataclass(frozen=True, repr=False, eq=True)
class Credentials:
    """An API key pair (plus OKX's passphrase). Frozen; its repr never shows a secret."""

    api_key: str
    secret: str = field(compare=True)
    passphrase: str | None = None

    def __repr__(self) -> str:
        tail = self.api_key[-4:] if len(self.api_key) > 8 else ""
        passphrase = ", passphrase='********'" if self.passphrase else ""
        return f"Credentials(api_key='****{tail}', secret='********'{passphrase})"

    __str__ = __repr__

    @property
    def fingerprint(self) -> str:
        """A stable (per process) digest of all three values: edited keys give a new fingerprint."""
        material = "\x00".join((self.api_key, self.secret, self.passphrase or "")).encode()
        return hmac.new(_FINGERPRINT_KEY, material, hashlib.sha256).hexdigest()[:32]

    def secret_values(self) -> tuple[str, ...]:
        """Every value that must never leave the process (used to scrub messages)."""
        return tuple(v for v in (self.api_key, self.secret, self.passphrase) if v)

    def ccxt_config(self) -> dict[str, Any]:
        """The CCXT constructor keys for these credentials."""
        config: dict[str, Any] = {"apiKey": self.api_key, "secret": self.secret}
        if self.passphrase:
            config["password"] = self.passphrase
        return config
