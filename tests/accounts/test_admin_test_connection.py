"""The admin's "Test connection" action checks stored keys against the venue (the emulator)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import AuditEvent
from emulator.accounts import DEMO_CREDENTIALS

pytestmark = pytest.mark.django_db


def run_action(client, account) -> list[str]:
    response = client.post(
        reverse("admin:accounts_exchangeaccount_changelist"),
        {"action": "test_connection", "_selected_action": [str(account.pk)]},
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("venue", ["binance", "okx", "bybit"])
def test_a_good_key_reports_what_it_may_do(client, superuser, make_account, emulator_settings, venue):
    key, secret, passphrase = DEMO_CREDENTIALS[venue]
    account = make_account(exchange=venue, api_key=key, api_secret=secret, passphrase=passphrase)
    client.force_login(superuser)
    messages = run_action(client, account)
    assert messages[0].startswith(f"main: Connected to {venue} (emulator). read: yes, trade: yes")
    event = AuditEvent.objects.filter(account=account, action="tested").get()
    assert event.details["ok"] is True and event.details["can_trade"] is True
    for value in (key, secret, passphrase):
        assert not value or value not in " ".join(messages) + str(event.details)


def test_a_bad_key_reports_a_clear_failure_without_the_key(
    client, superuser, make_account, emulator_settings
):
    account = make_account(
        exchange="binance", api_key="not-a-key-the-venue-knows", api_secret="wrong-secret-value"
    )
    client.force_login(superuser)
    messages = run_action(client, account)
    assert "The exchange rejected the API key: check key, secret and passphrase." in messages[0]
    assert "wrong-secret-value" not in messages[0] and "not-a-key-the-venue-knows" not in messages[0]
    event = AuditEvent.objects.filter(account=account, action="tested").get()
    assert event.details["ok"] is False and event.details["error_code"] == "exchange_credentials_rejected"
