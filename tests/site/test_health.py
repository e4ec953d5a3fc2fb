"""Liveness and readiness probes."""

from __future__ import annotations

import pytest

from connector_site import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_when_database_cache_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": ["database", "cache", "broker"]}


def test_readyz_names_what_does_not_answer(client, monkeypatch):
    def broker_down() -> None:
        raise ConnectionRefusedError("broker refused the connection")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["broker"]}


def test_probes_are_exempt_from_the_https_redirect(settings, client):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301
