# syntax=docker/dockerfile:1
# Multi-stage: build wheels and static files in one stage, run as a non-root user in the next.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt requirements.lock ./
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt -c requirements.lock
COPY . .
# collectstatic needs settings to import: build-only values, never used at run time.
RUN DJANGO_SETTINGS_MODULE=connector_site.settings.production \
    SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret-0000 \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1rZXktMDEyMzQ1Njc4OWE= \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://build-only:6379/0 ALLOWED_HOSTS=build \
    /venv/bin/python manage.py collectstatic --noinput

FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=connector_site.settings.production
RUN useradd --system --uid 10001 --home-dir /app app
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build --chown=app:app /app /app
USER app
EXPOSE 8000 8001 8700
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["gunicorn", "connector_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
