"""Streams benchmark: emulator emit -> WebSocket client, through our relay and a bare one.

``python -m bench.streams [--clients 50] [--seconds 8] [--symbols 6] [--servers daphne,uvicorn]``

On loopback, in one run:

* the exchange emulator (``python -m emulator``) emits Binance ``@trade`` and ``@ticker``
  frames stamped ``emitUs`` (µs since the epoch);
* **ours**: the embedded web process (daphne, stream manager on its loop, in-memory
  layer: what ``make run`` starts) relays them through ccxt.pro, conflation and Channels
  to N WebSocket clients subscribed to the same streams; then the same ASGI application
  under uvicorn (when installed: requirements-dev.txt), same pinning, as a peer server
  (the catalogue's "daphne must reach 0.8x uvicorn" check);
* **baseline**: a bare ``websockets`` relay (one upstream socket to the emulator,
  ``broadcast()`` of each raw frame, the relay of notes/perf-baselines.md §1) to N clients.

Each client records ``now - emit`` for every frame; we print p50/p99 latency, deliveries
per second and relay CPU per delivery for each, and the ratios to the baseline. CPU is
read from /proc at the start and the end of the measured window (after the warm-up,
which holds the handshakes and subscriptions), so it is the steady relaying only. The relay
under test is pinned to core 1 and everything else to core 0 when ``taskset`` exists.
Our relay conflates to 10 messages/s per stream, so it delivers fewer frames than the
bare relay, which forwards every trade; CPU per delivery makes the two comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parents[1]
ASGI_APP = "connector_site.asgi:application"
PYTHON = sys.executable
# BENCH_PROFILE=/path/out.prof runs the web process under cProfile (to find hot spots); one
# file per server: /path/out-daphne.prof, /path/out-uvicorn.prof.
PROFILE_OUT = os.environ.get("BENCH_PROFILE")
SYMBOLS = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "LTC/USDT", "DOGE/USDT", "ADA/USDT", "TRX/USDT"]
CPUS = os.cpu_count() or 1
TASKSET = shutil.which("taskset") if CPUS >= 2 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int, command: list[str]) -> list[str]:
    return [TASKSET, "-c", str(core), *command] if TASKSET else command


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class Result:
    name: str
    latencies_us: list[int] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    relay_cpu_s: float = 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_us:
            return float("nan")
        data = sorted(self.latencies_us)
        return data[min(len(data) - 1, int(q * len(data)))] / 1000.0

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.relay_cpu_s * 1e6 / self.frames if self.frames else float("nan")


async def run_clients(
    url: str,
    n: int,
    seconds: float,
    warmup: float,
    *,
    headers: dict[str, str],
    subscribe: list[dict[str, Any]],
    emit_of: Any,
    pid: int,
) -> tuple[list[int], int, float, float]:
    """N clients; returns (latency samples µs, frames counted, measured seconds, relay CPU
    seconds over the measured window)."""
    latencies: list[int] = []
    counted = [0]
    start_at = [0.0]
    stop = asyncio.Event()

    async def client() -> None:
        async with websockets.connect(
            url, additional_headers=headers, compression=None, max_queue=None
        ) as ws:
            for message in subscribe:
                await ws.send(json.dumps(message))
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time_ns() // 1000
                if not start_at[0] or time.monotonic() < start_at[0]:
                    continue
                counted[0] += 1
                emit = emit_of(json.loads(raw))
                if emit:
                    latencies.append(now - emit)

    tasks = [asyncio.create_task(client()) for _ in range(n)]
    start_at[0] = time.monotonic() + warmup
    await asyncio.sleep(warmup)
    cpu0 = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    cpu = cpu_seconds(pid) - cpu0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, counted[0], seconds, cpu


def our_emit(message: dict[str, Any]) -> int | None:
    return message.get("emit_us") if message.get("type") == "update" else None


def bare_relay_main(emulator_ws: str, port: int, streams: list[str]) -> None:
    """The baseline relay process: one upstream, broadcast every frame as is."""
    from websockets.asyncio.server import broadcast, serve

    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def upstream() -> None:
        async with websockets.connect(emulator_ws, compression=None, max_size=None) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
            async for message in ws:
                broadcast(clients, message)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
            await upstream()

    asyncio.run(main())


def uvicorn_main(port: int) -> None:
    """The uvicorn peer: the CLI's defaults (uvloop and the websockets implementation when
    installed, as they are here) and lifespan, which starts the embedded manager. SIGTERM
    ends it with SystemExit: uvicorn restores this handler and re-raises the signal once it
    has shut down, so a cProfile wrapper (BENCH_PROFILE) still writes its file."""
    import uvicorn

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(ASGI_APP, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(name: str, coro: Any) -> Result:
    latencies, frames, seconds, cpu = asyncio.run(coro)
    return Result(name, latencies, frames, seconds, cpu)


def server_command(server: str, port: int) -> list[str]:
    """The web process serving the same ASGI application under ``server``."""
    profile = []
    if PROFILE_OUT:
        out = Path(PROFILE_OUT)
        profile = [PYTHON, "-m", "cProfile", "-o", str(out.with_name(f"{out.stem}-{server}{out.suffix}"))]
    if server == "uvicorn":
        return [*(profile or [PYTHON]), "-m", "bench.streams", "--uvicorn", str(port)]
    daphne = shutil.which("daphne", path=str(Path(PYTHON).parent)) or "daphne"
    return [*profile, daphne, "-v", "0", "-b", "127.0.0.1", "-p", str(port), ASGI_APP]


def bench(
    clients: int, seconds: float, symbols: list[str], servers: list[str]
) -> tuple[list[Result], Result]:
    if TASKSET:
        os.sched_setaffinity(0, {0})  # this process is the load generator: core 0
    work = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    emulator_port, relay_port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env = {**base_env, "VAR_DIR": str(work), "EMULATOR_URL": f"http://127.0.0.1:{emulator_port}",
           "DJANGO_SETTINGS_MODULE": "connector_site.settings.base", "LOG_LEVEL": "WARNING"}  # fmt: skip
    emulator = start(
        pinned(0, [PYTHON, "-m", "emulator", "--port", str(emulator_port)]), env, work / "emu.log"
    )
    processes = [emulator]
    try:
        wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/health")
        streams = [f"{s.replace('/', '').lower()}@{kind}" for s in symbols for kind in ("trade", "ticker")]

        # Baseline: bare websockets relay.
        relay = start(
            pinned(1, [PYTHON, "-m", "bench.streams", "--bare-relay", str(relay_port),
                       f"ws://127.0.0.1:{emulator_port}/stream.binance.com/ws", *streams]),
            env, work / "relay.log",
        )  # fmt: skip
        processes.append(relay)
        time.sleep(1.0)
        baseline = measure(
            "bare websockets relay",
            run_clients(
                f"ws://127.0.0.1:{relay_port}/", clients, seconds, 1.0, headers={}, subscribe=[],
                emit_of=lambda m: m.get("emitUs"), pid=relay.pid,
            ),
        )  # fmt: skip
        stop(relay)

        # Ours: the embedded web process with the stream manager on its loop.
        manage = [PYTHON, "manage.py"]
        for command in (["migrate", "--noinput", "-v0"], ["createcachetable"], ["seed_demo"]):
            subprocess.run(
                [*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
            )
        token = subprocess.run(
            [*manage, "issue_token", "--user", "operator", "--scopes", "market:read"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        subscribe = [
            {"action": "subscribe", "exchange": "binance", "channel": channel, "symbol": symbol}
            for symbol in symbols
            for channel in ("trades", "ticker")
        ]
        ours = []
        for server in servers:
            web_port = free_port()
            web = start(pinned(1, server_command(server, web_port)), env, work / f"web-{server}.log")
            processes.append(web)
            wait_http(f"http://127.0.0.1:{web_port}/readyz")  # also starts the embedded manager
            ours.append(
                measure(
                    f"ours ({server} + manager + Channels)",
                    run_clients(
                        f"ws://127.0.0.1:{web_port}/ws/v1/market/", clients, seconds, 2.0,
                        headers={"Authorization": f"Bearer {token}", "Origin": f"http://127.0.0.1:{web_port}"},
                        subscribe=subscribe, emit_of=our_emit, pid=web.pid,
                    ),
                )
            )  # fmt: skip
            stop(web)
        return ours, baseline
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


def report(ours: list[Result], baseline: Result, clients: int, symbols: int) -> str:
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    lines = [
        f"streams bench: {clients} clients, {symbols} symbols x (trades, ticker), loopback, "
        f"{'relay pinned to core 1, rest core 0' if TASKSET else 'no pinning (taskset or 2 cores missing)'}",
        f"{'relay':38} {'p50 ms':>8} {'p99 ms':>8} {'deliv/s':>9} {'samples':>8} "
        f"{'relay CPU':>10} {'µs/deliv':>9}",
    ]
    for r in (*ours, baseline):
        lines.append(
            f"{r.name:38} {r.pct(0.5):8.2f} {r.pct(0.99):8.2f} {r.rate:9.0f} {len(r.latencies_us):8d} "
            f"{r.relay_cpu_s / max(r.seconds, 1e-9):9.0%} {r.cpu_us_per_delivery:9.1f}"
        )
    for r in ours:
        lines.append(
            f"ratios {r.name} / baseline: "
            f"p50 {ratio(r.pct(0.5), baseline.pct(0.5)):.2f}x, "
            f"p99 {ratio(r.pct(0.99), baseline.pct(0.99)):.2f}x, "
            f"deliveries/s {ratio(r.rate, baseline.rate):.2f}x, "
            f"CPU per delivery {ratio(r.cpu_us_per_delivery, baseline.cpu_us_per_delivery):.2f}x"
        )
    if len(ours) == 2:
        first, second = ours
        lines.append(
            f"{first.name} / {second.name}: deliveries/s {ratio(first.rate, second.rate):.2f}x, "
            f"CPU per delivery {ratio(first.cpu_us_per_delivery, second.cpu_us_per_delivery):.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--symbols", type=int, default=6)
    parser.add_argument(
        "--servers",
        default="daphne,uvicorn" if importlib.util.find_spec("uvicorn") else "daphne",
        help="comma-separated web servers to run our ASGI application under (daphne, uvicorn)",
    )
    parser.add_argument("--bare-relay", nargs="+", metavar=("PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    parser.add_argument("--uvicorn", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.uvicorn:
        uvicorn_main(args.uvicorn)
        return
    if args.bare_relay:
        port, upstream, *streams = args.bare_relay
        bare_relay_main(upstream, int(port), streams)
        return
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - {"daphne", "uvicorn"}
    if unknown or not servers:
        parser.error(f"--servers: daphne and/or uvicorn, not {', '.join(sorted(unknown)) or 'nothing'}")
    symbols = SYMBOLS[: max(1, min(args.symbols, len(SYMBOLS)))]
    ours, baseline = bench(args.clients, args.seconds, symbols, servers)
    print(report(ours, baseline, args.clients, len(symbols)))


if __name__ == "__main__":
    main()
