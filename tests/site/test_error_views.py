"""Unrouted API paths and crashes answer with the error envelope, never an HTML page or a traceback."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_an_unknown_api_path_answers_404_with_the_envelope(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such endpoint", "field": None}}


def test_an_unknown_page_outside_the_api_stays_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_crash_in_an_api_view_answers_500_with_the_envelope_and_no_traceback(
    monkeypatch, owner, make_token
):
    from accounts import apis

    def crash(**kwargs):
        raise RuntimeError("secret-looking internals that must not be shown")

    monkeypatch.setattr(apis, "account_list_reachable", crash)
    _, key = make_token(owner, ["account:read"])
    response = Client(raise_request_exception=False).get(
        "/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert b"internals" not in response.content and b"Traceback" not in response.content
