"""Fixtures for the Celery jobs: accounts with their own emulator keys, fault injection, and
real workers.

Two kinds of worker:

* :func:`inprocess_worker`: ``celery.contrib.testing.worker.start_worker`` in this process (threads
  pool) on the in-memory broker, inside ``django_db(transaction=True)`` tests, so it reads and
  writes pytest's test database. Works on SQLite and Postgres. Never the filesystem broker in
  ``var/``: a running ``make run`` would take the tasks and write them to its own database.
* :func:`subprocess_worker`: ``celery -A connector_site worker`` (prefork, optionally with
  ``--beat``) as a separate process, on the real Redis broker (DB 13, a queue of its own) and
  pointed at pytest's Postgres test database. For time limits, kills and redelivery.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
JOBS_REDIS_DB = 13


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    from django.db import OperationalError

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OperationalError:  # SQLite's shared in-memory test database: a table locked by the worker
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def jobs_settings(settings: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fast backoff, a short reconciliation grace, an isolated cache prefix per test."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from markets.venues import clear_served_cache

    settings.JOBS_RETRY_BACKOFF_BASE = 0.2
    settings.JOBS_RETRY_BACKOFF_CAP = 1.0
    settings.RECONCILE_GRACE_SECONDS = 0
    settings.RECONCILE_MAX_MISSES = 3
    settings.MARKET_DATA_ENVIRONMENT = "emulator"
    if "emulator" in request.fixturenames:
        settings.EMULATOR_URL = request.getfixturevalue("emulator").url
    prefix = f"test-jobs-{uuid.uuid4().hex[:12]}"
    configured = copy.deepcopy(settings.CACHES)
    configured["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = configured
    clear_served_cache()
    yield
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()


@pytest.fixture
def make_venue_account(make_account: Callable[..., Any], emulator: Any) -> Callable[..., Any]:
    """An account on ``exchange`` at the emulator with a key of its own (so its balances and
    orders are this test's alone)."""

    def make(exchange: str = "binance", **overrides: Any) -> Any:
        if exchange not in emulator.adapters:
            pytest.skip(f"the emulator does not serve {exchange} yet")
        key, secret, passphrase = f"jobs-{uuid.uuid4().hex[:16]}", uuid.uuid4().hex, "Jobs-pass-1"
        emulator.add_account(key, secret, passphrase)
        fields = {
            "exchange": exchange,
            "label": f"{exchange} {key[-6:]}",
            "api_key": key,
            "api_secret": secret,
            "passphrase": passphrase if exchange == "okx" else "",
        }
        fields.update(overrides)
        return make_account(**fields)

    return make


@pytest.fixture
def venue_account(make_venue_account: Callable[..., Any]) -> Any:
    return make_venue_account("binance")


@pytest.fixture
def faults(emulator: Any) -> Iterator[Any]:
    """The emulator's fault registry (``server.faults``), cleared after the test."""
    control = getattr(emulator, "faults", None)
    if control is None:
        pytest.skip("needs emulator fault injection (issue 4)")
    yield control
    control.clear()


def ccxt_client(emulator: Any, account: Any) -> Any:
    """A plain CCXT client with the account's keys: someone trading on the venue directly,
    outside this system."""
    import ccxt

    from connectors.emulator_urls import repoint_url_tree

    client = getattr(ccxt, account.exchange)(
        {"apiKey": account.api_key, "secret": account.api_secret, "password": account.passphrase or None}
    )
    client.options["fetchCurrencies"] = False
    client.options["fetchMargins"] = False
    client.urls["api"] = repoint_url_tree(client.urls["api"], emulator.url)
    return client


def far_below(emulator: Any) -> Decimal:
    """A whole-number price at half the Binance BTC/USDT market: a buy there rests, never fills."""
    return Decimal(int(emulator.market("binance", "BTC/USDT").price() / 2))


def place(account: Any, owner: Any, price: Decimal, amount: str = "0.001") -> Any:
    """A BTC/USDT limit buy through the trading service (journaled, then sent once)."""
    from trading.services import order_place

    return order_place(
        account=account,
        actor=owner,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal(amount),
        price=price,
    )


# --------------------------------------------------------------------------- in-process worker


@contextmanager
def _app_on_broker(broker_url: str, transport_options: dict[str, Any]) -> Iterator[Any]:
    """Point the project's Celery app at another broker for the block (and back)."""
    from connector_site.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = transport_options
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._pool = None
        app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def _module_worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """One real Celery worker per test module (starting and stopping one takes seconds)."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connection, connections

    # pytest-django's SQLite test database is in memory with a shared cache, whose table locks
    # do not wait (no busy timeout): one worker thread there. A file database in WAL mode
    # (make run) waits instead, and Postgres has row locks.
    concurrency = 1 if connection.vendor == "sqlite" else 2
    with (
        _app_on_broker(f"memory://jobs-{uuid.uuid4().hex[:8]}", {}) as app,
        start_worker(
            app, pool="threads", concurrency=concurrency, perform_ping_check=False, shutdown_timeout=10
        ),
    ):
        yield app
    connections.close_all()


@pytest.fixture
def inprocess_worker(_module_worker: Any) -> Iterator[Any]:
    """A real Celery worker in this process (threads pool, in-memory broker), shared by the
    tests of a module; use it in ``django_db(transaction=True)`` tests."""
    yield _module_worker
    from django.db import connections

    connections.close_all()


# --------------------------------------------------------------------------- subprocess worker


def _redis_url(db: int) -> str:
    from django.conf import settings

    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") >= 3 else settings.REDIS_URL
    return f"{base}/{db}"


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class SubprocessWorker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, queue: str) -> None:
        self.process = process
        self.log = log
        self.queue = queue

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process, pool children, beat): no cleanup, no ack."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def subprocess_worker(
    emulator: Any, settings: Any, tmp_path: Path
) -> Iterator[Callable[..., SubprocessWorker]]:
    """Start ``celery worker`` processes on pytest's Postgres test database and the real
    Redis broker: ``start(beat=False, env={...})``. All share one queue of this test;
    ``publish(task, *args)`` sends to it. Every worker is stopped after the test."""
    started: list[SubprocessWorker] = []
    queue = f"jobs-test-{uuid.uuid4().hex[:10]}"
    broker_url = _redis_url(JOBS_REDIS_DB)

    def start(*, beat: bool = False, env: dict[str, str] | None = None, name: str = "w") -> SubprocessWorker:
        log = tmp_path / f"worker-{name}-{len(started)}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.jobs.worker_settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": broker_url,
            "EMULATOR_URL": emulator.url,
            "VAR_DIR": str(tmp_path / "var"),
            "JOBS_TEST_QUEUE": queue,
            "JOBS_TEST_CACHE_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        command = [
            str(CELERY),
            "-A",
            "connector_site",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "-Q",
            queue,
        ]
        if beat:
            command += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
        handle = log.open("wb")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = SubprocessWorker(process, log, queue)
        started.append(worker)
        wait_until(lambda: "ready." in worker.output() or process.poll() is not None, 30, what="worker ready")
        assert process.poll() is None, worker.output()[-3000:]
        return worker

    with _app_on_broker(broker_url, {}) as app:
        start.queue = queue  # type: ignore[attr-defined]
        start.app = app  # type: ignore[attr-defined]
        try:
            yield start
        finally:
            for worker in started:
                worker.stop()
            from django.db import connections

            connections.close_all()
