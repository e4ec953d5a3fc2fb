"""End to end: a real daphne process on the embedded default (stream manager inside, in-memory
layer, SQLite), the emulator, and headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.streams.support import RestartableEmulator, embedded_env, free_port, prepared_var_dir

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


class Site:
    def __init__(self, url: str, password: str, emulator: RestartableEmulator) -> None:
        self.url = url
        self.password = password
        self.emulator = emulator


@pytest.fixture(scope="module")
def site(tmp_path_factory: Any) -> Iterator[Site]:
    """`make run`'s web process: daphne with the stream manager on its loop, no Redis."""
    emulator = RestartableEmulator().start()
    port = free_port()
    var = prepared_var_dir(tmp_path_factory.mktemp("var"))
    env = embedded_env(var, emulator.url)
    password = (var / "demo-operator-password").read_text().strip()
    log = (var / "daphne.log").open("w")
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    server = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "connector_site.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded CI machine starts daphne slowly
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((var / "daphne.log").read_text()) from None
                time.sleep(0.2)
        yield Site(url, password, emulator)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
            emulator.stop()
            log.close()


def test_a_trader_sees_live_prices_move_and_the_indicator_follow_the_venue(site: Site) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        try:
            page.goto(f"{site.url}/")
            assert "/admin/login/" in page.url  # login required
            page.fill("#id_username", "operator")
            page.fill("#id_password", site.password)
            page.click("input[type=submit]")
            page.wait_for_url(f"{site.url}/")

            indicator = page.locator("#conn")
            # Deadlines are generous (conditions, not timings): a loaded CI machine is slow.
            expect(indicator).to_have_attribute("data-state", "live", timeout=30_000)
            btc_last = page.locator('#watchlist tr[data-exchange="binance"][data-symbol="BTC/USDT"] td.last')
            expect(btc_last).not_to_have_text("—", timeout=20_000)
            first = btc_last.inner_text()
            book_mid = page.locator("#spread span")
            expect(book_mid).to_be_visible(timeout=20_000)
            mid = book_mid.inner_text()
            # Prices from the emulator change within a few seconds (ticker or book mid).
            page.wait_for_function(
                "([a, b]) => document.querySelector('#watchlist tr[data-symbol=\"BTC/USDT\"] td.last')"
                ".textContent !== a || document.querySelector('#spread span').textContent !== b",
                arg=[first, mid],
                timeout=20_000,
            )
            expect(page.locator("#chart canvas").first).to_be_visible()
            page.wait_for_timeout(1500)  # let the chart and the health table fill in
            page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"))

            site.emulator.stop()  # the venue drops every stream
            expect(indicator).to_have_attribute("data-state", "stale", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-stale.png"))

            site.emulator.start()  # and comes back
            # Up to the backoff cap (30 s by default) after a long outage, plus the resubscribe.
            expect(indicator).to_have_attribute("data-state", "live", timeout=45_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-recovered.png"))
        finally:
            browser.close()
