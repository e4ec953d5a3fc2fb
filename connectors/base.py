"""The base connector: CCXT's unified operations behind our errors, types and validation.

One class per face:

* :class:`Connector`, synchronous (views, Celery tasks, the admin). It wraps one plain
  ``ccxt`` instance that belongs to one thread (the factory caches instances per thread).
* :class:`StreamConnector`, asynchronous (the stream manager). It wraps one ``ccxt.pro``
  instance that belongs to one event loop, and offers the ``watch_*`` streams.

Both take markets from the process-wide :data:`~connectors.markets.market_store`, so
markets are loaded once per (exchange, environment) and never per call. Venue modules
subclass :class:`Connector` (and optionally :class:`StreamConnector`) and override only
class attributes and the few methods where the venue differs.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import secrets as _secrets
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import ccxt
import ccxt.pro

from . import circuit
from .credentials import Credentials
from .emulator_urls import emulator_host_url, repoint_url_tree
from .environments import Environment
from .errors import (
    BadSymbol,
    ConnectorError,
    InvalidInput,
    NotSupported,
    OrderNotFound,
    parse_retry_after,
    scrub,
    scrubbed_copy,
    translate,
)
from .markets import MarketSet, market_store
from .retry import retrying
from .types import (
    Balance,
    BalanceEntry,
    FundingRate,
    Order,
    OrderBook,
    Position,
    Ticker,
    Trade,
    to_decimal,
    to_decimals,
)

__all__ = ["CCXT_CAPABILITIES", "Connector", "ConnectorConfig", "StreamConnector"]

logger = logging.getLogger("connectors")

# Our operation name -> the CCXT ``has`` key that says whether the venue offers it.
CCXT_CAPABILITIES: dict[str, str] = {
    "fetch_ticker": "fetchTicker",
    "fetch_tickers": "fetchTickers",
    "fetch_order_book": "fetchOrderBook",
    "fetch_trades": "fetchTrades",
    "fetch_ohlcv": "fetchOHLCV",
    "fetch_funding_rate": "fetchFundingRate",
    "fetch_funding_rates": "fetchFundingRates",
    "fetch_balance": "fetchBalance",
    "create_order": "createOrder",
    "cancel_order": "cancelOrder",
    "fetch_order": "fetchOrder",
    "fetch_open_orders": "fetchOpenOrders",
    "fetch_closed_orders": "fetchClosedOrders",
    "fetch_my_trades": "fetchMyTrades",
    "fetch_positions": "fetchPositions",
    "set_leverage": "setLeverage",
    "set_margin_mode": "setMarginMode",
    "watch_ticker": "watchTicker",
    "watch_order_book": "watchOrderBook",
    "watch_trades": "watchTrades",
    "watch_ohlcv": "watchOHLCV",
}

_TIMEFRAME = re.compile(r"^[1-9][0-9]{0,2}[smhdwM]$")

# CCXT methods that change state at the venue; implicit endpoint methods are writes when
# their HTTP method is (``private_post_v5_position_trading_stop``). See :func:`is_write`.
_WRITE_METHODS = frozenset(
    {
        "create_order",
        "create_orders",
        "edit_order",
        "cancel_order",
        "cancel_orders",
        "cancel_all_orders",
        "set_leverage",
        "set_margin_mode",
        "set_position_mode",
        "add_margin",
        "reduce_margin",
    }
)
_WRITE_ENDPOINT = re.compile(r"_(?:post|put|delete)_")


def is_write(method: str | None) -> bool:
    """Whether a CCXT method (unified or implicit endpoint) changes state at the venue."""
    return method is not None and (method in _WRITE_METHODS or bool(_WRITE_ENDPOINT.search(method)))


# CCXT's precision modes (ccxt.base.decimal_to_precision).
_DECIMAL_PLACES, _SIGNIFICANT_DIGITS, _TICK_SIZE = 2, 3, 4


class ConnectorConfig:
    """What both faces share: how a CCXT instance for one venue is built and configured."""

    #: CCXT options merged into the instance's ``options`` (venue modules add theirs).
    ccxt_options: ClassVar[dict[str, Any]] = {}
    #: Market types to load (CCXT ``fetchMarkets.types``); None keeps CCXT's default.
    market_types: ClassVar[tuple[str, ...] | None] = None
    #: Our operations beyond CCXT's ``has`` (venue extras), reported by ``capabilities()``.
    extra_capabilities: ClassVar[dict[str, bool]] = {}
    #: Client order ids we generate and accept: conservative default (OKX: 1-32 alphanumerics).
    client_order_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9]{1,32}$")
    #: The venue's circuit (:mod:`connectors.circuit`): consecutive ExchangeUnavailable
    #: answers that open it (0: never for failures), the first cool-down, doubled on each
    #: re-open up to the cap, and what callers are told to wait while a probe is in flight.
    circuit_failure_threshold: int = 5
    circuit_cooldown: float = 5.0
    circuit_cooldown_cap: float = 60.0
    circuit_probe_wait: float = 1.0

    def __init__(
        self,
        exchange_id: str,
        credentials: Credentials | None = None,
        *,
        environment: Environment = Environment.LIVE,
        emulator_url: str | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.environment = Environment(environment)
        self.emulator_url = emulator_url.rstrip("/") if emulator_url else None
        self._credentials = credentials
        self._secrets: tuple[str, ...] = credentials.secret_values() if credentials else ()
        self._market_version: int | None = None

    def __repr__(self) -> str:
        keyed = "with credentials" if self._credentials else "public"
        return f"<{type(self).__name__} {self.exchange_id} {self.environment.value} {keyed}>"

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    @property
    def market_key(self) -> tuple[str, str, str]:
        return (self.exchange_id, self.environment.value, self.emulator_url or "")

    # ------------------------------------------------------------------ building CCXT

    def build_exchange(self, *, pro: bool, with_credentials: bool = True) -> Any:
        """A configured CCXT instance for this venue and environment (never verbose, never
        retrying on its own, every URL on the emulator in the emulator environment)."""
        module = ccxt.pro if pro else ccxt
        klass = getattr(module, self.exchange_id, None)
        if klass is None:
            raise NotSupported(f"{self.exchange_id} has no {'streaming' if pro else 'REST'} support in CCXT")
        options = copy.deepcopy(self.ccxt_options)
        options["maxRetriesOnFailure"] = 0  # retries are ours, and never on order placement
        if self.market_types is not None:
            options.setdefault("fetchMarkets", {})["types"] = list(self.market_types)
        config: dict[str, Any] = {"enableRateLimit": True, "verbose": False, "options": options}
        if with_credentials and self._credentials is not None:
            config.update(self._credentials.ccxt_config())
        exchange = klass(config)
        # CCXT logs every request with its headers and body at DEBUG (API keys, signatures,
        # OKX passphrases): route its logger through one that scrubs them.
        exchange.logger = _ScrubbingLogger(self._secrets)
        if self.environment is Environment.SANDBOX:
            # Some venues carry urls['test'] = None, which CCXT's set_sandbox_mode trips over.
            if not exchange.urls.get("test"):
                raise NotSupported(f"{self.exchange_id} has no sandbox (testnet) environment")
            exchange.set_sandbox_mode(True)
        elif self.environment is Environment.EMULATOR:
            self._point_at_emulator(exchange, pro=pro)
        if not pro:
            circuit.guard(exchange, self)  # every REST request passes the venue's circuit
        return exchange

    def _point_at_emulator(self, exchange: Any, *, pro: bool) -> None:
        if not self.emulator_url or not re.match(r"^https?://", self.emulator_url):
            raise NotSupported("the emulator environment needs emulator_url (settings.EMULATOR_URL)")
        exchange.urls["api"] = repoint_url_tree(exchange.urls["api"], self.emulator_url)
        # A venue that builds a URL outside urls['api'] must fail loudly, not reach the internet.
        http_prefix = self.emulator_url + "/"
        ws_prefix = emulator_host_url(self.emulator_url, "", websocket=True)
        exchange_id = self.exchange_id
        original_fetch = exchange.fetch
        if pro:

            async def guarded_fetch(
                url: str, method: str = "GET", headers: Any = None, body: Any = None
            ) -> Any:
                if not url.startswith(http_prefix):
                    raise ccxt.NotSupported(f"{exchange_id}: request outside the emulator refused")
                return await original_fetch(url, method, headers, body)

            original_client = exchange.client

            def guarded_client(url: str) -> Any:
                if not url.startswith(ws_prefix):
                    raise ccxt.NotSupported(f"{exchange_id}: websocket outside the emulator refused")
                return original_client(url)

            exchange.client = guarded_client
            exchange.fetch = guarded_fetch
        else:

            def guarded_fetch_sync(
                url: str, method: str = "GET", headers: Any = None, body: Any = None
            ) -> Any:
                if not url.startswith(http_prefix):
                    raise ccxt.NotSupported(f"{exchange_id}: request outside the emulator refused")
                return original_fetch(url, method, headers, body)

            exchange.fetch = guarded_fetch_sync

    # ------------------------------------------------------------------ markets

    def _load_market_source(self) -> Any:
        """Load markets on a fresh credential-less sync instance (public endpoints only)."""
        source = self.build_exchange(pro=False, with_credentials=False)
        self._translated(source, "load_markets")
        return source

    def _translated(self, exchange: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a sync CCXT method and translate whatever it raises."""
        try:
            return getattr(exchange, method)(*args, **kwargs)
        except Exception as exc:
            error, cause = self._translate(exc, exchange, method=method)
        raise error from cause

    def _translate(
        self,
        exc: BaseException,
        exchange: Any,
        *,
        placing: bool = False,
        client_order_id: str | None = None,
        order_operation: bool = False,
        method: str | None = None,
    ) -> tuple[ConnectorError, BaseException | None]:
        retry_after = None
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            headers = getattr(exchange, "last_response_headers", None) or {}
            retry_after = parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)
        error = translate(
            exc,
            secrets=self._secrets,
            placing=placing,
            placing_client_order_id=client_order_id,
            order_operation=order_operation,
            retry_after=retry_after,
        )
        error = self._venue_error(exc, error, method)
        log = logger.warning if placing else logger.info
        log("%s %s: %s -> %s", self.exchange_id, self.environment.value, type(exc).__name__, error.code)
        if error is exc:
            return error, None
        return error, scrubbed_copy(exc, self._secrets)

    def _venue_error(self, exc: BaseException, error: ConnectorError, method: str | None) -> ConnectorError:
        """A venue module's own reading of an error CCXT classifies too coarsely (``method``:
        the CCXT method that raised it, when known). The default keeps :func:`translate`'s."""
        return error

    def _adopt_markets(self, exchange: Any, market_set: MarketSet) -> None:
        if self._market_version != market_set.version:
            exchange.set_markets_from_exchange(market_set.source)
            self._market_version = market_set.version

    # ------------------------------------------------------------------ shared helpers

    def capabilities(self) -> dict[str, bool]:
        """Which operations this venue offers here: CCXT's ``has`` plus our own extras."""
        has = dict(self._capability_source().has)
        has.update({k: v for k, v in _streaming_has(self.exchange_id).items() if k.startswith("watch")})
        report = {ours: bool(has.get(theirs)) for ours, theirs in CCXT_CAPABILITIES.items()}
        report["fetch_order_by_client_id"] = report["fetch_order"]
        report["sandbox"] = bool(self._capability_source().urls.get("test"))
        report["emulator"] = True
        report.update(self.extra_capabilities)
        return report

    def _capability_source(self) -> Any:
        raise NotImplementedError

    def new_client_order_id(self) -> str:
        """A fresh client order id valid on every venue we support (32 alphanumerics)."""
        return "ec" + _secrets.token_hex(15)


