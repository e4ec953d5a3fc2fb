"""Order benchmark (catalogue A3 O1): what our order path adds over placing the same order
directly with CCXT, both against the same emulator, in the same run.

``python -m bench.orders [--orders 200] [--concurrency 20] [--bursts 5] [--workers 2]``

On loopback (see ``bench/web.py``): gunicorn with sync workers, as the Procfile serves HTTP,
pinned to core 1; the emulator and this process on core 0. The binance demo account (as
``seed_demo`` makes it, on the emulator) gets a ``trade`` token. Every order is a limit buy
of BTC/USDT at half the market price, so it rests on the book:

* **ours**: ``POST /api/v1/accounts/{id}/orders/`` (token, scope, grant, rate limit, guards,
  key decryption, the journal committed before sending, the venue call, the answer recorded);
* **direct**: ``await exchange.create_order(...)`` on a ccxt.pro instance configured exactly
  as our connector configures its own (``connectors`` factory, emulator environment), with
  the same parameters (our client order id).

``--orders`` sequential orders per path, interleaved (ours, direct, ours, ...) so background
load hits both alike, each path's orders started at least CCXT's ``rateLimit`` apart so the
client-side limiter CCXT applies to every instance (ours and the direct one) never waits:
the difference is our code's cost. Then ``--bursts`` bursts of ``--concurrency`` orders at
once per path; there the limiter's queueing is part of both answers (the direct path is one
instance, ours one per gunicorn worker). We print p50/p99 per phase and path, the added
milliseconds and the ratio ours / direct, venue calls per order, and cancel every order placed
(ours through ``DELETE .../orders/{id}/``, the direct ones with ``cancel_order``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from bench.web import (
    DEFAULT_WORKERS,
    TASKSET,
    Site,
    backends,
    http,
    percentile,
    ratio,
    request_bytes,
    run,
    running_site,
    tree_cpu_seconds,
)

EXCHANGE = "binance"
SYMBOL = "BTC/USDT"
AMOUNT = Decimal("0.001")
# The order rate limit counts every order but never refuses one during the run.
UNLIMITED = {"ORDER_RATE_LIMIT": "1000000000/1", "API_THROTTLE_RATE": "1000000000/s"}


@dataclass
class Samples:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_s: float = 0.0  # the direct path's own CPU (this process), summed

    def pct_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000


@dataclass
class Report:
    phases: dict[str, tuple[Samples, Samples]]
    backends: str
    workers: int
    spacing_ms: float
    venue_calls_per_order: tuple[float, float]
    server_cpu_ms_per_order: float
    direct_cpu_ms_per_order: float
    canceled: tuple[int, int]
    placed: tuple[int, int]
    open_left: int


class Paths:
    """The two ways to place one order, each timed the same way."""

    def __init__(self, site: Site, exchange: Any, connector: Any, price: str, idempotency: bool) -> None:
        self.site = site
        self.exchange = exchange
        self.connector = connector
        self.price = price
        self.idempotency = idempotency
        account_id = site.prepared["accounts"][EXCHANGE]
        self.orders_path = f"/api/v1/accounts/{account_id}/orders/"
        self.auth = {"Authorization": f"Bearer {site.prepared['token']}"}
        self.body = orjson.dumps(
            {"symbol": SYMBOL, "side": "buy", "type": "limit", "amount": str(AMOUNT), "price": price}
        )
        self.ours_ids: list[int] = []
        self.direct_ids: list[str] = []

    async def ours(self, samples: Samples | None) -> None:
        headers = dict(self.auth)
        if self.idempotency:
            headers["Idempotency-Key"] = f"bench-{uuid.uuid4().hex}"
        raw = request_bytes("POST", self.orders_path, self.site.port, headers=headers, body=self.body)
        t0 = time.perf_counter()
        try:
            status, body = await http(self.site.port, raw)
        except OSError:
            status, body = 0, b""
        elapsed = time.perf_counter() - t0
        answer = orjson.loads(body) if body.startswith(b"{") else {}
        if isinstance(answer.get("id"), int):
            self.ours_ids.append(answer["id"])
        ok = status == 201 and answer.get("status") == "open"
        self._record(samples, elapsed, ok)

    async def direct(self, samples: Samples | None) -> None:
        market = self.exchange.market(SYMBOL)
        params = self.connector.order_params(market, self.connector.new_client_order_id(), reduce_only=False)
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            order = await self.exchange.create_order(
                SYMBOL, "limit", "buy", float(AMOUNT), float(self.price), params
            )
        except Exception:
            order = {}
        elapsed = time.perf_counter() - t0
        if samples is not None:
            samples.cpu_s += time.process_time() - cpu0
        if order.get("id"):
            self.direct_ids.append(str(order["id"]))
        self._record(samples, elapsed, order.get("status") == "open")

    @staticmethod
    def _record(samples: Samples | None, elapsed: float, ok: bool) -> None:
        if samples is None:
            return
        samples.latencies_s.append(elapsed)
        samples.errors += not ok

    async def cancel_all(self) -> tuple[int, int, int]:
        """Cancel what this run placed; (ours canceled, direct canceled, open orders left)."""
        gate = asyncio.Semaphore(4)

        async def cancel_ours(order_id: int) -> bool:
            async with gate:
                raw = request_bytes(
                    "DELETE", f"{self.orders_path}{order_id}/", self.site.port, headers=self.auth
                )
                status, _ = await http(self.site.port, raw)
                return status == 200

        async def cancel_direct(order_id: str) -> bool:
            try:
                await self.exchange.cancel_order(order_id, SYMBOL)
            except Exception:
                return False
            return True

        ours = await asyncio.gather(*(cancel_ours(i) for i in self.ours_ids))
        direct = await asyncio.gather(*(cancel_direct(i) for i in self.direct_ids))
        left = await self.exchange.fetch_open_orders(SYMBOL)
        return sum(ours), sum(direct), len(left)


async def paced(calls: list[Any], spacing: float) -> None:
    """Run each path's calls in turn, each path's starts at least ``spacing`` s apart."""
    last: dict[int, float] = {}
    for index, call in enumerate(calls):
        path = index % 2
        wait = last.get(path, 0.0) + spacing - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        last[path] = time.perf_counter()
        await call()


async def measure(
    site: Site, *, orders: int, concurrency: int, bursts: int, workers: int, idempotency: bool
) -> Report:
    from connectors import create_connector
    from connectors.credentials import Credentials
    from emulator.accounts import DEMO_CREDENTIALS

    key, secret, _ = DEMO_CREDENTIALS[EXCHANGE]
    connector = create_connector(
        EXCHANGE,
        Credentials(api_key=key, secret=secret),
        environment="emulator",
        emulator_url=site.emulator_url,
    )
    exchange = connector.build_exchange(pro=True)  # the connector's own CCXT configuration
    try:
        await exchange.load_markets()
        last = Decimal(str((await exchange.fetch_ticker(SYMBOL))["last"]))
        price = exchange.price_to_precision(SYMBOL, float(last / 2))
        paths = Paths(site, exchange, connector, price, idempotency)
        spacing = exchange.rateLimit / 1000  # CCXT's per-request spacing at cost 1 (the most an order costs)

        # Warm-up (not measured): both gunicorn workers load markets and build their connector.
        for _ in range(3):
            await asyncio.gather(paths.ours(None), paths.ours(None))
        await paths.direct(None)
        await asyncio.sleep(spacing)

        seq = (Samples("ours POST .../orders/"), Samples("direct ccxt create_order"))
        before = site.emulator_requests()
        cpu0 = tree_cpu_seconds(site.web.pid)
        await paced(
            [c for _ in range(orders) for c in (lambda: paths.ours(seq[0]), lambda: paths.direct(seq[1]))],
            spacing,
        )
        server_cpu = tree_cpu_seconds(site.web.pid) - cpu0
        after = site.emulator_requests()
        calls = sum(after.values()) - sum(before.values())

        burst = (Samples(seq[0].name), Samples(seq[1].name))
        for _ in range(bursts):
            await asyncio.gather(*(paths.ours(burst[0]) for _ in range(concurrency)))
            await asyncio.sleep(concurrency * spacing)  # let every limiter drain before the next burst
            await asyncio.gather(*(paths.direct(burst[1]) for _ in range(concurrency)))
            await asyncio.sleep(concurrency * spacing)

        ours_canceled, direct_canceled, left = await paths.cancel_all()
        # With its markets loaded, direct CCXT makes exactly one request per create_order, so
        # the rest of the emulator's delta over the sequential phase is ours.
        direct_calls = orders
        return Report(
            phases={"sequential": seq, f"concurrent ({concurrency} x {bursts})": burst},
            backends=backends(site.env),
            workers=workers,
            spacing_ms=spacing * 1000,
            venue_calls_per_order=(ratio(calls - direct_calls, orders), ratio(direct_calls, orders)),
            server_cpu_ms_per_order=ratio(server_cpu * 1000, orders),
            direct_cpu_ms_per_order=ratio(seq[1].cpu_s * 1000, orders),
            canceled=(ours_canceled, direct_canceled),
            placed=(len(paths.ours_ids), len(paths.direct_ids)),
            open_left=left,
        )
    finally:
        await exchange.close()


def bench(*, orders: int, concurrency: int, bursts: int, workers: int, idempotency: bool) -> Report:
    spec = {"scopes": ["trade", "account:read"], "accounts": [EXCHANGE]}
    with running_site(prepare=spec, workers=workers, extra_env=UNLIMITED) as site:
        report: Report = run(
            measure(
                site, orders=orders, concurrency=concurrency, bursts=bursts, workers=workers,
                idempotency=idempotency,
            )
        )  # fmt: skip
        return report


def report(r: Report, idempotency: bool) -> str:
    pinning = "server on core 1, emulator and clients on core 0" if TASKSET else "no pinning"
    lines = [
        f"orders bench (O1): {EXCHANGE} {SYMBOL} limit buys at half the market (they rest); gunicorn, "
        f"{r.workers} sync workers ({pinning}); {r.backends}"
        + ("; with Idempotency-Key" if idempotency else ""),
        f"{'phase':22} {'path':26} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'errors':>7}",
    ]
    for phase, pair in r.phases.items():
        for s in pair:
            mean = sum(s.latencies_s) / len(s.latencies_s) * 1000 if s.latencies_s else float("nan")
            lines.append(
                f"{phase:22} {s.name:26} {len(s.latencies_s):5d} {s.pct_ms(0.5):8.2f} "
                f"{s.pct_ms(0.99):8.2f} {mean:8.2f} {s.errors:7d}"
            )
    for phase, (ours, direct) in r.phases.items():
        lines.append(
            f"added by ours, {phase}: p50 {ours.pct_ms(0.5) - direct.pct_ms(0.5):+.2f} ms, "
            f"p99 {ours.pct_ms(0.99) - direct.pct_ms(0.99):+.2f} ms; ratio ours/direct "
            f"p50 {ratio(ours.pct_ms(0.5), direct.pct_ms(0.5)):.2f}x, "
            f"p99 {ratio(ours.pct_ms(0.99), direct.pct_ms(0.99)):.2f}x"
            + (" (goal: added p50 <= 3 ms, p99 <= 10 ms)" if phase == "sequential" else "")
        )
    lines.append(
        f"sequential orders started >= {r.spacing_ms:.0f} ms apart per path (CCXT rateLimit: its "
        f"limiter never waits); concurrent bursts include its queueing on both paths"
    )
    lines.append(
        f"venue calls per order: ours {r.venue_calls_per_order[0]:.2f}, "
        f"direct {r.venue_calls_per_order[1]:.2f}; "
        f"CPU per sequential order: ours {r.server_cpu_ms_per_order:.2f} ms (gunicorn), direct "
        f"{r.direct_cpu_ms_per_order:.2f} ms (the client's own), ratio "
        f"{ratio(r.server_cpu_ms_per_order, r.direct_cpu_ms_per_order):.1f}x"
    )
    lines.append(
        f"canceled: ours {r.canceled[0]}/{r.placed[0]}, direct {r.canceled[1]}/{r.placed[1]}; "
        f"open orders left on the emulator: {r.open_left}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help="sequential orders per path")
    parser.add_argument("--concurrency", type=int, default=20, help="orders per burst")
    parser.add_argument("--bursts", type=int, default=5, help="bursts per path")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers")
    parser.add_argument(
        "--idempotency-key", action="store_true", help="send a fresh Idempotency-Key with each of our orders"
    )
    args = parser.parse_args(argv)
    result = bench(
        orders=args.orders, concurrency=args.concurrency, bursts=args.bursts, workers=args.workers,
        idempotency=args.idempotency_key,
    )  # fmt: skip
    print(report(result, args.idempotency_key), flush=True)


if __name__ == "__main__":
    main()
