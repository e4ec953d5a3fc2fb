#!/usr/bin/env bash
# Jobs smoke (env: BASE, VAR_DIR), after `make run` is up: within ~60 s beat has fired the
# default schedule and the worker executed it, i.e. a periodic task has a recorded run and
# every demo account has a balance history row (written by the worker from the emulator).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VAR_DIR:?VAR_DIR must point at the var folder of make run}"

probe() {
    VAR_DIR="$VAR_DIR" timeout 30 .venv/bin/python manage.py shell -c '
import sys
from django_celery_beat.models import PeriodicTask
from accounts.models import ExchangeAccount
from trading.balance_history import BalanceSnapshot

fired = sorted(PeriodicTask.objects.filter(total_run_count__gt=0).values_list("name", flat=True))
demo = ExchangeAccount.objects.filter(label__endswith=" demo", is_active=True)
synced = set(BalanceSnapshot.objects.filter(account__in=demo).values_list("account__label", flat=True))
missing = sorted(set(demo.values_list("label", flat=True)) - synced)
print(f"beat entries fired: {fired or None}; demo accounts without balance history: {missing or None}")
sys.exit(0 if fired and demo.exists() and not missing else 1)
'
}

for _ in $(seq 16); do
    if probe; then echo "jobs: beat fired and the worker executed"; exit 0; fi
    sleep 5
done
echo "jobs: no beat run with worker results within ~80 s" >&2
exit 1
