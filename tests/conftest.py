"""Shared fixtures: an owner, a teammate with a narrower grant, and an outsider (healthchecks style)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

# Django-side imports stay inside fixtures: connectors/ and emulator/ tests also run
# without Django (`pytest tests/connectors -p no:django`).


def _django_settings() -> Any:
    try:
        from django.conf import settings

        settings.DATABASES  # noqa: B018  (raises when Django is not configured)
    except Exception:
        return None
    return settings


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Skip tests that need a real service when it is not configured, saying which variable to set.

    Under CI=true nothing may be skipped for that reason: .ci/run sets both variables.
    """
    in_ci = os.environ.get("CI") == "true"
    settings = _django_settings()
    is_postgres = settings is not None and "postgresql" in settings.DATABASES["default"]["ENGINE"]
    has_redis = settings is not None and bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            if in_ci:
                raise pytest.UsageError("CI=true but DATABASE_URL is not PostgreSQL")
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if "redis" in item.keywords and not has_redis:
            if in_ci:
                raise pytest.UsageError("CI=true but REDIS_URL is not set")
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://..."))
        if "online" in item.keywords and os.environ.get("RUN_ONLINE_TESTS") != "1":
            item.add_marker(pytest.mark.skip(reason="talks to real exchanges: set RUN_ONLINE_TESTS=1"))


@pytest.fixture(autouse=True)
def closed_circuits() -> Any:
    """Every test starts with every venue's circuit closed: a 429 one test provokes on the
    session emulator must not refuse the next test's requests (connectors.circuit)."""
    from connectors.circuit import breaker

    breaker.reset()
    yield
    breaker.reset()


SEEDED_SECRETS = {
    "api_key": "AKIAexampleKEY-owner-0001-XYZW",
    "api_secret": "sEcReT-owner-value-that-must-never-leak-0001",
    "passphrase": "pass-phrase-owner-0001",
}


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password="pw-alice-1", is_staff=True)


@pytest.fixture
def teammate(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("bob", password="pw-bob-1")


@pytest.fixture
def outsider(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("mallory", password="pw-mallory-1")


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", password="pw-root-1")


@pytest.fixture
def make_account(owner: Any) -> Callable[..., Any]:
    from accounts.services import account_create

    def make(**overrides: Any) -> Any:
        fields: dict[str, Any] = {
            "actor": overrides.get("owner", owner),
            "owner": owner,
            "label": "main",
            "exchange": "okx",
            "environment": "emulator",
            **SEEDED_SECRETS,
        }
        fields.update(overrides)
        return account_create(**fields)

    return make


@pytest.fixture
def account(make_account: Callable[..., Any], teammate: Any) -> Any:
    """The owner's account, shared with the teammate."""
    return make_account(shared_with=[teammate])


@pytest.fixture
def make_token() -> Callable[..., tuple[Any, str]]:
    from accounts.services import token_issue

    def make(user: Any, scopes: list[str], accounts: Any = (), **kw: Any) -> tuple[Any, str]:
        return token_issue(user=user, name=f"{user.username} token", scopes=scopes, accounts=accounts, **kw)

    return make


@pytest.fixture
def bearer() -> Callable[[str], dict[str, str]]:
    return lambda key: {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture(scope="session")
def emulator() -> Any:
    """One exchange emulator for the whole run, on an ephemeral loopback port.

    Its state (balances, orders) is shared by every test that uses it: tests create their
    own orders and assert on those, never on global totals.
    """
    from emulator.testing import running_emulator

    with running_emulator(seed=20261124) as server:
        yield server


@pytest.fixture
def emulator_settings(settings: Any, emulator: Any) -> Any:
    """Point EMULATOR_URL (and so every account in the emulator environment) at the test emulator."""
    settings.EMULATOR_URL = emulator.url
    settings.MARKET_DATA_ENVIRONMENT = "emulator"
    return emulator
