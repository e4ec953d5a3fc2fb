"""Exchange connection management for provisioning tools (scope accounts:admin): POST
/accounts/, PATCH and DELETE /accounts/{id}/, POST /accounts/{id}/test/. Secrets are
write-only; every change leaves the same audit row as the admin."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent, ExchangeAccount
from emulator.accounts import DEMO_CREDENTIALS
from tests.conftest import SEEDED_SECRETS
from trading.models import Order

pytestmark = pytest.mark.django_db

NEW = {
    "label": "provisioned",
    "exchange": "binance",
    "environment": "emulator",
    "api_key": "prov-key-0001-abcd",
    "api_secret": "prov-secret-0001-never-shown",
}


@pytest.fixture
def admin_token(make_token, owner):
    token, key = make_token(owner, ["account:read", "accounts:admin"])
    return token, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _json(client, method, url, body, auth):
    return getattr(client, method)(url, body, content_type="application/json", **auth)


class TestCreate:
    def test_it_creates_an_account_owned_by_the_tokens_user_and_never_echoes_secrets(
        self, client, admin_token, owner
    ):
        token, auth = admin_token
        response = _json(client, "post", "/api/v1/accounts/", NEW, auth)
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["api_key"] == "****abcd"
        assert "api_secret" not in body and "passphrase" not in body
        assert NEW["api_secret"] not in response.content.decode()
        account = ExchangeAccount.objects.get(pk=body["id"])
        assert account.owner == owner and account.api_secret == NEW["api_secret"]
        assert list(token.accounts.all()) == [account]  # the creating token may manage it
        audit = AuditEvent.objects.get(action=AuditEvent.Action.CREATED, account=account)
        assert audit.actor == owner and NEW["api_secret"] not in str(audit.details)
        assert client.get(f"/api/v1/accounts/{account.pk}/", **auth).status_code == 200

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"exchange": "http://169.254.169.254"}, "exchange"),
            ({"exchange": "kraken-but-not-allowed"}, "exchange"),
            ({"environment": "prod"}, "environment"),
            ({"api_secret": ""}, "api_secret"),
            ({"label": ""}, "label"),
            ({"exchange": "okx"}, "passphrase"),  # OKX keys need their passphrase
        ],
    )
    def test_invalid_input_is_a_400_naming_the_field(self, client, admin_token, change, field):
        response = _json(client, "post", "/api/v1/accounts/", {**NEW, **change}, admin_token[1])
        assert response.status_code == 400, response.json()
        assert response.json()["error"]["field"] == field
        assert not ExchangeAccount.objects.exists()

    def test_a_taken_label_is_a_409(self, client, admin_token):
        _json(client, "post", "/api/v1/accounts/", NEW, admin_token[1])
        response = _json(client, "post", "/api/v1/accounts/", NEW, admin_token[1])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "account_label_taken"

    def test_mass_assigned_owner_is_ignored(self, client, admin_token, owner, outsider):
        body = {**NEW, "owner": outsider.pk, "shared_with": [outsider.pk], "api_key_hint": "zzzz"}
        response = _json(client, "post", "/api/v1/accounts/", body, admin_token[1])
        account = ExchangeAccount.objects.get(pk=response.json()["id"])
        assert account.owner == owner and not account.shared_with.exists() and account.api_key_hint == "abcd"

    def test_it_needs_the_accounts_admin_scope(self, client, make_token, owner):
        _, key = make_token(owner, ["account:read", "trade"])
        response = _json(client, "post", "/api/v1/accounts/", NEW, {"HTTP_AUTHORIZATION": f"Bearer {key}"})
        assert response.status_code == 403
        assert not ExchangeAccount.objects.exists()


class TestChange:
    def test_the_owner_changes_keys_write_only_and_it_is_audited(self, client, make_token, owner, account):
        _, key = make_token(owner, ["accounts:admin"], [account])
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        response = _json(
            client,
            "patch",
            f"/api/v1/accounts/{account.pk}/",
            {"label": "renamed", "api_secret": "rotated-secret-0002"},
            auth,
        )
        assert response.status_code == 200, response.json()
        assert response.json()["label"] == "renamed"
        assert "rotated-secret-0002" not in response.content.decode()
        account.refresh_from_db()
        assert account.api_secret == "rotated-secret-0002"
        audit = AuditEvent.objects.filter(account=account).first()
        assert audit.action == AuditEvent.Action.KEYS_CHANGED
        assert sorted(audit.details["fields"]) == ["api_secret", "label"]

    def test_an_empty_secret_keeps_the_stored_one(self, client, make_token, owner, account):
        _, key = make_token(owner, ["accounts:admin"], [account])
        _json(
            client,
            "patch",
            f"/api/v1/accounts/{account.pk}/",
            {"api_secret": ""},
            {"HTTP_AUTHORIZATION": f"Bearer {key}"},
        )
        account.refresh_from_db()
        assert account.api_secret == SEEDED_SECRETS["api_secret"]

    def test_a_teammate_with_the_scope_may_not_change_the_owners_account(
        self, client, make_token, teammate, account
    ):
        _, key = make_token(teammate, ["accounts:admin"], [account])
        response = _json(
            client,
            "patch",
            f"/api/v1/accounts/{account.pk}/",
            {"label": "mine now"},
            {"HTTP_AUTHORIZATION": f"Bearer {key}"},
        )
        assert response.status_code == 403
        account.refresh_from_db()
        assert account.label == "main"

    def test_an_outsider_gets_404(self, client, make_token, outsider, account):
        _, key = make_token(outsider, ["accounts:admin"], [account])
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        assert (
            _json(client, "patch", f"/api/v1/accounts/{account.pk}/", {"label": "x"}, auth).status_code == 404
        )
        assert client.delete(f"/api/v1/accounts/{account.pk}/", **auth).status_code == 404
        assert client.post(f"/api/v1/accounts/{account.pk}/test/", **auth).status_code == 404

    def test_a_token_not_granted_the_account_gets_404(self, client, make_token, owner, account):
        _, key = make_token(owner, ["accounts:admin"])
        response = _json(
            client,
            "patch",
            f"/api/v1/accounts/{account.pk}/",
            {"label": "x"},
            {"HTTP_AUTHORIZATION": f"Bearer {key}"},
        )
        assert response.status_code == 404


class TestDelete:
    def test_the_owner_deletes_and_it_is_audited(self, client, make_token, owner, account):
        _, key = make_token(owner, ["accounts:admin"], [account])
        response = client.delete(f"/api/v1/accounts/{account.pk}/", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 204
        assert not ExchangeAccount.objects.exists()
        assert AuditEvent.objects.get(action=AuditEvent.Action.DELETED).account_label == "main"

    def test_an_account_with_orders_is_a_409_and_stays(self, client, make_token, owner, account):
        Order.objects.create(
            account=account,
            client_order_id="x1",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=1,
            price=1,
        )
        _, key = make_token(owner, ["accounts:admin"], [account])
        response = client.delete(f"/api/v1/accounts/{account.pk}/", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "account_has_orders"
        assert ExchangeAccount.objects.filter(pk=account.pk).exists()
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.DELETED).exists()


class TestConnectionTest:
    def test_it_reports_what_working_keys_may_do(
        self, client, make_account, make_token, owner, emulator_settings
    ):
        key, secret, _ = DEMO_CREDENTIALS["binance"]
        account = make_account(
            label="demo", exchange="binance", api_key=key, api_secret=secret, passphrase=None
        )
        _, token = make_token(owner, ["accounts:admin"], [account])
        response = client.post(f"/api/v1/accounts/{account.pk}/test/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["ok"] is True and body["can_read"] is True and body["error_code"] is None
        assert AuditEvent.objects.filter(action=AuditEvent.Action.TESTED, account=account).count() == 1

    def test_rejected_keys_are_reported_not_raised(
        self, client, make_account, make_token, owner, emulator_settings
    ):
        account = make_account(label="wrong", exchange="binance", api_secret="wrong-secret-0003")
        _, token = make_token(owner, ["accounts:admin"], [account])
        response = client.post(f"/api/v1/accounts/{account.pk}/test/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        assert response.json()["ok"] is False
        assert response.json()["error_code"] == "exchange_credentials_rejected"
        assert "wrong-secret-0003" not in response.content.decode()

    def test_it_needs_the_accounts_admin_scope(self, client, make_token, owner, account):
        _, token = make_token(owner, ["account:read", "trade"], [account])
        response = client.post(f"/api/v1/accounts/{account.pk}/test/", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 403
