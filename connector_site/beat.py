"""The default beat schedule, in one place.

Beat runs django-celery-beat's DatabaseScheduler: the schedule lives in the database and
operators edit it in the admin (Periodic tasks). These defaults are *seeded once*, by the
migration ``trading/0003_default_beat_schedule``: an entry is created only if no periodic
task of that name exists, so an operator's edits (interval, enabled, arguments) survive
restarts and upgrades. To stop an entry, disable it rather than delete it (a deleted
default is not recreated by restarts either, only by a new migration that adds it on purpose).

Each entry's comment gives its timing in cron notation. Intervals below a minute are
django-celery-beat interval schedules; cron has no seconds, so those comments say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_SCHEDULE", "ScheduleEntry", "schedule_seed"]


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    task: str
    description: str
    every_seconds: int | None = None  # an interval schedule ...
    cron: str | None = None  # ... or a crontab "minute hour day-of-month month day-of-week" (UTC)
    expire_seconds: int | None = None  # a run not started by then is dropped (no backlog)


DEFAULT_SCHEDULE: tuple[ScheduleEntry, ...] = (
    # 5 3 * * *  — daily at 03:05 UTC
    ScheduleEntry(
        name="markets: refresh markets",
        task="markets.tasks.markets_refresh",
        description="Reload every served venue's markets (new listings, changed limits).",
        cron="5 3 * * *",
        expire_seconds=3600,
    ),
    # */15 seconds (cron has no seconds: every 15 s)
    ScheduleEntry(
        name="markets: poll watchlist tickers not streaming",
        task="markets.tasks.watchlist_tickers_poll",
        description="Tickers of watchlist symbols whose stream is not live, into the market-data cache.",
        every_seconds=15,
        expire_seconds=14,
    ),
    # * * * * *  — every minute
    ScheduleEntry(
        name="trading: sync balances",
        task="trading.tasks.balances_sync_all",
        description="Each active account's balances into its balance history.",
        every_seconds=60,
        expire_seconds=55,
    ),
    # * * * * *  — every minute
    ScheduleEntry(
        name="trading: sync open orders",
        task="trading.tasks.open_orders_sync_all",
        description="Each active account's open orders against ours; records orders placed outside us.",
        every_seconds=60,
        expire_seconds=55,
    ),
    # */30 seconds (cron has no seconds: every 30 s)
    ScheduleEntry(
        name="trading: reconcile unknown orders",
        task="trading.tasks.unknown_orders_reconcile_all",
        description="Look orders of unknown outcome up on the venue by client order id; never re-sends.",
        every_seconds=30,
        expire_seconds=25,
    ),
)


def _crontab_fields(cron: str) -> dict[str, str]:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def schedule_seed(apps: Any = None, entries: tuple[ScheduleEntry, ...] = DEFAULT_SCHEDULE) -> list[str]:
    """Create the periodic tasks of ``entries`` that do not exist yet (by name); never
    change an existing one. Returns the names created. ``apps``: a migration's app registry
    (historical models), or None for the current models."""
    if apps is None:
        from django.apps import apps as current_apps

        apps = current_apps
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    interval_schedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_schedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    created = []
    for entry in entries:
        if periodic_task.objects.filter(name=entry.name).exists():
            continue
        fields: dict[str, Any] = {
            "name": entry.name,
            "task": entry.task,
            "description": entry.description,
            "expire_seconds": entry.expire_seconds,
            "enabled": True,
        }
        if entry.every_seconds is not None:
            fields["interval"], _ = interval_schedule.objects.get_or_create(
                every=entry.every_seconds, period="seconds"
            )
        else:
            assert entry.cron is not None
            fields["crontab"], _ = crontab_schedule.objects.get_or_create(
                **_crontab_fields(entry.cron), timezone="UTC"
            )
        periodic_task.objects.create(**fields)
        created.append(entry.name)
    if created:
        _touch_schedule_changed(apps)
    return created


def _touch_schedule_changed(apps: Any) -> None:
    """Tell a running beat to reload (django-celery-beat watches PeriodicTasks.last_update)."""
    from django.utils import timezone

    changed = apps.get_model("django_celery_beat", "PeriodicTasks")
    changed.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
