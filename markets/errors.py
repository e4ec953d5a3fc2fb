"""Market-data input errors, as connector errors so the one API handler maps them (400 + field).

They are raised by selectors, which the stream manager and pollers may call too, so they
carry no DRF dependency: ``connector_site/api_errors.py`` turns any
:class:`~connectors.ConnectorError` into the envelope with its ``code`` and ``field``.
"""

from __future__ import annotations

from connectors import BadSymbol, InvalidInput

__all__ = ["UnknownCurrency", "UnknownExchange", "UnknownSymbol", "UnknownTimeframe"]


class UnknownExchange(InvalidInput):
    """The exchange id is not on the allow-list, or the market-data environment does not serve
    it (the emulator serves only the venues it emulates). Fix the input; do not retry."""

    code = "unknown_exchange"
    default_field = "exchange"


class UnknownSymbol(BadSymbol):
    """The symbol is not one of the venue's loaded markets. Fix the input; do not retry."""

    code = "unknown_symbol"
    default_field = "symbol"


class UnknownTimeframe(InvalidInput):
    """The venue has no candles of this timeframe. Fix the input; do not retry."""

    code = "unknown_timeframe"
    default_field = "timeframe"


class UnknownCurrency(InvalidInput):
    """The venue lists no options on this currency. Fix the input; do not retry."""

    code = "unknown_currency"
    default_field = "currency"
