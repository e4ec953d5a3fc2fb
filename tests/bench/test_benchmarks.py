"""Each benchmark runs end to end in a tiny configuration and prints its report, so the
benchmarks cannot rot. No timing is asserted: only that every request succeeded, the report
lines are there, and what the run placed was cleaned up.

The benchmarks start their own processes (emulator, gunicorn) on free loopback ports, so
they run as ``python -m bench NAME`` subprocesses, as ``make bench`` runs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "rest": ["--seconds", "1", "--rounds", "1", "--concurrency", "4", "--warmup", "0.3"],
    "orders": ["--orders", "3", "--concurrency", "2", "--bursts", "1"],
}


def embedded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def services_env() -> dict[str, str]:
    """PostgreSQL and Redis of this test run; the benchmark gets a database of its own
    (``<name>_bench``), never the test database, and a new one each time: a database left by
    another checkout holds accounts encrypted with that checkout's keys."""
    from bench.web import drop_database

    parts = urlsplit(os.environ["DATABASE_URL"])
    database = parts.path.lstrip("/") or "postgres"
    bench_url = urlunsplit(parts._replace(path=f"/{database}_bench"))
    drop_database(bench_url)
    return {**os.environ, "DATABASE_URL": bench_url}


def run_bench(name: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, *TINY[name]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    return done.stdout


def table_errors(report: str, header: str, *, rows: int, name_width: int, column: int) -> list[int]:
    """One numeric column of the ``rows`` rows under a table's header line; each row starts with
    ``name_width`` characters of names (which may hold spaces and digits)."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    return [int(line[name_width:].split()[column]) for line in lines[start + 1 : start + 1 + rows]]


def check_rest(report: str) -> None:
    assert report.startswith("rest bench (R1): gunicorn")
    errors = table_errors(report, "endpoint", rows=4, name_width=32, column=3)
    assert errors == [0, 0, 0, 0], report  # ours, DRF hello, bare, auth stack: all 200
    assert "baselines answer the same bytes: yes" in report, report
    assert re.search(r"^cache hit ratio \d+\.\d+%", report, re.M), report
    assert re.search(r"^emulator requests during the load: \d+ ", report, re.M), report
    assert re.search(r"^ratios: ours/DRF-hello \d+\.\d\dx req/s .* ours/bare \d+\.\d\dx req/s", report, re.M)


def check_orders(report: str) -> None:
    assert report.startswith("orders bench (O1):")
    errors = table_errors(report, "phase", rows=4, name_width=22 + 1 + 26, column=4)
    assert errors == [0, 0, 0, 0], report  # every order answered open, on both paths
    assert re.search(r"^added by ours, sequential: p50 [+-]\d+\.\d\d ms", report, re.M), report
    assert re.search(r"ratio ours/direct p50 \d+\.\d\dx, p99 \d+\.\d\dx", report), report
    assert "venue calls per order: ours 1.00, direct 1.00" in report, report
    placed = re.search(
        r"^canceled: ours (\d+)/(\d+), direct (\d+)/(\d+); open orders left on the emulator: 0$", report, re.M
    )
    assert placed, report
    ours_canceled, ours_placed, direct_canceled, direct_placed = map(int, placed.groups())
    assert (ours_canceled, direct_canceled) == (ours_placed, direct_placed)
    assert ours_placed == 6 + 3 + 2 and direct_placed == 1 + 3 + 2  # warm-up + sequential + burst


CHECKS = {"rest": check_rest, "orders": check_orders}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["rest", "orders"])
def test_benchmark_runs_on_the_embedded_default(name: str) -> None:
    report = run_bench(name, embedded_env())
    assert "SQLite (embedded default) + database cache" in report.splitlines()[0]
    CHECKS[name](report)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["rest", "orders"])
def test_benchmark_runs_on_postgres_and_redis(name: str) -> None:
    env = services_env()
    report = run_bench(name, env)
    assert urlsplit(env["DATABASE_URL"]).path in report.splitlines()[0]
    assert "+ Redis" in report.splitlines()[0]
    CHECKS[name](report)


def test_python_m_bench_rejects_an_unknown_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "unknown benchmark 'nope'; choose from streams, rest, orders" in done.stderr
