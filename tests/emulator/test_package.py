"""The emulator as a package and a program: no Django, CLI life cycle, control endpoints, determinism."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from emulator.engine import Engine
from emulator.venues.binance.instruments import load_instruments

ROOT = Path(__file__).resolve().parents[2]


def test_package_imports_without_django():
    code = "import emulator, emulator.server, emulator.testing, sys; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_cli_prints_ready_line_serves_stats_and_exits_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--seed", "3", "--account", "cli-key:cli-secret"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=5) as response:
            stats = json.load(response)
        assert set(stats) >= {"requests", "requests_by_key", "orders_accepted_by_key", "ws"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_unknown_hosts_get_404_and_stats_are_served_as_json(emulator):
    try:
        urllib.request.urlopen(f"{emulator.url}/api.example.com/api/v3/time", timeout=5)
    except urllib.error.HTTPError as error:
        assert error.code == 404
    else:
        raise AssertionError("unknown host answered")
    with urllib.request.urlopen(f"{emulator.url}/api.binance.com/api/v3/time", timeout=5):
        pass
    with urllib.request.urlopen(f"{emulator.url}/_emulator/stats", timeout=5) as response:
        stats = json.load(response)
    assert stats["requests"]["binance"]["GET api.binance.com/api/v3/time"] >= 1
    assert stats["requests"]["unknown"]["GET api.example.com"] >= 1


def _path(seed: int) -> list[str]:
    engine = Engine(seed=seed)
    engine.add_instruments(load_instruments(datetime.date(2026, 1, 1)))
    prices = []
    for step in range(1, 40):
        engine.advance(engine.started_ms + step * 250)
        prices.append(str(engine.market("binance", "BTC/USDT").last_price))
    return prices


def test_the_same_seed_gives_the_same_market():
    assert _path(11) == _path(11)
    assert _path(11) != _path(12)
