"""Request and order counters, readable as ``server.stats`` and over ``GET /_emulator/stats``."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    """Counters per (venue, endpoint), per API key, orders accepted per key, faults injected per (venue,
    kind), and WebSocket totals.

    An endpoint is named ``"METHOD host/path"`` (``"GET api.binance.com/api/v3/depth"``),
    because the same path exists on several hosts of one venue. Requests to hosts no venue serves are
    counted under venue ``"unknown"`` as ``"METHOD host"`` (see :meth:`unknown_hosts`).
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.requests_by_key: Counter[str] = Counter()
        self.orders_accepted: Counter[tuple[str, str]] = Counter()
        self.faults_injected: Counter[tuple[str, str]] = Counter()
        self.ws_connections = 0
        self.ws_messages_sent = 0
        self.ws_messages_received = 0

    def request(self, venue: str, endpoint: str, api_key: str | None) -> None:
        self.requests[(venue, endpoint)] += 1
        if api_key:
            self.requests_by_key[api_key] += 1

    def fault_injected(self, venue: str, kind: str, n: int = 1) -> None:
        self.faults_injected[(venue, kind)] += n

    def unknown_hosts(self) -> Counter[str]:
        """Requests to hosts no venue serves, per host (``"api.kraken.com"``)."""
        totals: Counter[str] = Counter()
        for (venue, endpoint), count in self.requests.items():
            if venue == "unknown":
                totals[endpoint.partition(" ")[2]] += count
        return totals

    def requests_to_host(self, host: str) -> int:
        """All requests counted for ``host``, served or not."""
        return sum(
            n for (_, endpoint), n in self.requests.items() if endpoint.partition(" ")[2].startswith(host)
        )

    def order_accepted(self, venue: str, api_key: str) -> None:
        self.orders_accepted[(venue, api_key)] += 1

    def orders_accepted_by_key(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (_, key), count in self.orders_accepted.items():
            totals[key] += count
        return totals

    def as_dict(self) -> dict[str, Any]:
        by_venue: dict[str, dict[str, int]] = {}
        for (venue, endpoint), count in sorted(self.requests.items()):
            by_venue.setdefault(venue, {})[endpoint] = count
        accepted: dict[str, dict[str, int]] = {}
        for (venue, key), count in sorted(self.orders_accepted.items()):
            accepted.setdefault(venue, {})[key] = count
        faults: dict[str, dict[str, int]] = {}
        for (venue, kind), count in sorted(self.faults_injected.items()):
            faults.setdefault(venue, {})[kind] = count
        return {
            "requests": by_venue,
            "unknown_hosts": dict(self.unknown_hosts()),
            "faults_injected": faults,
            "requests_by_key": dict(self.requests_by_key),
            "orders_accepted_by_key": dict(self.orders_accepted_by_key()),
            "orders_accepted": accepted,
            "ws": {
                "connections_open": self.ws_connections,
                "messages_sent": self.ws_messages_sent,
                "messages_received": self.ws_messages_received,
            },
        }
