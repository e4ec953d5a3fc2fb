"""Secrets at rest: Fernet tokens under our own keys, rotation, loud failures."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts.models import AuditEvent, ExchangeAccount
from tests.conftest import SEEDED_SECRETS

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_columns(account_id: int) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key, api_secret, passphrase FROM accounts_exchangeaccount WHERE id = %s", [account_id]
        )
        return cursor.fetchone()


def test_the_database_column_holds_no_plaintext(account):
    columns = raw_columns(account.pk)
    for stored, plaintext in zip(columns, SEEDED_SECRETS.values(), strict=True):
        assert plaintext not in stored
        assert stored.startswith("gAAAAA")  # a Fernet token


def test_it_reads_back_what_was_stored(account):
    fresh = ExchangeAccount.objects.get(pk=account.pk)
    assert fresh.api_key == SEEDED_SECRETS["api_key"]
    assert fresh.api_secret == SEEDED_SECRETS["api_secret"]
    assert fresh.passphrase == SEEDED_SECRETS["passphrase"]
    assert fresh.masked_api_key == "****" + SEEDED_SECRETS["api_key"][-4:]


def test_the_same_secret_encrypts_differently_each_time(make_account):
    first = make_account(label="one")
    second = make_account(label="two")
    assert raw_columns(first.pk)[1] != raw_columns(second.pk)[1]


def test_a_wrong_key_fails_loudly_instead_of_returning_ciphertext(account):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]), pytest.raises(InvalidToken):
        ExchangeAccount.objects.get(pk=account.pk)


def test_changing_secret_key_does_not_affect_stored_secrets(account):
    with override_settings(SECRET_KEY="an-entirely-different-secret-key-" + "x" * 30):
        assert ExchangeAccount.objects.get(pk=account.pk).api_secret == SEEDED_SECRETS["api_secret"]


def test_rotation_reencrypts_under_the_newest_key_and_old_tokens_decrypt_until_then(make_account):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        account = make_account()
        before = raw_columns(account.pk)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        # Not yet rotated: the old token still decrypts with the old key listed second.
        assert ExchangeAccount.objects.get(pk=account.pk).api_secret == SEEDED_SECRETS["api_secret"]
        call_command("rotate_encryption_keys")
        after = raw_columns(account.pk)
        assert all(b != a for b, a in zip(before, after, strict=True))

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        fresh = ExchangeAccount.objects.get(pk=account.pk)
        assert (fresh.api_key, fresh.api_secret, fresh.passphrase) == tuple(SEEDED_SECRETS.values())
    assert AuditEvent.objects.filter(account=account, action="rotated").count() == 1


def test_rotation_can_be_interrupted_and_run_again(make_account, capsys):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        accounts = [make_account(label=f"acct-{i}") for i in range(3)]

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        # An interrupted run: only the first account was rewritten.
        from accounts import crypto

        first = raw_columns(accounts[0].pk)
        ExchangeAccount.objects.filter(pk=accounts[0].pk).update(
            api_key=crypto.rotate(first[0]),
            api_secret=crypto.rotate(first[1]),
            passphrase=crypto.rotate(first[2]),
        )
        call_command("rotate_encryption_keys")
        assert "rotated 2 account(s); 1 already under the newest key" in capsys.readouterr().out
        call_command("rotate_encryption_keys")
        assert "rotated 0 account(s); 3 already under the newest key" in capsys.readouterr().out

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert [a.api_secret for a in ExchangeAccount.objects.order_by("pk")] == [
            SEEDED_SECRETS["api_secret"]
        ] * 3


def test_a_malformed_key_setting_names_its_position_not_its_value():
    from django.core.exceptions import ImproperlyConfigured

    from accounts import crypto

    with (
        override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, "not-a-key-at-all"]),
        pytest.raises(ImproperlyConfigured, match="entry 2") as excinfo,
    ):
        crypto.encrypt("x")
    assert "not-a-key-at-all" not in str(excinfo.value)
