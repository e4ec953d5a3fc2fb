"""Seed the default beat schedule (connector_site/beat.py) once.

Creates only the periodic tasks that do not exist by name, so re-running it (or an operator's
edits in the admin) is never overwritten. Reversing it leaves the schedule alone: entries may
have been edited since, and deleting them would lose that.
"""

from django.db import migrations


def seed(apps, schema_editor):
    from connector_site.beat import schedule_seed

    schedule_seed(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0002_balance_history_external_orders"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
