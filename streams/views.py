"""The live dashboard (server-rendered shell; the page's script does the rest over /ws/v1/market/)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from streams.conf import setting
from streams.selectors import watchlist_list

DEFAULT_WATCHLIST = [("binance", "BTC/USDT"), ("binance", "ETH/USDT")]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    rows = [(e.exchange, e.symbol) for e in watchlist_list() if e.channel == "ticker"] or DEFAULT_WATCHLIST
    focus = request.GET.get("symbol") or rows[0][1]
    focus_exchange = request.GET.get("exchange") or rows[0][0]
    config = {
        "wsPath": "/ws/v1/market/",
        "healthUrl": "/api/v1/streams/",
        "environment": settings.MARKET_DATA_ENVIRONMENT,
        "watchlist": [{"exchange": ex, "symbol": sym} for ex, sym in rows],
        "focus": {"exchange": focus_exchange, "symbol": focus},
        "staleAfterMs": int(float(setting("STREAMS_STALE_AFTER_S")) * 1000),
    }
    return render(request, "streams/dashboard.html", {"config": config, "watchlist": rows})
