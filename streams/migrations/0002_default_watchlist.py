"""A starting watchlist for the dashboard: spot majors across Binance, OKX and Bybit."""

from django.db import migrations

DEFAULTS = [
    ("binance", "BTC/USDT", True),
    ("binance", "ETH/USDT", True),
    ("binance", "XRP/USDT", True),
    ("binance", "LTC/USDT", True),
    ("binance", "DOGE/USDT", True),
    ("binance", "ADA/USDT", True),
    ("okx", "BTC/USDT", True),
    ("okx", "ETH/USDT", True),
    ("bybit", "BTC/USDT", True),
    ("bybit", "ETH/USDT", True),
]


def seed(apps, schema_editor):
    entry = apps.get_model("streams", "WatchlistEntry")
    for position, (exchange, symbol, enabled) in enumerate(DEFAULTS):
        entry.objects.get_or_create(
            exchange=exchange, channel="ticker", symbol=symbol, defaults={"enabled": enabled, "position": position}
        )


def unseed(apps, schema_editor):
    entry = apps.get_model("streams", "WatchlistEntry")
    for exchange, symbol, _ in DEFAULTS:
        entry.objects.filter(exchange=exchange, channel="ticker", symbol=symbol).delete()


class Migration(migrations.Migration):
    dependencies = [("streams", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
