"""Venue adapters: protocol translation only (routes, signatures, JSON shapes, error codes, WS protocol).

Add a venue by writing ``emulator/venues/<name>/`` with a :class:`~emulator.venues.base.VenueAdapter`
subclass and one line in :data:`VENUES` (see ``emulator/ADAPTERS.md``).
"""

from __future__ import annotations

import importlib

from emulator.venues.base import VenueAdapter

# venue name -> "module:Class"; imported lazily so a broken adapter only breaks its own venue
VENUES: dict[str, str] = {
    "binance": "emulator.venues.binance:BinanceAdapter",
    "bybit": "emulator.venues.bybit:BybitAdapter",
    "okx": "emulator.venues.okx:OkxAdapter",
}


def adapter_class(name: str) -> type[VenueAdapter]:
    module_name, _, class_name = VENUES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
