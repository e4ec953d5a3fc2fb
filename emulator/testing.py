"""Run an emulator in a background thread (for sync code: CCXT sync clients, Django tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from emulator.server import EmulatorServer


@contextmanager
def running_emulator(**kwargs: Any) -> Iterator[EmulatorServer]:
    """Start :class:`EmulatorServer` (``port=0`` unless given) on its own loop in a daemon thread and yield
    it; stop it on exit. Controls such as ``server.market(...).set_price(...)`` are safe from this thread."""
    kwargs.setdefault("port", 0)
    server = EmulatorServer(**kwargs)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="emulator", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if errors:
        raise errors[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
