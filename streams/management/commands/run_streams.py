"""``manage.py run_streams``: the stream manager as its own process (production)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Hold exchange WebSocket subscriptions (watchlist plus consumer leases), publish conflated "
        "states to the channel layer and the market-data cache, and record stream health. Stops "
        "cleanly on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-watchlist", action="store_true", help="serve consumer leases only")

    def handle(self, *args: Any, **options: Any) -> None:
        backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
        if backend.endswith(("InMemoryChannelLayer", "EmbeddedChannelLayer")):
            self.stderr.write(
                "warning: the in-memory channel layer does not leave this process; web consumers will not "
                "see these streams (set REDIS_URL, or let the web process run them: STREAMS_IN_PROCESS)"
            )
        asyncio.run(self._run(use_watchlist=not options["no_watchlist"]))
        self.stdout.write("stream manager stopped")

    async def _run(self, *, use_watchlist: bool) -> None:
        from streams.manager import StreamManager

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        manager = StreamManager(use_watchlist=use_watchlist)
        await manager.start()
        self.stdout.write(f"stream manager running ({manager.environment}); SIGTERM stops it", ending="\n")
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            await manager.stop()
