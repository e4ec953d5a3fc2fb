from django.apps import AppConfig


class MarketsConfig(AppConfig):
    name = "markets"

    def ready(self) -> None:
        from connectors.circuit import install_store
        from markets.circuits import CacheCircuitStore

        # One circuit per venue for every process (web, worker, stream manager), not per process.
        install_store(CacheCircuitStore())

        from markets.venues import follow_market_refreshes

        # Markets refreshed by the daily job reach every process, the stream manager's too
        # (it hands out no connector through markets.venues or accounts.services).
        follow_market_refreshes()
