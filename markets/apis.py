"""Market-data endpoints (/api/v1/exchanges/..., /api/v1/markets/...): public data, scope ``market:read``.

One APIView per operation: validate the query (InputSerializer) -> selector (cache-first) ->
OutputSerializer. Errors need no handling here: input and venue errors, and an outage of our
cache or database (a 503), reach the envelope through ``connector_site/api_errors.py``. While
the venue fails, the selectors answer with the last value held, flagged ``stale``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasTokenScope
from connectors import SUPPORTED_EXCHANGES
from markets import selectors
from markets.cache import SOURCES, MarketDataEntry
from markets.schema import ERROR_RESPONSES, DecimalString, Millis, Text
from markets.throttling import TokenRateThrottle
from markets.venues import exchange_resolve, market_data_environment

logger = logging.getLogger(__name__)

SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)?$")
SYMBOL_HELP = "CCXT unified symbol: BTC/USDT (spot), BTC/USDT:USDT (USDT-margined perpetual swap)"

EXCHANGE_PARAMETER = OpenApiParameter(
    "exchange",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=list(SUPPORTED_EXCHANGES),
    description="CCXT exchange id from the allow-list (GET /api/v1/exchanges/ says which serve data here)",
)


def _symbol(value: str) -> None:
    if not SYMBOL_PATTERN.match(value):
        raise serializers.ValidationError(f"{value[:60]!r} is not a symbol like BTC/USDT or BTC/USDT:USDT")


# ------------------------------------------------------------------ base


class MarketApi(APIView):
    """Shared by every market-data endpoint: token scope and throttle (errors: connector_site.api_errors)."""

    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "market:read"}
    throttle_classes = [TokenRateThrottle]

    @staticmethod
    def query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
        serializer = serializer_class(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


# ------------------------------------------------------------------ output shapes


def _iso(ms: int | None) -> dt.datetime | None:
    if ms is None:
        return None
    try:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def entry_payload(entry: MarketDataEntry, data: Any) -> dict[str, Any]:
    """An entry as the API shows it: where it came from and how old it is, then the data."""
    return {
        "exchange": entry.exchange,
        "environment": entry.environment,
        "channel": entry.channel,
        "symbol": entry.symbol,
        "source": entry.source,
        "age_ms": entry.age_ms(),
        "stale": entry.stale,
        "venue_time_ms": entry.venue_time_ms,
        "venue_time": _iso(entry.venue_time_ms),
        "received_time_ms": entry.received_time_ms,
        "received_at": _iso(entry.received_time_ms),
        "sequence": entry.sequence,
        "data": data,
    }


class EntrySerializer(serializers.Serializer):
    """Where an answer came from and how old it is (``data`` is added per endpoint)."""

    exchange = serializers.CharField()
    environment = serializers.CharField(help_text="live, sandbox or emulator")
    channel = serializers.CharField()
    symbol = serializers.CharField()
    # Declared fields are popped off the class by DRF's metaclass, so these names do not
    # shadow Field.source / Serializer.data at runtime; mypy cannot know that.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=SOURCES,
        help_text="stream (a venue WebSocket), poll (a background task) or request (fetched for a request)",
    )
    age_ms = serializers.IntegerField(help_text="Milliseconds since we received it from the venue")
    stale = serializers.BooleanField(
        help_text=(
            "false on a normal answer. true: the venue failed (down, timed out or rate-limiting us) "
            "and this is the last value we hold, older than the endpoint's freshness; `age_ms` says "
            "how old. Given up to MARKET_DATA_STALE_HORIZON_S (default 300 s), then the 503/429"
        )
    )
    venue_time_ms = Millis(help_text="The venue's timestamp of the data, if it gives one")
    venue_time = serializers.DateTimeField(allow_null=True)
    received_time_ms = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    sequence = serializers.IntegerField(
        help_text="Rises with every write of this cache key; 0 for an answer that was not cached"
    )


class TickerDataSerializer(serializers.Serializer):
    symbol = Text()
    timestamp = Millis()
    datetime = Text()
    high = DecimalString()
    low = DecimalString()
    bid = DecimalString()
    bidVolume = DecimalString()
    ask = DecimalString()
    askVolume = DecimalString()
    vwap = DecimalString()
    open = DecimalString()
    close = DecimalString()
    last = DecimalString()
    previousClose = DecimalString()
    change = DecimalString()
    percentage = DecimalString()
    average = DecimalString()
    baseVolume = DecimalString()
    quoteVolume = DecimalString()
    markPrice = DecimalString()
    indexPrice = DecimalString()

    class Meta:
        ref_name = "Ticker"


class OrderBookDataSerializer(serializers.Serializer):
    symbol = Text()
    bids = serializers.ListField(
        child=serializers.ListField(child=DecimalString(), min_length=2, max_length=2),
        help_text="[price, amount] rows, best (highest) first",
    )
    asks = serializers.ListField(
        child=serializers.ListField(child=DecimalString(), min_length=2, max_length=2),
        help_text="[price, amount] rows, best (lowest) first",
    )
    timestamp = Millis()
    nonce = Millis(help_text="The venue's book sequence number, if it gives one")

    class Meta:
        ref_name = "OrderBook"


class TradeDataSerializer(serializers.Serializer):
    id = Text()
    symbol = Text()
    timestamp = Millis()
    datetime = Text()
    side = Text(help_text="buy or sell (the taker's side)")
    price = DecimalString()
    amount = DecimalString()
    cost = DecimalString()
    takerOrMaker = Text()

    class Meta:
        ref_name = "Trade"


class CandleSerializer(serializers.Serializer):
    timestamp = Millis(help_text="Open time of the candle")
    open = DecimalString()
    high = DecimalString()
    low = DecimalString()
    close = DecimalString()
    volume = DecimalString(help_text="Base-currency volume")

    class Meta:
        ref_name = "Candle"


class FundingRateDataSerializer(serializers.Serializer):
    symbol = Text()
    fundingRate = DecimalString()
    timestamp = Millis()
    datetime = Text()
    fundingTimestamp = Millis()
    fundingDatetime = Text()
    nextFundingRate = DecimalString()
    nextFundingTimestamp = Millis()
    markPrice = DecimalString()
    indexPrice = DecimalString()
    interval = Text()

    class Meta:
        ref_name = "FundingRate"


class OptionDataSerializer(serializers.Serializer):
    symbol = Text()
    currency = Text()
    timestamp = Millis()
    impliedVolatility = DecimalString()
    openInterest = DecimalString()
    bidPrice = DecimalString()
    askPrice = DecimalString()
    midPrice = DecimalString()
    markPrice = DecimalString()
    lastPrice = DecimalString()
    underlyingPrice = DecimalString()
    change = DecimalString()
    percentage = DecimalString()
    baseVolume = DecimalString()
    quoteVolume = DecimalString()

    class Meta:
        ref_name = "Option"


def _candle(row: Any) -> dict[str, Any]:
    names = ("timestamp", "open", "high", "low", "close", "volume")
    values = list(row) if isinstance(row, list | tuple) else []
    return dict(zip(names, values + [None] * (len(names) - len(values)), strict=False))


class SymbolQuery(serializers.Serializer):
    symbol = serializers.CharField(max_length=100, validators=[_symbol], help_text=SYMBOL_HELP)


def _responses(ok: Any) -> dict[int, Any]:
    return {200: ok, **ERROR_RESPONSES}


# ------------------------------------------------------------------ exchanges


class ExchangeListApi(MarketApi):
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(help_text="CCXT exchange id")
        name = serializers.CharField()
        environment = serializers.CharField(
            help_text="Where market data comes from: live, sandbox or emulator"
        )
        market_data = serializers.BooleanField(help_text="Market data is served for it in this environment")
        capabilities = serializers.DictField(
            child=serializers.BooleanField(), help_text="Operation -> offered (CCXT's `has` plus our extras)"
        )

        class Meta:
            ref_name = "Exchange"

    @extend_schema(
        operation_id="exchanges_list",
        summary="Supported exchanges with their capabilities",
        responses=_responses(OutputSerializer(many=True)),
        tags=["market data"],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(selectors.exchange_list(), many=True).data)


class MarketMinMaxSerializer(serializers.Serializer):
    min = DecimalString()
    max = DecimalString()

    class Meta:
        ref_name = "MarketLimit"


class MarketLimitsSerializer(serializers.Serializer):
    amount = MarketMinMaxSerializer()
    price = MarketMinMaxSerializer()
    cost = MarketMinMaxSerializer()

    class Meta:
        ref_name = "MarketLimits"


class MarketPrecisionSerializer(serializers.Serializer):
    amount = DecimalString(help_text="Amount step (or decimals, per the venue's precision mode)")
    price = DecimalString(help_text="Price step (or decimals)")

    class Meta:
        ref_name = "MarketPrecision"


class MarketSerializer(serializers.Serializer):
    symbol = serializers.CharField(help_text=SYMBOL_HELP)
    id = Text(help_text="The venue's own market id")
    base = Text()
    quote = Text()
    settle = Text()
    type = Text(help_text="spot, margin, swap, future or option")
    spot = serializers.BooleanField()
    margin = serializers.BooleanField(allow_null=True)
    swap = serializers.BooleanField()
    future = serializers.BooleanField()
    option = serializers.BooleanField()
    contract = serializers.BooleanField()
    linear = serializers.BooleanField(allow_null=True)
    inverse = serializers.BooleanField(allow_null=True)
    active = serializers.BooleanField(allow_null=True)
    contractSize = DecimalString()
    expiry = Millis()
    expiryDatetime = Text()
    strike = DecimalString()
    optionType = Text()
    precision = MarketPrecisionSerializer()
    limits = MarketLimitsSerializer()

    class Meta:
        ref_name = "Market"


def _market_row(market: dict[str, Any]) -> dict[str, Any]:
    """A CCXT market with every documented key present (booleans default to False/None)."""
    row = {key: market.get(key) for key in MarketSerializer._declared_fields}
    for flag in ("spot", "swap", "future", "option", "contract"):
        row[flag] = bool(market.get(flag))
    for flag in ("margin", "linear", "inverse", "active"):
        value = market.get(flag)
        row[flag] = value if isinstance(value, bool) else None
    precision = market.get("precision") or {}
    row["precision"] = {"amount": precision.get("amount"), "price": precision.get("price")}
    limits = market.get("limits") or {}
    row["limits"] = {
        name: {"min": (limits.get(name) or {}).get("min"), "max": (limits.get(name) or {}).get("max")}
        for name in ("amount", "price", "cost")
    }
    return row


class ExchangeMarketListApi(MarketApi):
    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(
            choices=["spot", "margin", "swap", "future", "option"], required=False, help_text="Market type"
        )
        quote = serializers.RegexField(
            r"^[A-Za-z0-9]{1,20}$", required=False, help_text="Quote currency, e.g. USDT (case-insensitive)"
        )
        search = serializers.CharField(
            max_length=40,
            required=False,
            help_text="Case-insensitive part of the symbol or of the venue's id",
        )
        page = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
        page_size = serializers.IntegerField(min_value=1, max_value=500, default=100)

    class OutputSerializer(serializers.Serializer):
        exchange = serializers.CharField()
        count = serializers.IntegerField(help_text="Markets matching the filters, on all pages")
        page = serializers.IntegerField()
        page_size = serializers.IntegerField()
        pages = serializers.IntegerField(help_text="Pages at this page size (at least 1)")
        results = MarketSerializer(many=True)

        class Meta:
            ref_name = "MarketPage"

    @extend_schema(
        operation_id="exchanges_markets_list",
        summary="The exchange's markets, filtered and paginated",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        exchange = exchange_resolve(exchange=exchange)
        quote = params.get("quote")
        markets = selectors.exchange_market_list(
            exchange=exchange,
            type=params.get("type"),
            quote=quote.upper() if quote else None,
            search=params.get("search"),
        )
        page, size = params["page"], params["page_size"]
        body = {
            "exchange": exchange,
            "count": len(markets),
            "page": page,
            "page_size": size,
            "pages": max(1, math.ceil(len(markets) / size)),
            "results": [_market_row(m) for m in markets[(page - 1) * size : page * size]],
        }
        return Response(self.OutputSerializer(body).data)


# ------------------------------------------------------------------ market data


class TickerApi(MarketApi):
    class InputSerializer(SymbolQuery):
        pass

    class OutputSerializer(EntrySerializer):
        data = TickerDataSerializer()  # type: ignore[assignment]

        class Meta:
            ref_name = "TickerResponse"

    @extend_schema(
        operation_id="markets_ticker",
        summary="Ticker of one market (cache-first, at most 2 s old)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
        examples=[
            OpenApiExample(
                "BTC/USDT on the emulator",
                response_only=True,
                value={
                    "exchange": "binance",
                    "environment": "emulator",
                    "channel": "ticker",
                    "symbol": "BTC/USDT",
                    "source": "request",
                    "age_ms": 3,
                    "stale": False,
                    "venue_time_ms": 1764000000000,
                    "venue_time": "2025-11-24T16:00:00Z",
                    "received_time_ms": 1764000000004,
                    "received_at": "2025-11-24T16:00:00.004000Z",
                    "sequence": 12,
                    "data": {"symbol": "BTC/USDT", "last": "65000.1", "bid": "65000", "ask": "65000.2"},
                },
            )
        ],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_ticker_get(exchange=exchange, symbol=params["symbol"])
        return Response(self.OutputSerializer(entry_payload(entry, entry.data)).data)


class TickersApi(MarketApi):
    class InputSerializer(serializers.Serializer):
        symbols = serializers.CharField(
            max_length=2000,
            help_text=f"Comma-separated CCXT symbols, at most {selectors.MAX_TICKERS}: BTC/USDT,ETH/USDT",
        )

        def validate_symbols(self, value: str) -> list[str]:
            symbols = [part.strip() for part in value.split(",") if part.strip()]
            if not symbols:
                raise serializers.ValidationError("Give at least one symbol")
            if len(symbols) > selectors.MAX_TICKERS:
                raise serializers.ValidationError(
                    f"At most {selectors.MAX_TICKERS} symbols per request", code="max_length"
                )
            for symbol in symbols:
                _symbol(symbol)
            return symbols

    class OutputSerializer(serializers.Serializer):
        exchange = serializers.CharField()
        environment = serializers.CharField()
        results = serializers.ListField(child=TickerApi.OutputSerializer(), help_text="In the order asked")

        class Meta:
            ref_name = "TickersResponse"

    @extend_schema(
        operation_id="markets_tickers",
        summary="Tickers of several markets (one venue call for all cache misses)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entries = selectors.market_tickers_get(exchange=exchange, symbols=params["symbols"])
        body = {
            "exchange": exchange_resolve(exchange=exchange),
            "environment": market_data_environment(),
            "results": [entry_payload(entry, entry.data) for entry in entries],
        }
        return Response(self.OutputSerializer(body).data)


class OrderBookApi(MarketApi):
    class InputSerializer(SymbolQuery):
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.BOOK_DEPTHS[-1], default=20, help_text="Levels per side"
        )

    class OutputSerializer(EntrySerializer):
        data = OrderBookDataSerializer()  # type: ignore[assignment]

        class Meta:
            ref_name = "OrderBookResponse"

    @extend_schema(
        operation_id="markets_orderbook",
        summary="Order book of one market (cache-first, at most 1 s old)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_order_book_get(
            exchange=exchange, symbol=params["symbol"], limit=params["limit"]
        )
        return Response(self.OutputSerializer(entry_payload(entry, entry.data)).data)


class TradesApi(MarketApi):
    class InputSerializer(SymbolQuery):
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.TRADE_LIMITS[-1], default=50, help_text="How many recent trades"
        )

    class OutputSerializer(EntrySerializer):
        data = TradeDataSerializer(many=True, help_text="Oldest first")  # type: ignore[assignment]

        class Meta:
            ref_name = "TradesResponse"

    @extend_schema(
        operation_id="markets_trades",
        summary="Recent public trades of one market (cache-first, at most 2 s old)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_trades_get(exchange=exchange, symbol=params["symbol"], limit=params["limit"])
        return Response(self.OutputSerializer(entry_payload(entry, entry.data["trades"])).data)


class OhlcvApi(MarketApi):
    class InputSerializer(SymbolQuery):
        timeframe = serializers.RegexField(
            r"^[1-9][0-9]{0,2}[smhdwM]$",
            max_length=5,
            default="1m",
            help_text="Candle length the venue offers: 1m, 5m, 1h, 1d, ...",
        )
        since = serializers.IntegerField(
            min_value=0,
            max_value=4_102_444_800_000,
            required=False,
            help_text="Start time in ms since the epoch (history; not cached)",
        )
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.OHLCV_LIMITS[-1], default=100, help_text="How many candles"
        )

    class OutputSerializer(EntrySerializer):
        timeframe = serializers.CharField()
        data = CandleSerializer(many=True, help_text="Oldest first")  # type: ignore[assignment]

        class Meta:
            ref_name = "OhlcvResponse"

    @extend_schema(
        operation_id="markets_ohlcv",
        summary="Candles of one market (latest: cache-first, at most 30 s old; with since: fetched)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_ohlcv_get(
            exchange=exchange,
            symbol=params["symbol"],
            timeframe=params["timeframe"],
            since=params.get("since"),
            limit=params["limit"],
        )
        body = entry_payload(entry, [_candle(row) for row in entry.data["candles"]])
        body["timeframe"] = params["timeframe"]
        return Response(self.OutputSerializer(body).data)


class FundingRateApi(MarketApi):
    class InputSerializer(SymbolQuery):
        pass

    class OutputSerializer(EntrySerializer):
        data = FundingRateDataSerializer()  # type: ignore[assignment]

        class Meta:
            ref_name = "FundingRateResponse"

    @extend_schema(
        operation_id="markets_funding_rate",
        summary="Funding rate of a perpetual swap (cache-first, at most 60 s old)",
        parameters=[EXCHANGE_PARAMETER, InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request, exchange: str) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_funding_rate_get(exchange=exchange, symbol=params["symbol"])
        return Response(self.OutputSerializer(entry_payload(entry, entry.data)).data)


class OkxOptionChainApi(MarketApi):
    class InputSerializer(serializers.Serializer):
        currency = serializers.RegexField(
            r"^[A-Za-z0-9]{1,10}$", help_text="Underlying currency, e.g. BTC (case-insensitive)"
        )

    class OutputSerializer(EntrySerializer):
        data = OptionDataSerializer(many=True, help_text="Every listed option, by symbol")  # type: ignore[assignment]

        class Meta:
            ref_name = "OptionChainResponse"

    @extend_schema(
        operation_id="markets_okx_option_chain",
        summary="OKX option chain of one currency (cache-first, at most 5 s old)",
        parameters=[InputSerializer],
        responses=_responses(OutputSerializer),
        tags=["market data"],
    )
    def get(self, request: Request) -> Response:
        params = self.query(self.InputSerializer, request)
        entry = selectors.market_option_chain_get(exchange="okx", currency=params["currency"])
        options = [entry.data[symbol] for symbol in sorted(entry.data)]
        return Response(self.OutputSerializer(entry_payload(entry, options)).data)
