"""REST benchmark (catalogue A3 R1): our cached ticker against a DRF hello-world and a bare
Django view answering the same bytes, on the same server, in the same run.

``python -m bench.rest [--seconds 10] [--rounds 2] [--concurrency 64] [--workers 2]``

On loopback (see ``bench/web.py``): gunicorn with sync workers, as the Procfile serves HTTP,
pinned to core 1; the emulator, a cache refresher and this load generator on core 0. After
issuing a ``market:read`` token and warming the cache with one request, a refresher process
rewrites the ticker's cache entry every 0.5 s through ``markets.cache`` (as the stream
manager does, without any venue call), so every request finds it fresh (max age 2 s). Then
each endpoint takes ``--concurrency`` connections in a closed loop, round-robin over
``--rounds`` rounds (so load drift on a shared machine hits all of them alike):

* **ours**: ``GET /api/v1/markets/binance/ticker/?symbol=BTC/USDT`` with the Bearer token;
* **DRF hello-world** and **bare Django view**: the bench-only views of ``bench/urls.py``,
  answering the bytes of one ticker response captured in this run;
* **auth stack** (diagnostic): our market-data base view (token, scope, throttle) answering
  the same bytes without reading the cache.

We print requests/s, p50/p99 latency, server CPU per request, the cache hit ratio (1 minus
the venue fetches seen in the answers, per ticker request) and the emulator's request
counter delta over the whole load, which must be 0 for a warm cache; then the ratios
ours / DRF hello-world and ours / bare Django.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.web import (
    DEFAULT_WORKERS,
    PYTHON,
    TASKSET,
    LoadResult,
    backends,
    load,
    ratio,
    request_bytes,
    run,
    running_site,
)

EXCHANGE = "binance"
SYMBOL = "BTC/USDT"
TICKER_PATH = f"/api/v1/markets/{EXCHANGE}/ticker/?symbol={SYMBOL}"
REFRESH_SECONDS = 0.5
# Requests per token counted by the throttle but never refused during the load.
UNLIMITED = {"API_THROTTLE_RATE": "1000000000/s", "ORDER_RATE_LIMIT": "1000000000/1"}


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    authenticated: bool


ENDPOINTS = (
    Endpoint("ours", "ours: cached ticker", TICKER_PATH, True),
    Endpoint("drf", "DRF hello-world, same bytes", "/bench/hello/drf/", False),
    Endpoint("bare", "bare Django view, same bytes", "/bench/hello/bare/", False),
    Endpoint("auth", "auth stack only (diagnostic)", "/bench/hello/auth/", True),
)


@dataclass
class Report:
    results: dict[str, LoadResult]
    backends: str
    workers: int
    concurrency: int
    rounds: int
    emulator_delta: dict[str, int]
    venue_fetches: int
    same_bytes: bool
    body_size: int
    notes: list[str] = field(default_factory=list)

    @property
    def hit_ratio(self) -> float:
        ticker = self.results["ours"]
        ok = ticker.statuses.get(200, 0)
        return 1 - ratio(self.venue_fetches, ok) if ok else float("nan")


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def wait_for_refresher(url: str, token: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = get(url, token)
        if orjson.loads(body).get("source") == "stream":
            return
        time.sleep(0.2)
    raise RuntimeError("the cache refresher never wrote the ticker (see refresher.log)")


def bench(*, seconds: float, rounds: int, concurrency: int, workers: int, warmup: float) -> Report:
    spec = {"scopes": ["market:read"]}
    with running_site(prepare=spec, workers=workers, extra_env=UNLIMITED) as site:
        token = site.prepared["token"]
        status, body = get(site.url + TICKER_PATH, token)  # warms markets and the cache entry
        if status != 200:
            raise RuntimeError(f"warm-up ticker answered {status}")
        # The baselines answer exactly these bytes (one captured answer of ours).
        (site.work / "body.json").write_bytes(body)
        site.spawn([PYTHON, "-m", "bench.rest", "--keep-fresh"], "refresher.log")
        wait_for_refresher(site.url + TICKER_PATH, token)
        same_bytes = all(get(site.url + e.path, token)[1] == body for e in ENDPOINTS[1:])

        fetches: set[int] = set()

        def inspect_ticker(status: int, payload: bytes) -> None:
            if status == 200:
                answer = orjson.loads(payload)
                if answer.get("source") == "request":  # fetched from the venue for a request
                    fetches.add(answer.get("sequence"))

        auth = {"Authorization": f"Bearer {token}"}
        results = {e.key: LoadResult(e.label) for e in ENDPOINTS}
        before = site.emulator_requests()
        for index in range(rounds):
            for endpoint in ENDPOINTS:
                raw = request_bytes(
                    "GET", endpoint.path, site.port, headers=auth if endpoint.authenticated else None
                )
                results[endpoint.key].merge(
                    run(
                        load(
                            endpoint.label, site.port, raw,
                            concurrency=concurrency, seconds=seconds / rounds,
                            warmup=warmup if index == 0 else warmup / 2, server_pid=site.web.pid,
                            inspect=inspect_ticker if endpoint.key == "ours" else None,
                        )
                    )
                )  # fmt: skip
        after = site.emulator_requests()
        delta = {name: after[name] - before[name] for name in after if after[name] != before[name]}
        return Report(
            results, backends(site.env), workers, concurrency, rounds, delta, len(fetches),
            same_bytes, len(body),
        )  # fmt: skip


def report(r: Report, seconds: float) -> str:
    ours, drf, bare = r.results["ours"], r.results["drf"], r.results["bare"]
    pinning = "server on core 1, load generator and emulator on core 0" if TASKSET else "no pinning"
    lines = [
        f"rest bench (R1): gunicorn, {r.workers} sync workers ({pinning}); {r.backends}; "
        f"{r.concurrency} connections, {seconds:g} s per endpoint in {r.rounds} rounds; "
        f"{r.body_size} B answer",
        f"{'endpoint':32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'server CPU':>10} {'µs/req':>8} {'loadgen CPU':>11}",
    ]
    for result in r.results.values():
        lines.append(
            f"{result.name:32} {result.rps:8.0f} {result.pct_ms(0.5):8.2f} {result.pct_ms(0.99):8.2f} "
            f"{result.errors:7d} {ratio(result.server_cpu_s, result.seconds):10.0%} "
            f"{ratio(result.server_cpu_s * 1e6, result.count):8.0f} "
            f"{ratio(result.client_cpu_s, result.seconds):11.0%}"
        )
    emulator_calls = sum(r.emulator_delta.values())
    lines.append(
        f"cache hit ratio {r.hit_ratio:.2%} ({r.venue_fetches} venue fetches in "
        f"{ours.statuses.get(200, 0)} ticker answers); baselines answer the same bytes: "
        f"{'yes' if r.same_bytes else 'NO'}"
    )
    lines.append(
        f"emulator requests during the load: {emulator_calls} (must be 0 with a warm cache)"
        + (f" {r.emulator_delta}" if emulator_calls else "")
    )
    auth = r.results["auth"]
    lines.append(
        f"ratios: ours/DRF-hello {ratio(ours.rps, drf.rps):.2f}x req/s (goal >= 0.8x), "
        f"ours/bare {ratio(ours.rps, bare.rps):.2f}x req/s (goal >= 0.3x); "
        f"p99 ours/DRF-hello {ratio(ours.pct_ms(0.99), drf.pct_ms(0.99)):.2f}x, "
        f"ours/bare {ratio(ours.pct_ms(0.99), bare.pct_ms(0.99)):.2f}x; "
        f"auth stack/DRF-hello {ratio(auth.rps, drf.rps):.2f}x req/s"
    )
    return "\n".join(lines)


def keep_fresh_main() -> None:
    """The cache refresher: rewrite the ticker's entry every REFRESH_SECONDS with the data it
    holds (source ``stream``, received now), as the stream manager keeps it fresh, never
    calling the venue. Runs until SIGTERM."""
    import django

    django.setup()
    from markets.cache import market_data_get, market_data_put
    from markets.venues import market_data_environment

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    names: dict[str, Any] = {
        "exchange": EXCHANGE,
        "environment": market_data_environment(),
        "channel": "ticker",
        "symbol": SYMBOL,
    }
    while True:
        entry = market_data_get(**names)
        if entry is not None:
            market_data_put(**names, data=entry.data, source="stream", venue_time_ms=entry.venue_time_ms)
        time.sleep(REFRESH_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rest", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the endpoints")
    parser.add_argument("--concurrency", type=int, default=64, help="connections")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before round 1")
    parser.add_argument("--keep-fresh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keep_fresh:
        keep_fresh_main()
        return
    rounds = max(1, args.rounds)
    result = bench(
        seconds=args.seconds, rounds=rounds, concurrency=args.concurrency, workers=args.workers,
        warmup=args.warmup,
    )  # fmt: skip
    print(report(result, args.seconds), flush=True)


if __name__ == "__main__":
    main()
