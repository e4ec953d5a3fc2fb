"""Where a connector sends its requests."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Environment"]


class Environment(StrEnum):
    """The three places a venue can be reached.

    ``LIVE`` is the real exchange, ``SANDBOX`` the venue's own testnet (CCXT sandbox mode),
    ``EMULATOR`` our loopback emulator at the address settings give (never a user's URL).
    """

    LIVE = "live"
    SANDBOX = "sandbox"
    EMULATOR = "emulator"
