"""Binance: spot and USDⓈ-M futures. Only the quirks live here; the rest is the base."""

from __future__ import annotations

import logging
import re
from typing import Any

from .base import Connector, StreamConnector, is_write
from .errors import ConnectorError, CredentialsRejected, PermissionDenied
from .retry import retrying

__all__ = ["BinanceConnector", "BinanceStreamConnector"]

logger = logging.getLogger("connectors")


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


# -2015 "Invalid API-key, IP, or permissions for action." (HTTP 401), see BinanceConnector.
_KEY_OR_PERMISSION_REFUSED = re.compile(r'"code"\s*:\s*-2015\b')


class BinanceConnector(_Binance, Connector):
    """Binance spot and USDⓈ-M futures (symbols ``BTC/USDT`` and ``BTC/USDT:USDT``)."""

    # Venue quirk: Binance answers one code, -2015 "Invalid API-key, IP, or permissions for
    # action." (HTTP 401), both for a key it does not accept (unknown or deleted key, IP not
    # whitelisted) and for a valid key refused an action it lacks the permission for (a
    # read-only key placing or cancelling an order, changing leverage). CCXT raises it as
    # AuthenticationError (our CredentialsRejected), or, once the instance has succeeded on
    # the spot private API, as DDoSProtection (its guess: a temporary ban). We tell the two
    # apart by the key: when this instance has already made a successful call signed with
    # this key, key and IP are good, so -2015 on a *write* is about permissions and becomes
    # PermissionDenied. When it has not, one signed read (GET /api/v3/account) decides:
    # answered, PermissionDenied; refused too, CredentialsRejected. Reads keep CCXT's class.
    _key_proven = False

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.exchange.last_request_headers = None
        result = super()._call(method, *args, **kwargs)
        if self._last_request_signed():
            self._key_proven = True
        return result

    def _last_request_signed(self) -> bool:
        headers = self.exchange.last_request_headers or {}
        return self._credentials is not None and headers.get("X-MBX-APIKEY") == self._credentials.api_key

    def _venue_error(self, exc: BaseException, error: ConnectorError, method: str | None) -> ConnectorError:
        if not (is_write(method) and _KEY_OR_PERMISSION_REFUSED.search(str(exc))):
            return error
        if self._key_proven or self._prove_key():
            return PermissionDenied(
                f"the API key may not do this on binance (its permissions): {error.message}"
            )
        if isinstance(error, CredentialsRejected):
            return error
        return CredentialsRejected(error.message)

    def _prove_key(self) -> bool:
        """One signed read (GET /api/v3/account without empty balances): does the venue
        accept this key at all? Any failure counts as no."""
        if self._credentials is None:
            return False
        try:
            self.exchange.private_get_account({"omitZeroBalances": "true"})
        except Exception as exc:
            logger.info(
                "binance %s: key check after -2015 failed: %s", self.environment.value, type(exc).__name__
            )
            return False
        self._key_proven = True
        return True

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