class _ScrubbingLogger:
    """Stands in for CCXT's module logger on our instances: renders the record, masks the
    instance's secrets and secret-shaped fragments, and logs it under ``connectors.ccxt``."""

    _logger = logging.getLogger("connectors.ccxt")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets

    def log(self, level: int, msg: Any, *args: Any, **_: Any) -> None:
        if not self._logger.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        self._logger.log(level, "%s", scrub(text, self._secrets))

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args)


@functools.lru_cache(maxsize=64)
def _streaming_has(exchange_id: str) -> dict[str, Any]:
    """CCXT Pro's ``has`` for a venue (what the async face can watch); {} without Pro support."""
    klass = getattr(ccxt.pro, exchange_id, None)
    return dict(klass().describe().get("has", {})) if klass is not None else {}


def _decimal_arg(value: Any, field: str, *, positive: bool = True) -> Decimal:
    """Parse a money/quantity argument; floats are accepted through ``str`` (no binary noise)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{field} is required and must be a number", field=field)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a number, got {str(value)[:40]!r}", field=field) from None
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite number", field=field)
    if positive and number <= 0:
        raise InvalidInput(f"{field} must be greater than zero", field=field)
    return number


def _check_precision(value: Decimal, precision: Any, mode: int, field: str, symbol: str) -> None:
    step = to_decimal(precision)
    if step is None:
        return
    if mode == _TICK_SIZE:
        if step > 0 and value % step != 0:
            raise InvalidInput(
                f"{field} {value} is not a multiple of {symbol}'s step {step.normalize()}", field=field
            )
    elif mode == _DECIMAL_PLACES:
        places = int(step)
        if places >= 0 and value != value.quantize(Decimal(1).scaleb(-places)):
            raise InvalidInput(f"{field} {value} has more than {places} decimals for {symbol}", field=field)
    elif mode == _SIGNIFICANT_DIGITS:
        digits = len(value.normalize().as_tuple().digits)
        if digits > int(step):
            raise InvalidInput(
                f"{field} {value} has more than {int(step)} significant digits for {symbol}", field=field
            )


def _check_limits(value: Decimal, limits: dict[str, Any] | None, field: str, what: str, symbol: str) -> None:
    limits = limits or {}
    low, high = to_decimal(limits.get("min")), to_decimal(limits.get("max"))
    if low is not None and value < low:
        raise InvalidInput(f"{what} {value} is below {symbol}'s minimum {low.normalize()}", field=field)
    if high is not None and high > 0 and value > high:
        raise InvalidInput(f"{what} {value} is above {symbol}'s maximum {high.normalize()}", field=field)


def _order(raw: dict[str, Any], client_order_id: str | None = None) -> Order:
    order: Any = to_decimals(raw)
    if client_order_id and not order.get("clientOrderId"):
        order["clientOrderId"] = client_order_id
    return order  # type: ignore[no-any-return]


def _levels(rows: list[list[Any]]) -> list[list[Decimal]]:
    levels: list[list[Decimal]] = []
    for price, amount, *_ in rows:
        p, a = to_decimal(price), to_decimal(amount)
        if p is not None and a is not None:
            levels.append([p, a])
    return levels


def _book(raw: dict[str, Any]) -> OrderBook:
    return {
        "symbol": str(raw.get("symbol")),
        "bids": _levels(raw.get("bids") or []),
        "asks": _levels(raw.get("asks") or []),
        "timestamp": raw.get("timestamp"),
        "nonce": raw.get("nonce"),
    }


class Connector(ConnectorConfig):
    """Synchronous connector over one plain CCXT instance. Not thread-safe: get one per
    thread from :func:`connectors.create_connector` (which caches them that way).

    Reads retry :class:`~connectors.errors.TemporaryError` (``retries`` times, exponential
    backoff from ``backoff_base`` capped at ``backoff_cap``, at least the venue's
    Retry-After unless it exceeds ``max_retry_after``). Order placement never retries.
    """

    retries = 3
    backoff_base = 0.5
    backoff_cap = 8.0
    max_retry_after = 10.0

    def __init__(self, exchange_id: str, credentials: Credentials | None = None, **kwargs: Any) -> None:
        super().__init__(exchange_id, credentials, **kwargs)
        self.exchange = self.build_exchange(pro=False)

    def _capability_source(self) -> Any:
        return self.exchange

    # ------------------------------------------------------------------ plumbing

    def _call(
        self,
        method: str,
        *args: Any,
        placing: bool = False,
        client_order_id: str | None = None,
        order_operation: bool = False,
        unchanged_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call a CCXT method with markets in place; every error comes out translated
        (``unchanged_ok``: a venue answer "already set" raises ``_AlreadySet`` instead)."""
        self._ensure_markets()
        try:
            return getattr(self.exchange, method)(*args, **kwargs)
        except Exception as exc:
            if unchanged_ok and self._is_unchanged(exc):
                raise _AlreadySet() from None
            error, cause = self._translate(
                exc,
                self.exchange,
                placing=placing,
                client_order_id=client_order_id,
                order_operation=order_operation,
                method=method,
            )
        raise error from cause

    # ------------------------------------------------------------------ markets

    @retrying
    def load_markets(self) -> dict[str, Any]:
        """The venue's markets (unified CCXT market structures by symbol), loaded once per
        process for this exchange and environment and shared with every instance."""
        return self._ensure_markets()

    def _ensure_markets(self) -> dict[str, Any]:
        # Not retried itself: the public operation calling it retries as a whole.
        market_set = market_store.peek(self.market_key) or market_store.get(
            self.market_key, self._load_market_source
        )
        self._adopt_markets(self.exchange, market_set)
        return market_set.markets

    @retrying
    def refresh_markets(self) -> dict[str, Any]:
        """Load the markets again from the venue (new listings, changed limits) for every
        instance of this exchange and environment."""
        seen = self._market_version
        market_set = market_store.refresh(self.market_key, self._load_market_source, seen_version=seen)
        self._adopt_markets(self.exchange, market_set)
        return market_set.markets

    def market(self, symbol: str) -> dict[str, Any]:
        """The market for a unified symbol; :class:`BadSymbol` if the venue has none."""
        markets = self._ensure_markets()
        if not isinstance(symbol, str) or symbol not in markets:
            raise BadSymbol(f"{str(symbol)[:60]!r} is not a market of {self.exchange_id}")
        return markets[symbol]  # type: ignore[no-any-return]

    def _symbols(self, symbols: list[str] | None) -> list[str] | None:
        if symbols is None:
            return None
        return [self.market(s)["symbol"] for s in symbols]

    # ------------------------------------------------------------------ market data

    @retrying
    def fetch_ticker(self, symbol: str) -> Ticker:
        """Last price, best bid/ask and 24 h statistics for one market."""
        self.market(symbol)
        return to_decimals(self._call("fetch_ticker", symbol))  # type: ignore[no-any-return]

    @retrying
    def fetch_tickers(self, symbols: list[str] | None = None) -> dict[str, Ticker]:
        """Tickers by symbol, for the given markets or all of them."""
        return to_decimals(self._call("fetch_tickers", self._symbols(symbols)))  # type: ignore[no-any-return]

    @retrying
    def fetch_order_book(self, symbol: str, limit: int | None = None) -> OrderBook:
        """Bids and asks as ``[price, amount]`` rows, best first."""
        self.market(symbol)
        return _book(self._call("fetch_order_book", symbol, limit))

    @retrying
    def fetch_trades(self, symbol: str, since: int | None = None, limit: int | None = None) -> list[Trade]:
        """The market's recent public trades, oldest first."""
        self.market(symbol)
        return to_decimals(self._call("fetch_trades", symbol, since, limit))  # type: ignore[no-any-return]

    @retrying
    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
    ) -> list[list[Any]]:
        """Candles ``[timestamp ms, open, high, low, close, volume]``, oldest first."""
        self.market(symbol)
        if not isinstance(timeframe, str) or not _TIMEFRAME.match(timeframe):
            raise InvalidInput(
                f"timeframe {str(timeframe)[:10]!r} is not a timeframe like 1m, 1h, 1d", field="timeframe"
            )
        if timeframe not in (self.exchange.timeframes or {}):
            raise InvalidInput(f"{self.exchange_id} has no {timeframe} candles", field="timeframe")
        return to_decimals(self._call("fetch_ohlcv", symbol, timeframe, since, limit))  # type: ignore[no-any-return]

    @retrying
    def fetch_funding_rate(self, symbol: str) -> FundingRate:
        """Current and next funding rate of a perpetual swap."""
        self._require_contract(symbol)
        return to_decimals(self._call("fetch_funding_rate", symbol))  # type: ignore[no-any-return]

    @retrying
    def fetch_funding_rates(self, symbols: list[str] | None = None) -> dict[str, FundingRate]:
        """Funding rates by symbol for the given perpetual swaps (or all)."""
        return to_decimals(self._call("fetch_funding_rates", self._symbols(symbols)))  # type: ignore[no-any-return]

    def _require_contract(self, symbol: str) -> dict[str, Any]:
        market = self.market(symbol)
        if not market.get("contract"):
            raise InvalidInput(f"{symbol} is a spot market; this needs a swap or future", field="symbol")
        return market

    # ------------------------------------------------------------------ account

    @retrying
    def fetch_balance(self, *, account_type: str | None = None) -> Balance:
        """Balances per currency (free, used, total); ``account_type`` selects a venue
        account where there are several (e.g. ``"spot"``, ``"swap"``, ``"future"``)."""
        params = {"type": account_type} if account_type else {}
        raw = self._call("fetch_balance", params)
        balances: dict[str, BalanceEntry] = {}
        for code, entry in raw.items():
            if isinstance(entry, dict) and code not in ("info", "free", "used", "total", "debt"):
                balances[code] = {
                    "free": to_decimal(entry.get("free")),
                    "used": to_decimal(entry.get("used")),
                    "total": to_decimal(entry.get("total")),
                }
        return {"timestamp": raw.get("timestamp"), "balances": balances}

    @retrying
    def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        """Open positions (swaps, futures, options), optionally for some symbols only."""
        return to_decimals(self._call("fetch_positions", self._symbols(symbols)))  # type: ignore[no-any-return]

    @retrying
    def set_leverage(self, leverage: int | Decimal | str, symbol: str) -> dict[str, Any]:
        """Set the leverage of a contract market. Safe to repeat: the leverage already being
        that value is success (``changed`` is False), not an error."""
        self._require_contract(symbol)
        value = _decimal_arg(leverage, "leverage")
        limits = (self.market(symbol).get("limits") or {}).get("leverage")
        _check_limits(value, limits, "leverage", "leverage", symbol)
        number = int(value) if value == value.to_integral() else float(value)
        try:
            result = self._call_unchanged_ok("set_leverage", number, symbol)
        except _AlreadySet:
            return {"symbol": symbol, "leverage": value, "changed": False, "info": None}
        return {"symbol": symbol, "leverage": value, "changed": True, "info": result}

    @retrying
    def set_margin_mode(
        self, margin_mode: str, symbol: str, *, leverage: int | None = None
    ) -> dict[str, Any]:
        """Set ``"cross"`` or ``"isolated"`` margin for a contract market. Already being in
        that mode is success (``changed`` is False), not an error. ``leverage`` is sent along
        where the venue sets both at once (OKX; without it OKX keeps the current leverage)."""
        if margin_mode not in ("cross", "isolated"):
            raise InvalidInput("margin_mode must be 'cross' or 'isolated'", field="margin_mode")
        self._require_contract(symbol)
        params = self._margin_mode_params(margin_mode, symbol, leverage)
        try:
            result = self._call_unchanged_ok("set_margin_mode", margin_mode, symbol, params)
        except _AlreadySet:
            return {"symbol": symbol, "marginMode": margin_mode, "changed": False, "info": None}
        return {"symbol": symbol, "marginMode": margin_mode, "changed": True, "info": result}

    def _margin_mode_params(self, margin_mode: str, symbol: str, leverage: int | None) -> dict[str, Any]:
        """CCXT parameters for ``set_margin_mode`` (venues that need more override this)."""
        return {"leverage": leverage} if leverage is not None else {}

    def _call_unchanged_ok(self, method: str, *args: Any) -> Any:
        """``_call`` for a setting, raising ``_AlreadySet`` when the venue answers that it
        already has that value (see :meth:`_is_unchanged`)."""
        return self._call(method, *args, unchanged_ok=True)

    def _is_unchanged(self, exc: BaseException) -> bool:
        """Whether a CCXT error says "already set" (CCXT's ``NoChange``: Binance -4046, OKX
        and Bybit margin mode). Venue modules add the codes CCXT maps to something else."""
        return isinstance(exc, ccxt.NoChange)

    # ------------------------------------------------------------------ orders

    def validate_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Any,
        price: Any = None,
    ) -> tuple[dict[str, Any], Decimal, Decimal | None]:
        """Check an order against the market before anything is sent: known symbol, side,
        type, positive amount (and price for limit orders), the market's limits and
        precision. Raises :class:`InvalidInput` naming the field, or :class:`BadSymbol`."""
        market = self.market(symbol)
        if market.get("active") is False:
            raise InvalidInput(f"{symbol} is not trading now", field="symbol")
        if side not in ("buy", "sell"):
            raise InvalidInput("side must be 'buy' or 'sell'", field="side")
        if type not in ("limit", "market"):
            raise InvalidInput("type must be 'limit' or 'market'", field="type")
        qty = _decimal_arg(amount, "amount")
        limit_price = None
        if type == "limit" or price is not None:
            limit_price = _decimal_arg(price, "price")
        mode = self.exchange.precisionMode
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        _check_precision(qty, precision.get("amount"), mode, "amount", symbol)
        _check_limits(qty, limits.get("amount"), "amount", "amount", symbol)
        if limit_price is not None:
            _check_precision(limit_price, precision.get("price"), mode, "price", symbol)
            _check_limits(limit_price, limits.get("price"), "price", "price", symbol)
            if not market.get("contract"):
                _check_limits(qty * limit_price, limits.get("cost"), "amount", "order value", symbol)
        return market, qty, limit_price

    def _client_order_id(self, client_order_id: str | None) -> str:
        if client_order_id is None:
            return self.new_client_order_id()
        if not isinstance(client_order_id, str) or not self.client_order_id_pattern.match(client_order_id):
            raise InvalidInput(
                f"client_order_id must match {self.client_order_id_pattern.pattern} on {self.exchange_id}",
                field="client_order_id",
            )
        return client_order_id

    def order_params(
        self, market: dict[str, Any], client_order_id: str, *, reduce_only: bool
    ) -> dict[str, Any]:
        """Venue parameters for a new order (CCXT's unified ``clientOrderId`` maps to
        Binance newClientOrderId, OKX clOrdId and Bybit orderLinkId)."""
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if reduce_only:
            params["reduceOnly"] = True
        return params

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal | str | int,
        price: Decimal | str | int | None = None,
        *,
        client_order_id: str | None = None,
        reduce_only: bool = False,
    ) -> Order:
        """Validate and place one order, exactly once.

        Never retried: a timeout, dropped connection, 5xx or unreadable answer raises
        :class:`~connectors.errors.OutcomeUnknown` carrying the client order id (generated
        here when not given) so the caller can reconcile with
        :meth:`fetch_order_by_client_id`. Store the client order id before calling.
        """
        market, qty, limit_price = self.validate_order(symbol, type, side, amount, price)
        coid = self._client_order_id(client_order_id)
        params = self.order_params(market, coid, reduce_only=reduce_only)
        logger.info(
            "%s %s: placing %s %s %s %s (client id %s)",
            self.exchange_id,
            self.environment.value,
            type,
            side,
            qty,
            symbol,
            coid,
        )
        raw = self._call(
            "create_order",
            symbol,
            type,
            side,
            float(qty),
            float(limit_price) if limit_price is not None else None,
            params,
            placing=True,
            client_order_id=coid,
            order_operation=True,
        )
        return _order(raw, coid)

    def cancel_order(self, order_id: str, symbol: str) -> Order:
        """Cancel an open order. Not retried automatically: on a temporary error, fetch the
        order to see whether the cancel went through before cancelling again."""
        self.market(symbol)
        return _order(self._call("cancel_order", str(order_id), symbol, order_operation=True))

    @retrying
    def fetch_order(self, order_id: str, symbol: str) -> Order:
        """One order by the venue's id."""
        self.market(symbol)
        return _order(self._call("fetch_order", str(order_id), symbol, order_operation=True))

    @retrying
    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> Order:
        """One order by our client order id: how an ``unknown`` order is reconciled.
        Raises :class:`OrderNotFound` when the venue never received it."""
        self.market(symbol)
        self._client_order_id(client_order_id)
        raw = self._call(
            "fetch_order", None, symbol, {"clientOrderId": client_order_id}, order_operation=True
        )
        if not raw or not raw.get("id"):
            raise OrderNotFound(f"no order with client id {client_order_id} on {self.exchange_id}")
        return _order(raw, client_order_id)

    @retrying
    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Open orders, for one market or (where the venue allows) all."""
        return [_order(o) for o in self._history("fetch_open_orders", symbol, since, limit)]

    @retrying
    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Filled and cancelled orders, newest last."""
        return [_order(o) for o in self._history("fetch_closed_orders", symbol, since, limit)]

    @retrying
    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[Trade]:
        """The account's own fills."""
        return to_decimals(self._history("fetch_my_trades", symbol, since, limit))  # type: ignore[no-any-return]

    def _history(self, method: str, symbol: str | None, since: int | None, limit: int | None) -> Any:
        # A symbol is checked against our markets first (an unknown one never reaches the
        # venue); None asks for every market, where the venue allows it.
        if symbol is not None:
            self.market(symbol)
        return self._call(method, symbol, since, limit)

    # ------------------------------------------------------------------ connection check

    @retrying
    def fetch_permissions(self) -> dict[str, Any]:
        """What the keys may do, as far as the venue tells: ``read``, ``trade``,
        ``withdraw`` (True/False/None = unknown) and the venue's raw answer. The base
        version proves the keys can read by fetching the balance."""
        self._call("fetch_balance")
        return {"read": True, "trade": None, "withdraw": None, "info": None}

    def close(self) -> None:
        """Drop the HTTP session (the factory makes a new instance on next use)."""
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()


