"""The embedded default: the stream manager inside the ASGI web process, on its event loop.

``make run`` serves HTTP and WebSockets from one daphne process with the in-memory
channel layer, so the manager must live in that process and on that loop (the in-memory
layer does not cross loops or processes). daphne sends no ASGI lifespan events, so the
manager starts on the first connection of any kind (the smoke test's ``/readyz``, the
first page view) and stops from a Twisted "before shutdown" trigger on SIGTERM. Servers
that do speak lifespan (uvicorn) start and stop it through lifespan instead.

Production sets ``STREAMS_IN_PROCESS`` false (the default whenever ``REDIS_URL`` is set)
and runs ``manage.py run_streams`` as its own process.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from streams.conf import setting

__all__ = ["EmbeddedStreams", "with_embedded_streams"]

logger = logging.getLogger("streams.embedded")


class EmbeddedStreams:
    """ASGI middleware that owns the in-process stream manager."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.manager: Any = None
        self._starting: asyncio.Lock | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if self.manager is None and setting("STREAMS_IN_PROCESS"):
            await self.start()
        return await self.app(scope, receive, send)

    async def start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.manager is not None:
                return
            from streams.manager import StreamManager

            manager = StreamManager()
            await manager.start()
            self.manager = manager
            self._stop_with_twisted()
            logger.info("stream manager running inside the web process")

    async def stop(self) -> None:
        manager, self.manager = self.manager, None
        if manager is not None:
            await manager.stop()

    def _stop_with_twisted(self) -> None:
        if "twisted.internet.reactor" not in sys.modules:
            return
        from twisted.internet import defer, reactor

        def before_shutdown() -> Any:
            return defer.Deferred.fromFuture(asyncio.ensure_future(self.stop()))

        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[attr-defined,arg-type]

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if setting("STREAMS_IN_PROCESS"):
                    await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def with_embedded_streams(app: Any) -> EmbeddedStreams:
    return EmbeddedStreams(app)
