"""Market-data routes under /api/v1/ (see docs/api-market-data.md)."""

from django.urls import path

from markets import apis

urlpatterns = [
    path("exchanges/", apis.ExchangeListApi.as_view(), name="exchange-list"),
    path(
        "exchanges/<str:exchange>/markets/", apis.ExchangeMarketListApi.as_view(), name="exchange-market-list"
    ),
    # A literal venue path: listed before the <exchange> routes so it is never shadowed.
    path("markets/okx/option-chain/", apis.OkxOptionChainApi.as_view(), name="market-okx-option-chain"),
    path("markets/<str:exchange>/ticker/", apis.TickerApi.as_view(), name="market-ticker"),
    path("markets/<str:exchange>/tickers/", apis.TickersApi.as_view(), name="market-tickers"),
    path("markets/<str:exchange>/orderbook/", apis.OrderBookApi.as_view(), name="market-orderbook"),
    path("markets/<str:exchange>/trades/", apis.TradesApi.as_view(), name="market-trades"),
    path("markets/<str:exchange>/ohlcv/", apis.OhlcvApi.as_view(), name="market-ohlcv"),
    path("markets/<str:exchange>/funding-rate/", apis.FundingRateApi.as_view(), name="market-funding-rate"),
]
