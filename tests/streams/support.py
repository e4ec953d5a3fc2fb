"""Test harness for the streams tests: an emulator that can be stopped and restarted on
the same port, and a loopback TCP proxy in front of it that can cut or freeze every
connection (real network faults, injected outside the code under test)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from emulator.testing import running_emulator

ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RestartableEmulator:
    """The emulator in a background thread; ``stop()`` closes every socket (clients see the
    connection drop) and ``start()`` brings it back on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._cm: Any = None
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RestartableEmulator:
        for _ in range(50):
            try:
                self._cm = running_emulator(port=self.port)
                self.server = self._cm.__enter__()
                return self
            except OSError:  # the port may linger for a moment after a stop
                time.sleep(0.1)
        raise RuntimeError(f"could not restart the emulator on port {self.port}")

    def stop(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None
            self.server = None


class FaultProxy:
    """A TCP proxy on its own thread and loop. ``drop()`` aborts every connection (no close
    frame, like a dropped TCP link); ``stall(True)`` stops forwarding while keeping sockets
    open (a half-open connection); ``stall(False)`` resumes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start)
        return self

    def close(self) -> None:
        self.drop()
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def drop(self) -> None:
        self._call(self._drop)

    def stall(self, on: bool) -> None:
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        # The connections' tasks end here, not as "destroyed but pending" at exit.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _drop(self) -> None:
        for client, upstream in list(self._pairs):
            for writer in (client, upstream):
                transport = writer.transport
                with contextlib.suppress(Exception):
                    transport.abort()
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._pairs.discard(pair)
        for w in pair:
            with contextlib.suppress(Exception):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            while not self._flowing.is_set():  # noqa: ASYNC110 - stalled: hold the bytes, keep the socket open
                await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def eventually(
    read: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    timeout: float,  # noqa: ASYNC109
    step: float = 0.1,
) -> T:
    """``await read()`` until ``predicate`` holds for its value or ``timeout`` passes; the
    last value either way, for the caller to assert on (so a failure shows what was seen).
    For state written in the background (health rows, the cache) on a loaded machine:
    wait for the condition with a generous deadline rather than sleep a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if predicate(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(step)


_PREPARED: dict[str, Path] = {}
_SETUP = (
    "import django; django.setup(); from django.core.management import call_command; "
    "call_command('migrate', interactive=False, verbosity=0); call_command('createcachetable'); "
    "call_command('seed_demo')"
)


def embedded_env(var_dir: Path, emulator_url: str) -> dict[str, str]:
    """Environment of an embedded-default process (SQLite in ``var_dir``, no Redis)."""
    drop = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    return {
        **{k: v for k, v in os.environ.items() if k not in drop},
        "VAR_DIR": str(var_dir),
        "EMULATOR_URL": emulator_url,
        "DJANGO_SETTINGS_MODULE": "connector_site.settings.base",
        "LOG_LEVEL": "WARNING",
    }


def prepared_var_dir(target: Path) -> Path:
    """A VAR_DIR with a migrated, seeded SQLite database: built once per test session in one
    interpreter (migrate, createcachetable, seed_demo), then copied."""
    if "template" not in _PREPARED:
        template = Path(tempfile.mkdtemp(prefix="streams-var-"))
        env = embedded_env(template, "http://127.0.0.1:9")
        subprocess.run(
            [sys.executable, "-c", _SETUP], cwd=ROOT, env=env, check=True, timeout=300, capture_output=True
        )
        _PREPARED["template"] = template
    shutil.copytree(_PREPARED["template"], target, dirs_exist_ok=True)
    return target
