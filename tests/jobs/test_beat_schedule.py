"""The default beat schedule: seeded once by the migrations, never overwriting an operator's edit."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_migrations_seed_every_default_entry() -> None:
    from django_celery_beat.models import PeriodicTask

    from connector_site.beat import DEFAULT_SCHEDULE

    seeded = {t.name: t for t in PeriodicTask.objects.all()}
    for entry in DEFAULT_SCHEDULE:
        task = seeded[entry.name]
        assert task.task == entry.task and task.enabled
        assert task.expire_seconds == entry.expire_seconds
        if entry.every_seconds:
            assert (task.interval.every, task.interval.period) == (entry.every_seconds, "seconds")
        else:
            cron = task.crontab
            assert (
                f"{cron.minute} {cron.hour} {cron.day_of_month} {cron.month_of_year} {cron.day_of_week}"
                == entry.cron
            )


def test_every_default_entry_names_a_task_the_worker_knows() -> None:
    from connector_site.beat import DEFAULT_SCHEDULE
    from connector_site.celery import app

    app.loader.import_default_modules()
    assert {e.task for e in DEFAULT_SCHEDULE} <= set(app.tasks)


def test_something_runs_within_a_minute_of_startup() -> None:
    from connector_site.beat import DEFAULT_SCHEDULE

    assert min(e.every_seconds or 86_400 for e in DEFAULT_SCHEDULE) <= 60


def test_seeding_again_keeps_an_operators_edit_and_creates_nothing() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from connector_site.beat import schedule_seed

    task = PeriodicTask.objects.get(name="trading: sync balances")
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
    task.enabled = False
    task.save()
    count = PeriodicTask.objects.count()

    assert schedule_seed() == []

    task.refresh_from_db()
    assert (task.interval.every, task.enabled) == (300, False)
    assert PeriodicTask.objects.count() == count


def test_seeding_creates_a_missing_default_entry() -> None:
    from django_celery_beat.models import PeriodicTask

    from connector_site.beat import schedule_seed

    PeriodicTask.objects.filter(name="markets: refresh markets").delete()

    assert schedule_seed() == ["markets: refresh markets"]
    assert PeriodicTask.objects.get(name="markets: refresh markets").crontab.hour == "3"
