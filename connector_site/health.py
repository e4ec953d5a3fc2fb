"""Liveness and readiness probes (exempt from the HTTPS redirect, see settings)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from connector_site.celery import app as celery_app
from connectors.circuit import breaker

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


def readyz(request: HttpRequest) -> JsonResponse:
    """Database, cache and broker answer; 503 naming each one that does not. Venue circuits
    that are open are listed under ``open_circuits`` (the status stays 200 for them)."""
    failing = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            failing.append(name)
    body: dict[str, Any] = (
        {"status": "unavailable", "failing": failing} if failing else {"status": "ok", "checks": list(CHECKS)}
    )
    # Venues we refuse to call for now (connectors.circuit): shown to operators, never a
    # reason to take this process out of rotation.
    open_circuits = breaker.open_circuits()
    if open_circuits:
        body["open_circuits"] = open_circuits
    return JsonResponse(body, status=503 if failing else 200)
