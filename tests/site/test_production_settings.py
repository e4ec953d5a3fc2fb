"""Production settings refuse to start without their required values, and pass check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "SECRET_KEY": "prod-" + "k3y" * 20,
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgres://app:pw@db.internal:5432/app",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "gateway.example.com",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith("DJANGO")}
    clean.update(env, DJANGO_SETTINGS_MODULE="connector_site.settings.production")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_passes_with_no_warnings_when_everything_is_set():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_it_refuses_to_start_naming_every_missing_variable():
    partial = {k: v for k, v in REQUIRED.items() if k not in ("SECRET_KEY", "REDIS_URL")}
    result = run_manage("check", env=partial)
    assert result.returncode != 0
    assert "Production settings need these environment variables: SECRET_KEY, REDIS_URL" in result.stderr


def test_the_error_does_not_echo_the_values_that_were_set():
    partial = {k: v for k, v in REQUIRED.items() if k != "ALLOWED_HOSTS"}
    result = run_manage("check", env=partial)
    assert REQUIRED["FIELD_ENCRYPTION_KEYS"] not in result.stderr
    assert REQUIRED["SECRET_KEY"] not in result.stderr
