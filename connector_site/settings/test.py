"""Test settings: the base settings with fast hashing and quiet logs.

Tests use the real PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI sets
them); otherwise SQLite and the local cache, and tests marked ``postgres``/``redis`` skip.
"""

from .base import *  # noqa: F403
from .base import CACHES, REDIS_URL, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; test users only
FIELD_ENCRYPTION_KEYS = env.list(
    "TEST_FIELD_ENCRYPTION_KEYS", default=["4uCI5KRdVnrnNU7JOUg6XWo1TGmZz3j3xyHrj8QoVnA="]
)
SECRET_KEY = "test-secret-key-not-used-for-anything-but-tests-0123456789abcdef"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # A key prefix keeps test runs apart from a development instance on the same Redis.
    CACHES["default"]["KEY_PREFIX"] = "test"
CELERY_TASK_ALWAYS_EAGER = False
LOG_LEVEL = "WARNING"
