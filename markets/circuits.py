"""The venue circuit breaker's state in the Django cache (Redis in production, the database
cache in the embedded default), so the web process, the Celery worker and the stream
manager share one ban per venue (:mod:`connectors.circuit`; installed by ``MarketsConfig``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.core.cache import caches

__all__ = ["CacheCircuitStore"]


class CacheCircuitStore:
    """:class:`connectors.circuit.CircuitStore` over a Django cache (``add`` is atomic on
    Redis and on the database cache, which elects one half-open probe across processes).
    The cache is looked up at each call, so settings changes (tests) are followed."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def _cache(self) -> Any:
        return caches[self.alias]

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return dict(self._cache().get_many(list(keys)))

    def set(self, key: str, value: Any, ttl: float) -> None:
        self._cache().set(key, value, timeout=max(1, math.ceil(ttl)))

    def add(self, key: str, value: Any, ttl: float) -> bool:
        return bool(self._cache().add(key, value, timeout=max(1, math.ceil(ttl))))

    def delete_many(self, keys: Iterable[str]) -> None:
        self._cache().delete_many(list(keys))
