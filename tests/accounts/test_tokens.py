"""API tokens: hashed at rest, scopes and per-account grants enforced on every request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from accounts.services import token_revoke

pytestmark = pytest.mark.django_db


def test_tokens_are_stored_as_sha512_hashes_only(make_token, owner):
    token, plaintext = make_token(owner, ["market:read"])
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.hashed_key.startswith("sha512$$")
    assert plaintext.split(".", 1)[1] not in stored.hashed_key
    assert plaintext not in str(ApiToken.objects.filter(pk=token.pk).values().get())


def test_a_granted_token_lists_only_its_granted_accounts(client, bearer, make_token, make_account, owner):
    granted = make_account(label="granted")
    make_account(label="not granted")
    _, key = make_token(owner, ["account:read"], [granted])
    response = client.get("/api/v1/accounts/", **bearer(key))
    assert response.status_code == 200
    assert [a["label"] for a in response.json()] == ["granted"]


def test_a_token_without_grants_reaches_no_account(client, bearer, make_token, account, owner):
    _, key = make_token(owner, ["account:read"])
    assert client.get("/api/v1/accounts/", **bearer(key)).json() == []
    response = client.get(f"/api/v1/accounts/{account.pk}/", **bearer(key))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_account_is_reachable_by_owner_and_teammate_but_not_an_outsider(
    client, bearer, make_token, account, owner, teammate, outsider
):
    for user, expected in ((owner, 200), (teammate, 200), (outsider, 404)):
        # Even a token granted the account cannot reach it when its user may not.
        _, key = make_token(user, ["account:read"], [account])
        response = client.get(f"/api/v1/accounts/{account.pk}/", **bearer(key))
        assert response.status_code == expected, user


def test_the_account_detail_never_contains_a_secret(client, bearer, make_token, account, owner):
    _, key = make_token(owner, ["account:read"], [account])
    body = client.get(f"/api/v1/accounts/{account.pk}/", **bearer(key)).json()
    assert body["api_key"] == "****" + account.api_key[-4:]
    assert set(body) == {
        "id",
        "label",
        "exchange",
        "environment",
        "api_key",
        "uid",
        "is_active",
        "created_at",
        "updated_at",
    }


def test_a_token_without_the_scope_gets_403_with_the_error_envelope(
    client, bearer, make_token, account, owner
):
    _, key = make_token(owner, ["market:read"], [account])
    response = client.get("/api/v1/accounts/", **bearer(key))
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "permission_denied",
            "message": "This token lacks the scope this operation needs",
            "field": None,
        }
    }


@pytest.mark.parametrize("header", ["Bearer nope.nope", "Bearer ", "Bearer a b", "Bearer " + "x" * 500])
def test_bad_tokens_get_401(client, header):
    response = client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated"}
    assert response["WWW-Authenticate"] == "Bearer"


def test_no_token_gets_401(client):
    response = client.get("/api/v1/accounts/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_revoked_and_expired_tokens_are_refused(client, bearer, make_token, owner):
    revoked, revoked_key = make_token(owner, ["account:read"])
    token_revoke(token=revoked, actor=owner)
    _, expired_key = make_token(owner, ["account:read"], expires_at=timezone.now() - timedelta(seconds=1))
    for key in (revoked_key, expired_key):
        assert client.get("/api/v1/accounts/", **bearer(key)).status_code == 401
    assert AuditEvent.objects.filter(action="token_revoked").count() == 1


def test_using_a_token_records_its_last_use(client, bearer, make_token, owner):
    token, key = make_token(owner, ["account:read"])
    assert token.last_used_at is None
    client.get("/api/v1/accounts/", **bearer(key))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_authenticating_a_recently_used_token_is_one_query_and_no_write(
    bearer, make_token, owner, django_assert_num_queries
):
    from rest_framework.test import APIRequestFactory

    from accounts.authentication import BearerTokenAuthentication

    token, key = make_token(owner, ["account:read"])
    request = APIRequestFactory().get("/api/v1/accounts/", **bearer(key))
    with django_assert_num_queries(2):  # the token with its user, then the first use recorded
        user, _ = BearerTokenAuthentication().authenticate(request)
    assert user == owner
    with django_assert_num_queries(1):  # used within the minute: the token with its user only
        BearerTokenAuthentication().authenticate(request)

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    BearerTokenAuthentication().authenticate(request)
    token.refresh_from_db()
    assert token.last_used_at > timezone.now() - timedelta(minutes=1)


def test_unknown_scopes_are_rejected(make_token, owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Unknown scope"):
        make_token(owner, ["market:read", "withdraw"])


def test_issue_token_prints_the_token_once_on_its_last_line(capsys, client, bearer, account, owner):
    call_command(
        "issue_token", "--user", "alice", "--scopes", "account:read,trade", "--accounts", str(account.pk)
    )
    lines = capsys.readouterr().out.strip().splitlines()
    key = lines[-1]
    token = ApiToken.objects.get(prefix=key.split(".")[0])
    assert token.scopes == ["account:read", "trade"] and list(token.accounts.all()) == [account]
    assert client.get("/api/v1/accounts/", **bearer(key)).json()[0]["id"] == account.pk


def test_issue_token_without_accounts_grants_none(capsys, account):
    call_command("issue_token", "--user", "alice", "--scopes", "account:read")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert not ApiToken.objects.get(prefix=key.split(".")[0]).accounts.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody", "--scopes", "trade"], "no user named 'nobody'"),
        (["--user", "alice", "--scopes", "withdraw"], "--scopes: unknown ['withdraw']"),
        (["--user", "alice", "--scopes", "trade", "--accounts", "x"], "--accounts: expected"),
    ],
)
def test_issue_token_names_the_bad_argument(args, message, owner):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call_command("issue_token", *args)


def test_issue_token_refuses_accounts_the_user_cannot_reach(account, outsider):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not reachable"):
        call_command("issue_token", "--user", "mallory", "--scopes", "trade", "--accounts", str(account.pk))
