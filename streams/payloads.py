"""Turn what the connectors return into self-contained, JSON-ready stream states.

Every state a client receives stands on its own: a ticker, the top of the book, the
latest trades, the current candles. Nothing is a diff, so a client that misses a message
(Channels delivers at most once) is still right after the next one.
"""

from __future__ import annotations

from typing import Any

from markets.cache import jsonable

__all__ = ["emit_stamp_us", "merge_candles", "shape_book", "shape_ticker", "shape_trades"]

_TICKER_FIELDS = (
    "symbol", "timestamp", "last", "bid", "ask", "bidVolume", "askVolume", "high", "low", "open",
    "close", "change", "percentage", "baseVolume", "quoteVolume", "vwap",
)  # fmt: skip


def emit_stamp_us(raw: Any) -> int | None:
    """The emulator's emit stamp (``emitUs``, µs since the epoch) from a venue payload, if any."""
    if isinstance(raw, dict):
        for name in ("emitUs", "emit_us"):
            value = raw.get(name)
            if isinstance(value, int):
                return value
        data = raw.get("data")
        if isinstance(data, dict | list):
            return emit_stamp_us(data)
    if isinstance(raw, list) and raw:
        return emit_stamp_us(raw[-1])
    return None


def shape_ticker(ticker: dict[str, Any]) -> dict[str, Any]:
    return jsonable({name: ticker.get(name) for name in _TICKER_FIELDS})  # type: ignore[no-any-return]


def shape_book(book: dict[str, Any], depth: int) -> dict[str, Any]:
    return jsonable(  # type: ignore[no-any-return]
        {
            "symbol": book.get("symbol"),
            "timestamp": book.get("timestamp"),
            "nonce": book.get("nonce"),
            "bids": [level[:2] for level in (book.get("bids") or [])[:depth]],
            "asks": [level[:2] for level in (book.get("asks") or [])[:depth]],
        }
    )


def shape_trades(
    trades: list[dict[str, Any]], kept: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` trades, newest last, with the new ones appended to ``kept``."""
    seen = {t.get("id") for t in kept if t.get("id") is not None}
    merged = list(kept)
    for trade in trades:
        if trade.get("id") is not None and trade.get("id") in seen:
            continue
        merged.append(
            jsonable(
                {
                    "id": trade.get("id"),
                    "timestamp": trade.get("timestamp"),
                    "side": trade.get("side"),
                    "price": trade.get("price"),
                    "amount": trade.get("amount"),
                }
            )
        )
    return merged[-limit:]


def merge_candles(kept: list[list[Any]], updates: list[list[Any]], limit: int) -> list[list[Any]]:
    """Replace or append candles by open time; oldest first, at most ``limit``."""
    by_time = {int(c[0]): c for c in kept}
    for candle in updates:
        by_time[int(candle[0])] = jsonable(list(candle[:6]))
    return [by_time[t] for t in sorted(by_time)][-limit:]
