"""Encrypted model fields: django-fernet-encrypted-fields with our own key list.

The package derives its keys from SECRET_KEY and, on a token it cannot decrypt, quietly
returns the ciphertext. This subclass gives it our own keys (``accounts.crypto``, from
``FIELD_ENCRYPTION_KEYS``) and makes reads raise ``InvalidToken`` instead. It relies on the
package's internal ``f`` attribute, so the package is pinned exactly and tests cover
rotation and the wrong-key failure.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import MultiFernet
from encrypted_fields.fields import EncryptedCharField

from accounts import crypto
from connector_site.redaction import register_secret

__all__ = ["SecretCharField"]


class SecretCharField(EncryptedCharField):
    """A CharField stored as a Fernet token in a text column; never filterable by value."""

    @property
    def f(self) -> MultiFernet:  # the package encrypts through ``self.f``
        return crypto.multi_fernet()

    def get_prep_value(self, value: Any) -> Any:
        if value:
            register_secret(str(value))
        return super().get_prep_value(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        return crypto.decrypt(value)  # raises InvalidToken; never returns ciphertext
