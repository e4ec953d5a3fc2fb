"""What the REST and order benchmarks share: our web process served the way production serves
HTTP, a prepared database, and a small HTTP/1.1 load client.

* :func:`running_site` starts the exchange emulator (``python -m emulator``) and gunicorn
  with ``connector_site.wsgi:application`` and sync workers, as the Procfile's ``web`` line
  and the Dockerfile do, each on a free loopback port (never 8000/8700). The web process
  uses ``bench.settings`` (the base settings plus the bench-only URLconf ``bench.urls`` and
  limits raised so a load test is not answered 429) and PostgreSQL + Redis when
  ``DATABASE_URL`` / ``REDIS_URL`` are set, else the embedded default (SQLite and the
  database cache, in a temporary ``VAR_DIR``). gunicorn is pinned to core 1, the emulator
  and this process (the load generator) to core 0, when ``taskset`` and two cores exist.
* :func:`load` drives one request at fixed concurrency for a fixed time and records each
  request's latency, status and (optionally) body. It speaks raw HTTP/1.1 over asyncio
  streams (``Connection: close``, as gunicorn's sync workers close every connection anyway):
  an HTTP client library would spend more CPU per request than the server under test.

``python -m bench.web prepare SPEC_JSON`` is the set-up step run with the web process's
environment (migrate, cache table, demo operator and accounts, a token); it prints JSON on
stdout, which only the parent reads (the token never reaches a log).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.streams import PYTHON, ROOT, TASKSET, cpu_seconds, free_port, pinned, start, stop, wait_http

HOST = "127.0.0.1"
SETTINGS = "bench.settings"
WSGI_APP = "connector_site.wsgi:application"
# As the Procfile (WEB_CONCURRENCY defaults to 2) and the Dockerfile run it.
DEFAULT_WORKERS = 2


# ------------------------------------------------------------------ processes


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants (gunicorn's master and its workers)."""
    total = cpu_seconds(pid)
    for child in _children(pid):
        total += tree_cpu_seconds(child)
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def backends(env: dict[str, str]) -> str:
    """Which database and cache the web process uses, without any credential."""
    database = env.get("DATABASE_URL")
    if database:
        parts = urlsplit(database)
        db = f"{parts.scheme} {parts.hostname}:{parts.port or ''}{parts.path}"
    else:
        db = "SQLite (embedded default)"
    redis = env.get("REDIS_URL")
    cache = f"Redis {urlsplit(redis).hostname}{urlsplit(redis).path}" if redis else "database cache"
    return f"{db} + {cache}"


def _postgres(url: str) -> tuple[str, dict[str, Any]] | None:
    """The database name and connection arguments of a PostgreSQL ``url`` (else None)."""
    import environ

    config = environ.Env.db_url_config(url)
    if "postgresql" not in config["ENGINE"]:
        return None
    return config["NAME"], {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist yet (like pytest-django
    does for the test database), so a bench run may name a database of its own."""
    import psycopg
    from psycopg import sql

    target = _postgres(url)
    if target is None:
        return
    name, connect = target
    try:
        psycopg.connect(dbname=name, connect_timeout=10, **connect).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **connect) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database of ``url`` if it exists (a run that must start from an
    empty database: its accounts are encrypted with keys another checkout may not have)."""
    import psycopg
    from psycopg import sql

    target = _postgres(url)
    if target is None:
        return
    name, connect = target
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **connect) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class Site:
    work: Path
    env: dict[str, str]
    emulator_url: str
    port: int
    web: subprocess.Popen[bytes]
    prepared: dict[str, Any]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def emulator_requests(self) -> Counter[str]:
        """The emulator's request counters: ``"venue METHOD host/path" -> n``."""
        with urllib.request.urlopen(f"{self.emulator_url}/_emulator/stats", timeout=10) as response:
            stats = json.load(response)
        return Counter(
            {
                f"{venue} {endpoint}": n
                for venue, endpoints in stats.get("requests", {}).items()
                for endpoint, n in endpoints.items()
                if not endpoint.split(" ", 1)[-1].startswith("_emulator")
            }
        )

    def spawn(self, command: list[str], log: str, *, core: int = 0) -> subprocess.Popen[bytes]:
        """Another process with the web process's environment (stopped on exit)."""
        process = start(pinned(core, command), self.env, self.work / log)
        self.processes.append(process)
        return process


