"""Settings of the web process under benchmark: the base settings (what ``make run`` and the
Procfile's processes read from the environment) plus the bench-only URLconf.

Never used by the product. The rate limits are raised (in ``bench/web.py``, through their
environment variables) so a load test is counted by the throttles but never answered 429.
"""

from connector_site.settings.base import *  # noqa: F403

# The product's routes plus the baselines of the REST benchmark (bench/urls.py).
ROOT_URLCONF = "bench.urls"
