"""The Celery app: configuration comes from Django settings (``CELERY_*``)."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector_site.settings.base")

app = Celery("connector_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# kombu's filesystem transport (embedded default) expects its folders to exist.
for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
    folder = (app.conf.broker_transport_options or {}).get(key)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
