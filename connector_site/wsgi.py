"""WSGI entry point: production serves HTTP through gunicorn (see DESIGN.md for why)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector_site.settings.base")

application = get_wsgi_application()
