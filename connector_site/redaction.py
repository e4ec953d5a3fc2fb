"""Keeps secrets out of log records and error reports.

Two nets: known secret *values* (every exchange secret decrypted in this process and
every API token issued is registered here) are replaced wherever they appear, and
known secret *shapes* (signatures in query strings, ``Authorization`` headers, venue
key headers) are masked even when the value was never registered.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

__all__ = ["RedactSecretsFilter", "SafeReporterFilter", "redact", "register_secret"]

MASK = "********"
# Values shorter than this are too likely to appear by chance (and too weak to matter).
_MIN_SECRET_LENGTH = 8
_MAX_REGISTERED = 10_000

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

_SHAPES = re.compile(
    r"(?i)"
    r"(?P<query>\b(?:signature|sign|apikey|api_key|secret|passphrase|token)=)[^&\s'\"]+"
    r"|(?P<header>\b(?:authorization|x-mbx-apikey|ok-access-(?:key|sign|passphrase)|x-bapi-(?:api-key|sign))"
    r"['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+)?[^\s'\",}]+"
    r"|(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"
)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked in every later log record."""
    global _pattern
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        if len(_secrets) >= _MAX_REGISTERED:
            _secrets.clear()  # bounded memory; the shape patterns still apply
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-shaped fragments masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)

    def _mask(match: re.Match[str]) -> str:
        prefix = match.group("query") or match.group("header") or match.group("bearer") or ""
        return prefix + MASK

    return _SHAPES.sub(_mask, text)


class RedactSecretsFilter(logging.Filter):
    """Logging filter: renders the message and traceback now, then redacts them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            # The formatter would render exc_info again from the live exception.
            record.exc_info = None
        return True


class SafeReporterFilter(SafeExceptionReporterFilter):
    """Django's reporter filter, also hiding URL/DSN settings that can carry passwords."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL|DSN|AUTHORIZATION", flags=re.IGNORECASE
    )

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, redact(value) if isinstance(value, str) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
