"""No log record leaves with a key, secret, signature or token in it."""

from __future__ import annotations

import logging

import pytest

from connector_site.redaction import RedactSecretsFilter, register_secret
from tests.conftest import SEEDED_SECRETS


@pytest.fixture
def captured():
    """A handler with the project's filter, as LOGGING installs it on the console handler."""
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture()
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, records
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_decrypted_secrets_are_masked_in_messages_args_and_tracebacks(captured, account):
    logger, records = captured
    from accounts.models import ExchangeAccount

    stored = ExchangeAccount.objects.get(pk=account.pk)  # decrypting registers the values
    logger.info("calling venue with %s and %s", stored.api_key, {"secret": stored.api_secret})
    try:
        raise ValueError(f"venue said: bad passphrase {stored.passphrase}")
    except ValueError:
        logger.exception("request failed")
    text = "\n".join(records)
    for value in SEEDED_SECRETS.values():
        assert value not in text
    assert "********" in text and "request failed" in text and "ValueError" in text


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/v3/account?timestamp=1&signature=9f86d081884c7d659a2feaa0c55ad015",
        "headers {'X-MBX-APIKEY': 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A'}",
        "Authorization: Bearer abcd1234.efgh5678ijkl9012",
        "{'OK-ACCESS-SIGN': 'c2lnbmF0dXJlLXZhbHVl', 'OK-ACCESS-PASSPHRASE': 'hunter22-pass'}",
        "X-BAPI-SIGN=8f1e0a7c3b2d4e5f",
    ],
)
def test_secret_shaped_fragments_are_masked_even_if_never_registered(captured, line):
    logger, records = captured
    logger.warning(line)
    assert "********" in records[0]
    secret_part = line.split("=")[-1] if "=" in line else line.split()[-1]
    assert secret_part.strip("'}") not in records[0]


def test_short_values_are_not_registered_so_ordinary_words_survive(captured):
    logger, records = captured
    register_secret("abc")
    logger.info("abc is fine")
    assert records == ["abc is fine"]
