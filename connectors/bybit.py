"""Bybit (v5, unified account): spot, linear and inverse contracts."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import ccxt

from .base import Connector, StreamConnector, _decimal_arg, _order
from .errors import InvalidInput, InvalidOrder, NoOpenPosition, OrderNotFound
from .retry import retrying
from .types import Order, Position, to_decimals

__all__ = ["BybitConnector", "BybitStreamConnector"]


class _Bybit:
    # Options are not offered on Bybit here; loading them costs a request per underlying.
    market_types: tuple[str, ...] | None = ("spot", "linear", "inverse")
    ccxt_options: dict[str, Any] = {
        "defaultType": "spot",
        # CCXT refuses fetchOrder on unified accounts unless told we know it only sees the
        # last 500 orders; reconciliation asks soon after placing, well within that window.
        "fetchOrder": {"acknowledged": True},
    }
    extra_capabilities: dict[str, bool] = {
        "api_permissions": True,
        "position_mode": False,
        "option_chain": False,
        "trading_stop": True,
        "margin_adjustment": True,
    }
    # orderLinkId: up to 36 characters of letters, digits, "-" and "_".
    client_order_id_pattern: re.Pattern[str] = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


# retCode 110043 "Set leverage not modified": the leverage already is that value. CCXT 4.5
# raises it as BadRequest (bybit.py ``exceptions['exact']``), not as NoChange.
_LEVERAGE_NOT_MODIFIED = re.compile(r'"retCode"\s*:\s*110043\b')
# retCode 10001 "can not set tp/sl/ts for zero position" (CCXT BadRequest, ours InvalidOrder).
_ZERO_POSITION = re.compile(r"zero position", re.IGNORECASE)


class BybitConnector(_Bybit, Connector):
    """Bybit spot, USDT linear and inverse contracts."""

    def _category(self, market: dict[str, Any]) -> str:
        if market.get("spot"):
            return "spot"
        return "inverse" if market.get("inverse") else "linear"

    def _is_unchanged(self, exc: BaseException) -> bool:
        if isinstance(exc, ccxt.BadRequest) and _LEVERAGE_NOT_MODIFIED.search(str(exc)):
            return True
        return super()._is_unchanged(exc)

    @retrying
    def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open positions of linear and inverse contracts, optionally for some symbols only.

        GET /v5/position/list answers one ``category`` per request (spot has no positions and
        is refused with 10001 "Illegal category"), and a linear request needs a ``symbol`` or
        a ``settleCoin``. CCXT takes the category from a symbol, or else from the instance's
        ``defaultType`` (spot here), and accepts one symbol at most. So, as ccxt.pro's
        positions snapshot does (bybit ``load_positions_snapshot``: linear and inverse,
        merged): without symbols, ask linear once per settle coin of the loaded linear
        markets (USDT, USDC) and inverse once; with symbols, ask each symbol (Bybit then also
        lists a flat row, ``contracts`` 0, for a symbol without a position). Up to 200
        positions per request (CCXT's limit; later pages are not fetched)."""
        if symbols is not None:
            markets = [self._require_contract(symbol) for symbol in symbols]
            requests: list[tuple[list[str] | None, dict[str, Any]]] = [([m["symbol"]], {}) for m in markets]
        else:
            loaded = self._ensure_markets().values()
            settles = sorted({m["settle"] for m in loaded if m.get("linear") and m.get("settle")})
            requests = [(None, {"type": "swap", "subType": "linear", "settleCoin": coin}) for coin in settles]
            requests.append((None, {"type": "swap", "subType": "inverse"}))
        positions: list[Any] = []
        for asked, params in requests:
            positions.extend(self._call("fetch_positions", asked, params))
        return to_decimals(positions)  # type: ignore[no-any-return]

    @retrying
    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order:
        """GET /v5/order/realtime?orderLinkId=… (open and recent orders), then
        /v5/order/history: CCXT's fetchOrder only takes the venue's order id."""
        market = self.market(symbol)
        self._client_order_id(client_order_id)
        request = {"category": self._category(market), "symbol": market["id"], "orderLinkId": client_order_id}
        for endpoint in ("private_get_v5_order_realtime", "private_get_v5_order_history"):
            response = self._call(endpoint, request)
            rows = (response.get("result") or {}).get("list") or []
            if rows:
                return _order(self.exchange.parse_order(rows[0], market), client_order_id)
        raise OrderNotFound(f"no order with client id {client_order_id} on bybit")

    @retrying
    def set_trading_stop(
        self,
        symbol: str,
        *,
        take_profit: Decimal | str | None = None,
        stop_loss: Decimal | str | None = None,
    ) -> dict[str, Any]:
        """Set (or with 0 clear) take-profit and stop-loss prices on the whole position of a
        contract market: POST /v5/position/trading-stop (one-way mode, full position).
        Without an open position Bybit refuses (10001 "can not set tp/sl/ts for zero
        position"): that is :class:`NoOpenPosition` naming the symbol."""
        market = self._require_contract(symbol)
        if take_profit is None and stop_loss is None:
            raise InvalidInput("give take_profit, stop_loss or both", field="take_profit")
        request: dict[str, Any] = {
            "category": self._category(market),
            "symbol": market["id"],
            "tpslMode": "Full",
            "positionIdx": 0,
        }
        for field, value in (("take_profit", take_profit), ("stop_loss", stop_loss)):
            if value is not None:
                price = _decimal_arg(value, field, positive=False)
                if price < 0:
                    raise InvalidInput(f"{field} must not be negative", field=field)
                key = "takeProfit" if field == "take_profit" else "stopLoss"
                request[key] = self.exchange.price_to_precision(symbol, str(price)) if price else "0"
        try:
            response = self._call("private_post_v5_position_trading_stop", request, order_operation=True)
        except InvalidOrder as refused:
            if _ZERO_POSITION.search(refused.message):
                raise NoOpenPosition(
                    f"{symbol} has no open position: open one before setting take-profit or stop-loss"
                ) from refused
            raise
        return {"symbol": symbol, "takeProfit": take_profit, "stopLoss": stop_loss, "info": response}

    def adjust_margin(self, symbol: str, amount: Decimal | str) -> dict[str, Any]:
        """Add (positive) or remove (negative) isolated margin on a position:
        POST /v5/position/add-margin with the signed ``margin`` (one-way mode). CCXT 4.5 has
        no unified addMargin for Bybit, so the endpoint is called directly. Not retried: a
        lost answer could mean it was applied."""
        market = self._require_contract(symbol)
        value = _decimal_arg(amount, "amount", positive=False)
        if value == 0:
            raise InvalidInput("amount must not be zero", field="amount")
        request = {
            "category": self._category(market),
            "symbol": market["id"],
            "margin": format(value.normalize(), "f"),
            "positionIdx": 0,
        }
        response = self._call("private_post_v5_position_add_margin", request, order_operation=True)
        return {
            "symbol": symbol,
            "amount": value,
            "type": "add" if value > 0 else "reduce",
            "info": (response or {}).get("result"),
        }

    @retrying
    def fetch_permissions(self) -> dict[str, Any]:
        """GET /v5/user/query-api: ``readOnly`` and the permission groups of the key."""
        response = self._call("private_get_v5_user_query_api")
        info = response.get("result") or {}
        permissions: dict[str, list[str]] = info.get("permissions") or {}
        flat = {p for group in permissions.values() if isinstance(group, list) for p in group}
        read_only = str(info.get("readOnly")) == "1"
        trade_groups = ("ContractTrade", "Spot", "Options", "Derivatives")
        trade = not read_only and any(permissions.get(g) for g in trade_groups)
        return {
            "read": True,
            "trade": trade,
            "withdraw": "Withdraw" in flat,
            "info": {"readOnly": info.get("readOnly"), "permissions": permissions, "ips": info.get("ips")},
        }


class BybitStreamConnector(_Bybit, StreamConnector):
    """Bybit streams (``tickers``, ``orderbook``, ``publicTrade``, ``kline`` topics)."""
