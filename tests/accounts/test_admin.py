"""Operators' admin: secrets are write-only, every change is audited once, without secrets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiToken, AuditEvent, ExchangeAccount
from tests.conftest import SEEDED_SECRETS

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def assert_no_secret(content: bytes) -> None:
    text = content.decode()
    for value in SEEDED_SECRETS.values():
        assert value not in text


def form_data(**overrides):
    data = {
        "label": "desk",
        "exchange": "binance",
        "environment": "emulator",
        "api_key": "",
        "api_secret": "",
        "passphrase": "",
        "uid": "",
        "is_active": "on",
        "owner": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_no_admin_page_renders_a_stored_secret(admin_client, account):
    pages = [
        reverse("admin:accounts_exchangeaccount_changelist"),
        reverse("admin:accounts_exchangeaccount_change", args=[account.pk]),
        reverse("admin:accounts_exchangeaccount_history", args=[account.pk]),
        reverse("admin:accounts_exchangeaccount_delete", args=[account.pk]),
        reverse("admin:accounts_auditevent_changelist"),
        reverse("admin:accounts_exchangeaccount_changelist") + "?q=main",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert_no_secret(response.content)
    listing = admin_client.get(pages[0]).content.decode()
    assert "****" + SEEDED_SECRETS["api_key"][-4:] in listing


def test_a_form_with_errors_does_not_echo_the_secrets_typed_into_it(admin_client, owner):
    response = admin_client.post(
        reverse("admin:accounts_exchangeaccount_add"),
        form_data(label="", owner=str(owner.pk), **SEEDED_SECRETS),
    )
    assert response.status_code == 200  # re-rendered with errors
    assert b"This field is required" in response.content
    assert_no_secret(response.content)
    assert not ExchangeAccount.objects.exists()


def test_creating_an_account_in_the_admin_encrypts_it_and_writes_one_audit_row(
    admin_client, owner, superuser
):
    response = admin_client.post(
        reverse("admin:accounts_exchangeaccount_add"), form_data(owner=str(owner.pk), **SEEDED_SECRETS)
    )
    assert response.status_code == 302
    account = ExchangeAccount.objects.get()
    assert account.api_secret == SEEDED_SECRETS["api_secret"]
    events = list(AuditEvent.objects.filter(account=account))
    assert [(e.action, e.actor) for e in events] == [("created", superuser)]
    assert events[0].ip_address == "127.0.0.1"


def test_leaving_secret_inputs_blank_keeps_the_stored_values(admin_client, account, owner, teammate):
    url = reverse("admin:accounts_exchangeaccount_change", args=[account.pk])
    response = admin_client.post(
        url, form_data(label="renamed", exchange="okx", owner=str(owner.pk), shared_with=[str(teammate.pk)])
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.label == "renamed"
    assert (account.api_key, account.api_secret, account.passphrase) == tuple(SEEDED_SECRETS.values())
    event = AuditEvent.objects.filter(account=account).latest("id")
    assert (event.action, event.details) == ("changed", {"fields": ["label"]})


def test_changing_a_secret_is_audited_by_field_name_only(admin_client, account, owner, teammate):
    url = reverse("admin:accounts_exchangeaccount_change", args=[account.pk])
    new_secret = "a-brand-new-secret-value-9876"
    admin_client.post(
        url,
        form_data(
            label="main",
            exchange="okx",
            owner=str(owner.pk),
            api_secret=new_secret,
            shared_with=[str(teammate.pk)],
        ),
    )
    account.refresh_from_db()
    assert account.api_secret == new_secret
    event = AuditEvent.objects.filter(account=account).latest("id")
    assert (event.action, event.details) == ("keys_changed", {"fields": ["api_secret"]})
    assert new_secret not in str(event.details) + event.account_label


def test_every_account_change_writes_exactly_one_audit_row_without_secrets(admin_client, account, owner):
    before = AuditEvent.objects.count()
    change_url = reverse("admin:accounts_exchangeaccount_change", args=[account.pk])
    admin_client.post(change_url, form_data(label="one", exchange="okx", owner=str(owner.pk)))
    admin_client.post(change_url, form_data(label="one", exchange="okx", owner=str(owner.pk)))  # no change
    admin_client.post(reverse("admin:accounts_exchangeaccount_delete", args=[account.pk]), {"post": "yes"})
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [e.action for e in events] == ["changed", "deleted"]
    assert not ExchangeAccount.objects.exists()
    for event in AuditEvent.objects.all():
        row = f"{event.details} {event.account_label} {event.actor_name}"
        for value in SEEDED_SECRETS.values():
            assert value not in row


def test_the_audit_log_is_read_only_in_the_admin(admin_client, account):
    event = AuditEvent.objects.get(account=account)
    assert admin_client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:accounts_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_issuing_a_token_in_the_admin_shows_it_once_and_stores_only_its_hash(admin_client, owner, account):
    response = admin_client.post(
        reverse("admin:accounts_apitoken_add"),
        {
            "name": "pricing bot",
            "user": str(owner.pk),
            "scopes": ["market:read", "account:read"],
            "accounts": [str(account.pk)],
            "expiry_date_0": "",
            "expiry_date_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="pricing bot")
    message = next(str(m) for m in response.context["messages"])
    plaintext = message.split("is: ")[1].split(" ")[0]
    assert plaintext.startswith(token.prefix + ".")
    assert plaintext not in token.hashed_key and token.hashed_key.startswith("sha512$$")
    assert list(token.accounts.all()) == [account]
    # Shown once: the token's own page never shows it again.
    page = admin_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk]))
    assert plaintext not in page.content.decode()
