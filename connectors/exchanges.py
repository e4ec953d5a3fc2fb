"""The one allow-list of exchange ids: the account model, the factory and the API use it.

Ids are CCXT ids (checked against the installed CCXT by a test). Only ids listed here can
be instantiated; anything else (including URLs or ids crafted to reach other hosts) is
refused by the factory with :class:`~connectors.errors.NotSupported`.
"""

from __future__ import annotations

__all__ = ["ALIASES", "DISPLAY_NAMES", "SUPPORTED_EXCHANGES", "exchange_choices", "normalise_exchange_id"]

# id -> display name. binance, okx and bybit have venue modules; the rest run on the base
# connector with CCXT's unified methods and are offered for read and trade where CCXT has them.
DISPLAY_NAMES: dict[str, str] = {
    "binance": "Binance",
    "okx": "OKX",
    "bybit": "Bybit",
    "bitfinex": "Bitfinex",
    "bitget": "Bitget",
    "bitstamp": "Bitstamp",
    "coinbase": "Coinbase Advanced",
    "cryptocom": "Crypto.com",
    "gate": "Gate",
    "htx": "HTX",
    "kraken": "Kraken",
    "kucoin": "KuCoin",
    "mexc": "MEXC",
}

SUPPORTED_EXCHANGES: tuple[str, ...] = tuple(DISPLAY_NAMES)

# Other spellings callers may use for the same venue (CCXT renamed some venues).
ALIASES: dict[str, str] = {
    "gateio": "gate",
    "huobi": "htx",
    "okex": "okx",
    "okx5": "okx",
}


def normalise_exchange_id(exchange_id: str) -> str | None:
    """The allow-listed id for ``exchange_id`` (case-insensitive, aliases resolved), or None."""
    key = str(exchange_id).strip().lower()
    key = ALIASES.get(key, key)
    return key if key in DISPLAY_NAMES else None


def exchange_choices() -> list[tuple[str, str]]:
    """``(id, display name)`` pairs for a Django ``choices`` field, in allow-list order."""
    return list(DISPLAY_NAMES.items())