class _AlreadySet(Exception):
    pass


class StreamConnector(ConnectorConfig):
    """Asynchronous connector over one ``ccxt.pro`` instance, for the stream manager.

    Belongs to one event loop (the factory caches instances per loop). Each ``watch_*``
    returns the next update (CCXT keeps the subscription and the local book); errors come
    out translated. Reconnecting with backoff is the caller's job; call :meth:`close` when
    done.
    """

    def __init__(self, exchange_id: str, credentials: Credentials | None = None, **kwargs: Any) -> None:
        super().__init__(exchange_id, credentials, **kwargs)
        self.exchange = self.build_exchange(pro=True)
        self.closed = False

    def _capability_source(self) -> Any:
        return self.exchange

    async def load_markets(self) -> dict[str, Any]:
        """Markets from the shared store; the first load runs in a worker thread so the
        event loop never blocks on it."""
        import asyncio

        market_set = market_store.peek(self.market_key)
        if market_set is None:
            market_set = await asyncio.to_thread(market_store.get, self.market_key, self._load_market_source)
        self._adopt_markets(self.exchange, market_set)
        return market_set.markets

    async def _watch(self, method: str, symbol: str, *args: Any) -> Any:
        markets = await self.load_markets()
        if not isinstance(symbol, str) or symbol not in markets:
            raise BadSymbol(f"{str(symbol)[:60]!r} is not a market of {self.exchange_id}")
        try:
            return await getattr(self.exchange, method)(symbol, *args)
        except Exception as exc:
            error, cause = self._translate(exc, self.exchange)
        raise error from cause

    async def watch_ticker(self, symbol: str) -> Ticker:
        """The next ticker update for a market."""
        return to_decimals(await self._watch("watch_ticker", symbol))  # type: ignore[no-any-return]

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> OrderBook:
        """The local order book after the next update (CCXT applies diffs and resyncs)."""
        return _book(await self._watch("watch_order_book", symbol, limit))

    async def watch_trades(self, symbol: str) -> list[Trade]:
        """Public trades received since the last call."""
        return to_decimals(await self._watch("watch_trades", symbol))  # type: ignore[no-any-return]

    async def watch_ohlcv(self, symbol: str, timeframe: str = "1m") -> list[list[Any]]:
        """Candles updated by the next message."""
        if not isinstance(timeframe, str) or not _TIMEFRAME.match(timeframe):
            raise InvalidInput("timeframe must look like 1m, 1h, 1d", field="timeframe")
        return to_decimals(await self._watch("watch_ohlcv", symbol, timeframe))  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Close every websocket and the HTTP session of this instance (once: CCXT's close
        waits out its exit timeout every time, and shutdown closes connectors from two places)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.exchange.close()
        except Exception:
            logger.info("%s: error while closing streams ignored", self.exchange_id)
