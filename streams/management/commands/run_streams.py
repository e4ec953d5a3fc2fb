"""``manage.py run_streams``: the stream manager as its own process (production)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from streams.conf import setting

logger = logging.getLogger("streams.manager")


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
        run_bounded(
            self._run(use_watchlist=not options["no_watchlist"]), float(setting("STREAMS_STOP_GRACE_S"))
        )
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
            # The same bounded stop as the embedded manager's (Twisted trigger, lifespan).
            await manager.stop()


def run_bounded(main: Coroutine[Any, Any, None], grace: float) -> None:
    """``asyncio.run(main)``, except that whatever tasks are still running when ``main``
    returns get ``grace`` seconds to finish once cancelled, not for ever: ``asyncio.run``
    waits without a bound, so a task that ignores cancellation would keep the process alive
    after SIGTERM (``StreamManager.stop()`` has logged any such task already)."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                _, stuck = loop.run_until_complete(asyncio.wait(left, timeout=grace))
                if stuck:
                    logger.warning("exiting with %d task(s) that ignored cancellation", len(stuck))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(
                asyncio.wait({loop.create_task(loop.shutdown_default_executor())}, timeout=grace)
            )
        finally:
            asyncio.set_event_loop(None)
            loop.close()