@contextmanager
def running_site(
    *, prepare: dict[str, Any], workers: int = DEFAULT_WORKERS, extra_env: dict[str, str] | None = None
) -> Iterator[Site]:
    """Emulator + prepared database + gunicorn; everything is stopped and removed on exit."""
    if TASKSET:
        os.sched_setaffinity(0, {0})  # this process is the load generator: core 0
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    emulator_port, web_port = free_port(), free_port()
    emulator_url = f"http://{HOST}:{emulator_port}"
    # A database named by DATABASE_URL outlives the run, and so must the generated keys that
    # encrypt its accounts' secrets; the embedded default's database is temporary, like them.
    state = ROOT / "var" / "bench" if os.environ.get("DATABASE_URL") else work
    env = {
        **os.environ,
        "VAR_DIR": str(state),
        "EMULATOR_URL": emulator_url,
        "MARKET_DATA_ENVIRONMENT": "emulator",
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "LOG_LEVEL": "WARNING",
        # gunicorn serves HTTP only; the stream manager is not part of these benchmarks.
        "STREAMS_IN_PROCESS": "false",
        "BENCH_BODY_FILE": str(work / "body.json"),
        **(extra_env or {}),
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        emulator = start(
            pinned(0, [PYTHON, "-m", "emulator", "--port", str(emulator_port)]), env, work / "emulator.log"
        )
        processes.append(emulator)
        if env.get("DATABASE_URL"):
            ensure_database(env["DATABASE_URL"])
        done = subprocess.run(
            [PYTHON, "-m", "bench.web", "prepare", json.dumps(prepare)],
            cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"bench set-up failed:\n{done.stderr[-3000:]}")
        prepared = json.loads(done.stdout.strip().splitlines()[-1])
        web = start(
            pinned(1, [PYTHON, "-m", "gunicorn", WSGI_APP, "--bind", f"{HOST}:{web_port}",
                       "--workers", str(workers), "--access-logfile", "-"]),
            env, work / "web.log",
        )  # fmt: skip
        processes.append(web)
        wait_http(f"{emulator_url}/_emulator/health")
        wait_http(f"http://{HOST}:{web_port}/healthz")
        site = Site(work, env, emulator_url, web_port, web, prepared, processes)
        yield site
    finally:
        for process in reversed(processes):
            stop(process)
        if os.environ.get("BENCH_KEEP"):
            print(f"bench files kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------ set-up (runs under Django)


def prepare_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Migrate, seed the demo operator and accounts, issue a token; runs in a subprocess with
    the web process's environment."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    call_command("createcachetable", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)

    from cryptography.fernet import InvalidToken
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from accounts.management.commands.seed_demo import DEMO_USERNAME
    from accounts.models import ExchangeAccount
    from accounts.services import token_issue

    operator = get_user_model().objects.get(username=DEMO_USERNAME)
    try:
        accounts = [
            ExchangeAccount.objects.get(owner=operator, label=f"{venue} demo")
            for venue in spec.get("accounts", [])
        ]
    except InvalidToken:
        raise SystemExit(
            "the demo accounts in this database were encrypted with other keys than "
            f"{settings.VAR_DIR}/field-encryption.key: set FIELD_ENCRYPTION_KEYS to those keys "
            "or give the benchmark a database of its own"
        ) from None
    _, key = token_issue(
        user=operator, name=f"bench {time.strftime('%H:%M:%S')}", scopes=spec["scopes"], accounts=accounts
    )
    return {"token": key, "accounts": {account.exchange: account.pk for account in accounts}}


# ------------------------------------------------------------------ HTTP load client


def request_bytes(
    method: str, path: str, port: int, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def http(port: int, raw: bytes) -> tuple[int, bytes]:
    """One request on a new connection; (status, body). Reads to EOF (Connection: close)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        data = await reader.read()
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError:
        status = 0
    return status, body


@dataclass
class LoadResult:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_s)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000

    def merge(self, other: LoadResult) -> None:
        self.latencies_s += other.latencies_s
        self.statuses.update(other.statuses)
        self.seconds += other.seconds
        self.server_cpu_s += other.server_cpu_s
        self.client_cpu_s += other.client_cpu_s


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    data = sorted(samples)
    return data[min(len(data) - 1, int(q * len(data)))]


async def load(
    name: str,
    port: int,
    raw: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int,
    inspect: Callable[[int, bytes], None] | None = None,
) -> LoadResult:
    """``concurrency`` connections in a closed loop for ``warmup + seconds``; only requests that
    complete inside the measured window count (latency, status, ``inspect(status, body)``)."""
    result = LoadResult(name, seconds=seconds)
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    end = measure_from + seconds

    async def connection() -> None:
        while loop.time() < end:
            t0 = time.perf_counter()
            try:
                status, body = await http(port, raw)
            except OSError:
                status, body = 0, b""
            elapsed = time.perf_counter() - t0
            if measure_from <= loop.time() <= end:
                result.latencies_s.append(elapsed)
                result.statuses[status] += 1
                if inspect is not None:
                    inspect(status, body)

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, measure_from - loop.time()))
        server0, client0 = tree_cpu_seconds(server_pid), time.process_time()
        await asyncio.sleep(max(0.0, end - loop.time()))
        result.server_cpu_s = tree_cpu_seconds(server_pid) - server0
        result.client_cpu_s = time.process_time() - client0

    await asyncio.gather(cpu_window(), *(connection() for _ in range(concurrency)))
    return result


def run(coro: Any) -> Any:
    """Run a coroutine on uvloop when it is installed (ccxt requires it), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "prepare":
        print(json.dumps(prepare_main(json.loads(args[1]))))
        return
    raise SystemExit("usage: python -m bench.web prepare SPEC_JSON (run by the benchmarks)")


if __name__ == "__main__":
    main()
