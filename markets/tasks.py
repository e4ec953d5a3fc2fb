"""Celery jobs for market data (schedule: connector_site/beat.py); thin, over markets/polling.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from connector_site.jobs import JobTask, run_job


@shared_task(bind=True, base=JobTask)
def watchlist_tickers_poll(self: JobTask) -> Any:
    """Poll the tickers of watchlist symbols that are not streaming into the market-data cache."""
    from markets import polling

    return run_job(self, "watchlist_tickers_poll", polling.watchlist_tickers_poll)


@shared_task(bind=True, base=JobTask)
def markets_refresh(self: JobTask) -> Any:
    """Reload the markets of every served venue (daily)."""
    from markets import polling

    return run_job(self, "markets_refresh", polling.markets_refresh)
