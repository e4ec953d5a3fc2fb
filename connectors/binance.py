"""Binance: spot and USDⓈ-M futures. Only the quirks live here; the rest is the base."""

from __future__ import annotations

import re
from typing import Any

from .base import Connector, StreamConnector
from .retry import retrying

__all__ = ["BinanceConnector", "BinanceStreamConnector"]


class _Binance:
    # Spot and USDⓈ-M only: COIN-M (dapi) and options (eapi) would double the market load
    # and the venue surface we test, for products we do not offer.
    market_types: tuple[str, ...] | None = ("spot", "linear")
    ccxt_options: dict[str, Any] = {
        "defaultType": "spot",
        # Private currency endpoints (sapi capital/config, margin pairs) are not needed to
        # trade and cost a request weight of 10+ per instance.
        "fetchCurrencies": False,
        "fetchMargins": False,
        # watch_ticker goes through watchTickers, whose default stream (@miniTicker) has no
        # bid/ask; the full @ticker stream carries them at the same 1 s cadence.
        "watchTickers": {"name": "ticker"},
    }
    extra_capabilities: dict[str, bool] = {
        "api_permissions": True,
        "position_mode": False,
        "option_chain": False,
        "trading_stop": False,
        "margin_adjustment": False,
    }
    # newClientOrderId: up to 36 characters of [.A-Z:/a-z0-9_-].
    client_order_id_pattern: re.Pattern[str] = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


class BinanceConnector(_Binance, Connector):
    """Binance spot and USDⓈ-M futures (symbols ``BTC/USDT`` and ``BTC/USDT:USDT``)."""

    @retrying
    def fetch_permissions(self) -> dict[str, Any]:
        """GET /sapi/v1/account/apiRestrictions: reading, spot/margin and futures trading,
        withdrawals, IP restriction."""
        info = self._call("sapi_get_account_apirestrictions")
        trade = bool(info.get("enableSpotAndMarginTrading") or info.get("enableFutures"))
        return {
            "read": bool(info.get("enableReading", True)),
            "trade": trade,
            "withdraw": bool(info.get("enableWithdrawals")),
            "info": info,
        }


class BinanceStreamConnector(_Binance, StreamConnector):
    """Binance streams (``@miniTicker``, ``@depth``, ``@trade``, ``@kline_*``)."""
