"""OKX: spot, perpetual swaps, delivery futures and options; keys need a passphrase."""

from __future__ import annotations

import re
from typing import Any

import ccxt

from .base import Connector, StreamConnector, _decimal_arg
from .credentials import Credentials
from .errors import ConnectorError, InvalidInput, PermissionDenied
from .retry import retrying
from .types import to_decimals

__all__ = ["OkxConnector", "OkxStreamConnector"]

# 50120 "API key doesn't have permission": a read-only key's write (top-level ``code``, or
# ``sCode`` of a batch row). CCXT 4.5 does not map it, so it arrives as a plain ExchangeError.
_NO_PERMISSION = re.compile(r'"s?[cC]ode"\s*:\s*"50120"')


class _Okx:
    market_types: tuple[str, ...] | None = ("spot", "swap", "future", "option")
    ccxt_options: dict[str, Any] = {"defaultType": "spot"}
    extra_capabilities: dict[str, bool] = {
        "api_permissions": True,
        "position_mode": True,
        "option_chain": True,
        "trading_stop": False,
        "margin_adjustment": False,
    }

    def __init__(self, exchange_id: str, credentials: Credentials | None = None, **kwargs: Any) -> None:
        if credentials is not None and not credentials.passphrase:
            raise InvalidInput("OKX API keys need their passphrase", field="passphrase")
        super().__init__(exchange_id, credentials, **kwargs)  # type: ignore[call-arg]


class OkxConnector(_Okx, Connector):
    """OKX (symbols ``BTC/USDT``, ``BTC/USDT:USDT``, ``BTC/USD:BTC-241227``, options)."""

    def _venue_error(self, exc: BaseException, error: ConnectorError, method: str | None) -> ConnectorError:
        if isinstance(exc, ccxt.ExchangeError) and _NO_PERMISSION.search(str(exc)):
            return PermissionDenied(f"the API key may not do this on okx ({error.message})")
        return error

    @retrying
    def set_position_mode(self, *, hedged: bool) -> dict[str, Any]:
        """Switch the account between net mode (one position per instrument) and
        long/short mode. OKX refuses while positions or orders are open."""
        result = self._call("set_position_mode", hedged)
        return {"hedged": hedged, "info": result}

    def _margin_mode_params(self, margin_mode: str, symbol: str, leverage: int | None) -> dict[str, Any]:
        """OKX sets an instrument's margin mode and leverage together (POST
        /api/v5/account/set-leverage needs ``lever`` with ``mgnMode``). Without ``leverage``
        the instrument's current leverage in that mode is kept (GET /account/leverage-info)."""
        if leverage is None:
            current = self._call("fetch_leverage", symbol, {"marginMode": margin_mode})
            leverage = current.get("longLeverage") or current.get("shortLeverage")
            if not leverage:
                raise InvalidInput(
                    f"OKX reported no leverage for {symbol} in {margin_mode} mode; pass leverage",
                    field="leverage",
                )
        value = _decimal_arg(leverage, "leverage")
        if value != value.to_integral() or not 1 <= value <= 125:
            raise InvalidInput("leverage must be a whole number from 1 to 125 on OKX", field="leverage")
        return {"lever": int(value)}

    @retrying
    def fetch_option_chain(self, underlying: str) -> dict[str, Any]:
        """Every listed option on an underlying currency (``"BTC"``), by symbol."""
        if not isinstance(underlying, str) or not underlying.isalnum():
            raise InvalidInput("underlying must be a currency code such as BTC", field="underlying")
        return to_decimals(self._call("fetch_option_chain", underlying.upper()))  # type: ignore[no-any-return]

    @retrying
    def fetch_permissions(self) -> dict[str, Any]:
        """GET /api/v5/account/config: ``perm`` lists read_only, trade and withdraw."""
        response = self._call("private_get_account_config")
        info = (response.get("data") or [{}])[0]
        perms = {p.strip() for p in str(info.get("perm", "")).split(",") if p.strip()}
        return {
            "read": "read_only" in perms or "trade" in perms or not perms,
            "trade": "trade" in perms,
            "withdraw": "withdraw" in perms,
            "info": {"perm": info.get("perm"), "posMode": info.get("posMode"), "acctLv": info.get("acctLv")},
        }


class OkxStreamConnector(_Okx, StreamConnector):
    """OKX streams (``tickers``, ``books``, ``trades``, ``candle*`` on /ws/v5/public|business)."""
