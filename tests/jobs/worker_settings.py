"""Settings for the worker processes the jobs tests start (tests/jobs/conftest.py).

The test settings, plus what a test tunes through the environment: its own queue, the cache
key prefix of the test (so worker and test see the same entries), the broker's visibility
timeout (redelivery after a killed worker), time limits and the venue timeout.
"""

from connector_site.settings.test import *  # noqa: F403
from connector_site.settings.test import CACHES, env

CELERY_TASK_DEFAULT_QUEUE = env.str("JOBS_TEST_QUEUE", default="celery")
if env.str("JOBS_TEST_CACHE_PREFIX", default=""):
    CACHES["default"]["KEY_PREFIX"] = env.str("JOBS_TEST_CACHE_PREFIX")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("JOBS_TEST_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
JOBS_VENUE_TIMEOUT_MS = env.int("JOBS_VENUE_TIMEOUT_MS", default=10_000)
JOBS_RETRY_BACKOFF_BASE = env.float("JOBS_RETRY_BACKOFF_BASE", default=0.2)
JOBS_RETRY_BACKOFF_CAP = env.float("JOBS_RETRY_BACKOFF_CAP", default=1.0)
RECONCILE_GRACE_SECONDS = env.float("RECONCILE_GRACE_SECONDS", default=0)
