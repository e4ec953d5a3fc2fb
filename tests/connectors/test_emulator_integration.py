"""Real CCXT against the emulator, for binance, okx and bybit: every operation, each venue
extra, and each error translation the emulator's faults can produce."""

# ruff: noqa: F811  (test arguments name the fixtures imported from .emulator_support)
from __future__ import annotations

import logging
import traceback
from decimal import Decimal
from typing import Any

import pytest

import connectors
from connectors import (
    Credentials,
    CredentialsRejected,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    NoOpenPosition,
    OrderNotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    check_connection,
    create_connector,
    create_stream_connector,
)
from connectors.factory import clear_connector_cache
from connectors.markets import market_store

# The emulator fixtures are imported by name (module-scoped markets); tests take them as arguments.
from .emulator_support import (  # noqa: F401
    ORDER_ENDPOINTS,
    SYMBOLS,
    TICKER_ENDPOINTS,
    Faults,
    demo_credentials,
    emulator,
    faults,
    fresh_caches,
    requests_to,
    requests_to_unknown_host,
    require_venue,
    venue,
)


def connect(emulator: Any, venue: str, credentials: Credentials | None = None) -> connectors.Connector:
    return create_connector(venue, credentials, environment="emulator", emulator_url=emulator.url)


def keyed(emulator: Any, venue: str) -> connectors.Connector:
    return connect(emulator, venue, demo_credentials(venue))


def loaded(emulator: Any, venue: str) -> connectors.Connector:
    """A public connector whose markets are already loaded, so that a fault set next meets
    only the call under test."""
    connector = connect(emulator, venue)
    connector.load_markets()
    return connector


def fresh_credentials(
    emulator: Any, venue: str, label: str, balances: dict[str, str] | None = None
) -> Credentials:
    """A key of its own for a test that changes account state (positions, margin mode) or
    needs a particular balance. Bybit's emulator reads "readonly"/"withdraw" in key names."""
    credentials = Credentials(f"{label}-{venue}-key", f"{label}-{venue}-secret", f"Pass-{label}-1")
    emulator.add_account(credentials.api_key, credentials.secret, credentials.passphrase, balances=balances)
    return credentials


def far_below(connector: connectors.Connector, symbol: str) -> tuple[Decimal, Decimal]:
    """A resting buy: the minimum sensible amount at half the market price, on the tick."""
    market = connector.market(symbol)
    last = connector.fetch_ticker(symbol)["last"]
    tick = Decimal(str(market["precision"]["price"]))
    price = (last / 2 // tick) * tick
    step = Decimal(str(market["precision"]["amount"]))
    minimum = Decimal(str((market["limits"]["amount"] or {}).get("min") or step))
    cost_min = Decimal(str((market["limits"].get("cost") or {}).get("min") or 0))
    amount = max(minimum, step)
    while amount * price < cost_min * 2:
        amount += step * max(1, int(amount / step))
    return amount, price


# ------------------------------------------------------------------ market data


def test_markets_are_loaded_once_and_shared_by_instances(emulator: Any, venue: str) -> None:
    market_store.clear()
    public = connect(emulator, venue)
    public.load_markets()
    after_first = requests_to(emulator, venue)

    keyed_markets = keyed(emulator, venue).load_markets()

    assert requests_to(emulator, venue) == after_first
    assert SYMBOLS[venue]["spot"] in keyed_markets and SYMBOLS[venue]["swap"] in keyed_markets


def test_refresh_markets_loads_them_again(emulator: Any, venue: str) -> None:
    connector = loaded(emulator, venue)
    before = requests_to(emulator, venue)
    connector.refresh_markets()
    assert requests_to(emulator, venue) > before


def test_it_fetches_tickers_books_trades_and_candles_as_decimals(emulator: Any, venue: str) -> None:
    connector = connect(emulator, venue)
    spot, spot2 = SYMBOLS[venue]["spot"], SYMBOLS[venue]["spot2"]

    ticker = connector.fetch_ticker(spot)
    tickers = connector.fetch_tickers([spot, spot2])
    book = connector.fetch_order_book(spot, 5)
    trades = connector.fetch_trades(spot, limit=5)
    candles = connector.fetch_ohlcv(spot, "1m", limit=5)

    assert isinstance(ticker["last"], Decimal) and ticker["last"] > 0
    assert set(tickers) >= {spot, spot2}
    assert book["bids"][0][0] < book["asks"][0][0] and isinstance(book["bids"][0][1], Decimal)
    assert trades and isinstance(trades[0]["price"], Decimal)
    assert candles and isinstance(candles[0][0], int) and isinstance(candles[0][4], Decimal)


def test_it_fetches_funding_rates_of_perpetuals(emulator: Any, venue: str) -> None:
    connector = connect(emulator, venue)
    swap = SYMBOLS[venue]["swap"]

    rate = connector.fetch_funding_rate(swap)
    rates = connector.fetch_funding_rates([swap])

    assert isinstance(rate["fundingRate"], Decimal)
    assert swap in rates


# ------------------------------------------------------------------ account and orders


def test_it_fetches_the_balance(emulator: Any, venue: str) -> None:
    balance = keyed(emulator, venue).fetch_balance()
    assert balance["balances"]["USDT"]["total"] > 0
    assert isinstance(balance["balances"]["USDT"]["free"], Decimal)


def test_an_order_can_be_placed_found_by_id_and_client_id_listed_and_cancelled(
    emulator: Any, venue: str
) -> None:
    connector = keyed(emulator, venue)
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(connector, spot)
    sent_before = requests_to(emulator, venue, ORDER_ENDPOINTS[venue])

    placed = connector.create_order(spot, "limit", "buy", amount, price)
    # The fault tests below target this endpoint: one order, one request to it.
    assert requests_to(emulator, venue, ORDER_ENDPOINTS[venue]) == sent_before + 1
    by_id = connector.fetch_order(placed["id"], spot)
    by_client_id = connector.fetch_order_by_client_id(spot, placed["clientOrderId"])
    open_ids = [o["id"] for o in connector.fetch_open_orders(spot)]
    cancelled = connector.cancel_order(placed["id"], spot)

    assert by_id["id"] == by_client_id["id"] == placed["id"]
    assert by_client_id["clientOrderId"] == placed["clientOrderId"]
    assert by_id["amount"] == amount and by_id["price"] == price
    assert placed["id"] in open_ids
    assert (
        connector.fetch_order(placed["id"], spot)["status"] == "canceled" or cancelled["id"] == placed["id"]
    )
    assert placed["id"] not in [o["id"] for o in connector.fetch_open_orders(spot)]


def test_a_filled_order_shows_in_closed_orders_and_my_trades(emulator: Any, venue: str) -> None:
    connector = keyed(emulator, venue)
    spot = SYMBOLS[venue]["spot"]
    amount, _ = far_below(connector, spot)

    placed = connector.create_order(spot, "market", "buy", amount)

    assert placed["id"] in [o["id"] for o in connector.fetch_closed_orders(spot)]
    assert placed["id"] in [t["order"] for t in connector.fetch_my_trades(spot)]


def test_leverage_margin_mode_and_positions_on_a_perpetual(emulator: Any, venue: str) -> None:
    connector = connect(emulator, venue, fresh_credentials(emulator, venue, "perp"))
    swap = SYMBOLS[venue]["swap"]

    assert connector.set_margin_mode("cross", swap)["marginMode"] == "cross"
    assert connector.set_leverage(5, swap)["leverage"] == 5
    amount, _ = far_below(connector, swap)
    connector.create_order(swap, "market", "buy", amount)
    positions = connector.fetch_positions([swap])

    assert positions and positions[0]["symbol"] == swap and positions[0]["contracts"] > 0


def test_positions_without_symbols_list_the_open_contract_positions(emulator: Any, venue: str) -> None:
    # Without symbols CCXT picks the market type from the instance's defaultType (spot):
    # Bybit then asked category=spot and got 10001 "Illegal category". Every venue must ask
    # for its contracts (Binance fapi positionRisk, OKX account/positions, Bybit linear+inverse).
    connector = connect(emulator, venue, fresh_credentials(emulator, venue, "allpositions"))
    swap = SYMBOLS[venue]["swap"]
    amount, _ = far_below(connector, swap)
    connector.create_order(swap, "market", "buy", amount)

    positions = connector.fetch_positions()

    assert swap in [p["symbol"] for p in positions if p["contracts"]]
    assert all(connector.market(p["symbol"])["contract"] for p in positions)


def test_bybit_positions_without_symbols_merge_linear_and_inverse(emulator: Any) -> None:
    require_venue(emulator, "bybit")
    balances = {"USDT": "100000", "BTC": "2"}
    connector = connect(emulator, "bybit", fresh_credentials(emulator, "bybit", "linverse", balances))
    linear, inverse = SYMBOLS["bybit"]["swap"], "BTC/USD:BTC"
    for symbol in (linear, inverse):
        amount, _ = far_below(connector, symbol)
        connector.create_order(symbol, "market", "buy", amount)
    before = requests_to(emulator, "bybit", "/v5/position/list")

    open_symbols = {p["symbol"] for p in connector.fetch_positions() if p["contracts"]}

    assert {linear, inverse} <= open_symbols
    settle_coins = {m["settle"] for m in connector.load_markets().values() if m.get("linear")}
    assert requests_to(emulator, "bybit", "/v5/position/list") - before == len(settle_coins) + 1


def test_setting_the_same_leverage_again_is_success(emulator: Any, venue: str) -> None:
    connector = connect(emulator, venue, fresh_credentials(emulator, venue, "sameleverage"))
    swap = SYMBOLS[venue]["swap"]

    first = connector.set_leverage(7, swap)
    again = connector.set_leverage(7, swap)

    assert first["changed"] is True and again["leverage"] == 7
    if venue == "bybit":  # Bybit says so: 110043 "Set leverage not modified"
        assert again["changed"] is False


# ------------------------------------------------------------------ venue extras
# Endpoints the emulator does not serve yet answer "... is not emulated": conftest reports
# those tests as skipped, quoting the emulator, until the endpoint lands.


def test_binance_reports_key_permissions(emulator: Any) -> None:
    require_venue(emulator, "binance")
    permissions = keyed(emulator, "binance").fetch_permissions()
    assert permissions["read"] is True and permissions["trade"] in (True, False)
    assert permissions["withdraw"] in (True, False)


def test_okx_switches_position_mode(emulator: Any) -> None:
    require_venue(emulator, "okx")
    connector = connect(emulator, "okx", fresh_credentials(emulator, "okx", "posmode"))

    assert connector.set_position_mode(hedged=True)["hedged"] is True  # type: ignore[attr-defined]
    hedged = connector.fetch_permissions()["info"]["posMode"]
    assert connector.set_position_mode(hedged=False)["hedged"] is False  # type: ignore[attr-defined]
    net = connector.fetch_permissions()["info"]["posMode"]

    assert (hedged, net) == ("long_short_mode", "net_mode")


def test_okx_lists_an_option_chain(emulator: Any) -> None:
    require_venue(emulator, "okx")
    chain = keyed(emulator, "okx").fetch_option_chain("BTC")  # type: ignore[attr-defined]
    assert chain and all(symbol.startswith("BTC/") for symbol in chain)


def test_bybit_sets_take_profit_and_stop_loss_on_a_position(emulator: Any) -> None:
    require_venue(emulator, "bybit")
    connector = connect(emulator, "bybit", fresh_credentials(emulator, "bybit", "tpsl"))
    swap = SYMBOLS["bybit"]["swap"]
    amount, _ = far_below(connector, swap)
    connector.create_order(swap, "market", "buy", amount)
    last = connector.fetch_ticker(swap)["last"]
    take_profit, stop_loss = (last * 2).quantize(Decimal(1)), (last / 2).quantize(Decimal(1))

    connector.set_trading_stop(swap, take_profit=take_profit, stop_loss=stop_loss)  # type: ignore[attr-defined]
    position = connector.fetch_positions([swap])[0]

    assert position["takeProfitPrice"] == take_profit and position["stopLossPrice"] == stop_loss


def test_bybit_take_profit_without_a_position_is_no_open_position(emulator: Any) -> None:
    require_venue(emulator, "bybit")
    connector = connect(emulator, "bybit", fresh_credentials(emulator, "bybit", "tpslflat"))
    swap = SYMBOLS["bybit"]["swap"]

    with pytest.raises(NoOpenPosition) as caught:
        connector.set_trading_stop(swap, take_profit=Decimal(90000))  # type: ignore[attr-defined]

    assert caught.value.code == "no_open_position" and caught.value.field == "symbol"
    assert caught.value.message.startswith(f"{swap} has no open position")


def test_bybit_adds_margin_to_an_isolated_position(emulator: Any) -> None:
    require_venue(emulator, "bybit")
    connector = connect(emulator, "bybit", fresh_credentials(emulator, "bybit", "addmargin"))
    swap = SYMBOLS["bybit"]["swap"]
    connector.set_margin_mode("isolated", swap)
    amount, _ = far_below(connector, swap)
    connector.create_order(swap, "market", "buy", amount)
    before = connector.fetch_positions([swap])[0]

    adjusted = connector.adjust_margin(swap, Decimal(10))  # type: ignore[attr-defined]
    after = connector.fetch_positions([swap])[0]

    assert adjusted["type"] == "add" and adjusted["amount"] == 10
    assert after["collateral"] > before["collateral"]


# ------------------------------------------------------------------ streams


async def test_streams_deliver_tickers_books_trades_and_candles(emulator: Any, venue: str) -> None:
    connector = create_stream_connector(venue, environment="emulator", emulator_url=emulator.url)
    spot = SYMBOLS[venue]["spot"]
    try:
        ticker = await connector.watch_ticker(spot)
        book = await connector.watch_order_book(spot)
        trades = await connector.watch_trades(spot)
        candles = await connector.watch_ohlcv(spot, "1m")
    finally:
        await connector.close()
    assert ticker["symbol"] == spot and isinstance(ticker["last"], Decimal)
    assert book["bids"] and book["asks"]
    assert trades and isinstance(trades[0]["amount"], Decimal)
    assert candles and isinstance(candles[-1][0], int)


# ------------------------------------------------------------------ errors from the venue and its faults
# Each case is a real venue answer or a fault of the emulator's registry (the venue's own
# error body); only what neither can produce is left to the fake-CCXT unit tests.


def test_a_wrong_secret_is_credentials_rejected(emulator: Any, venue: str) -> None:
    good = demo_credentials(venue)
    connector = connect(emulator, venue, Credentials(good.api_key, "not-the-secret", good.passphrase))
    with pytest.raises(CredentialsRejected):
        connector.fetch_balance()


def read_only_credentials(emulator: Any, venue: str) -> Credentials:
    """A key the venue reports as unable to trade; skips (quoting the emulator) where the
    emulator cannot make one (only its Bybit keys named *readonly* are read-only)."""
    credentials = fresh_credentials(emulator, venue, "readonly")
    permissions = connect(emulator, venue, credentials).fetch_permissions()
    if permissions["trade"] is not False:
        pytest.skip(
            f"the emulator cannot make a read-only {venue} key: for {credentials.api_key!r} it reports "
            f"{permissions['info']}"[:300]
        )
    return credentials


def test_a_read_only_key_is_permission_denied_when_it_trades(emulator: Any, venue: str) -> None:
    connector = connect(emulator, venue, read_only_credentials(emulator, venue))
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(connector, spot)
    try:
        placed = connector.create_order(spot, "limit", "buy", amount, price)
    except PermissionDenied:
        return
    connector.cancel_order(placed["id"], spot)
    pytest.skip(
        f"the emulator reports the key as read-only on {venue} yet accepted its order {placed['id']} "
        "(the venue refuses it: Bybit retCode 10005, CCXT PermissionDenied)"
    )


def test_binance_tells_a_read_only_key_from_an_unknown_one_on_a_first_write(emulator: Any) -> None:
    # Binance answers both with -2015 (401, CCXT AuthenticationError). An instance that has
    # not yet made a signed call checks the key with one signed read before deciding.
    require_venue(emulator, "binance")
    spot = SYMBOLS["binance"]["spot"]
    read_only = fresh_credentials(emulator, "binance", "firstwrite-readonly")
    amount, price = far_below(connect(emulator, "binance"), spot)
    clear_connector_cache()
    before = requests_to(emulator, "binance", "/api/v3/account")

    with pytest.raises(PermissionDenied) as refused:
        connect(emulator, "binance", read_only).create_order(spot, "limit", "buy", amount, price)
    with pytest.raises(CredentialsRejected):
        connect(emulator, "binance", Credentials("no-such-key-0001", "no-such-secret")).create_order(
            spot, "limit", "buy", amount, price
        )

    assert refused.value.code == "exchange_permission_denied" and "-2015" in refused.value.message
    assert requests_to(emulator, "binance", "/api/v3/account") - before == 2  # one check per instance


def test_a_429_with_retry_after_is_rate_limited(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    connector = loaded(emulator, venue)
    connector.max_retry_after = 1
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=30)

    with pytest.raises(RateLimited) as caught:
        connector.fetch_ticker(SYMBOLS[venue]["spot"])

    assert caught.value.retry_after == 30.0 and no_sleep == []
    assert faults.hits(venue, "rate_limit") == 1


def test_a_short_retry_after_is_waited_then_the_read_is_retried(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    connector = loaded(emulator, venue)
    faults.set("rate_limit", venue=venue, endpoint=TICKER_ENDPOINTS[venue], retry_after=2, count=1)

    assert connector.fetch_ticker(SYMBOLS[venue]["spot"])["last"] > 0
    assert no_sleep == [2.0] and faults.hits(venue, "rate_limit") == 1


def test_a_binance_418_ban_is_rate_limited_with_its_retry_after(
    emulator: Any, faults: Faults, no_sleep: list[float]
) -> None:
    require_venue(emulator, "binance")
    connector = loaded(emulator, "binance")
    faults.set(
        "rate_limit", venue="binance", endpoint=TICKER_ENDPOINTS["binance"], status=418, retry_after=120
    )

    with pytest.raises(RateLimited) as caught:
        connector.fetch_ticker(SYMBOLS["binance"]["spot"])

    assert caught.value.retry_after == 120.0 and no_sleep == []


def test_a_503_is_retried_then_succeeds(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    connector = loaded(emulator, venue)
    faults.set("error", venue=venue, endpoint=TICKER_ENDPOINTS[venue], status=503, count=2)

    assert connector.fetch_ticker(SYMBOLS[venue]["spot"])["last"] > 0
    assert faults.hits(venue, "error") == 2 and no_sleep == [0.5, 1.0]


def test_a_503_that_persists_is_exchange_unavailable(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    connector = loaded(emulator, venue)
    faults.set("error", venue=venue, endpoint=TICKER_ENDPOINTS[venue], status=503)

    with pytest.raises(ExchangeUnavailable):
        connector.fetch_ticker(SYMBOLS[venue]["spot"])
    assert faults.hits(venue, "error") == connector.retries + 1


@pytest.mark.parametrize("lost", [{"status": 502}, {"drop": True}], ids=["502", "connection-dropped"])
def test_an_order_whose_answer_is_lost_after_the_venue_accepted_it_is_outcome_unknown_and_reconciles(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float], lost: dict[str, Any]
) -> None:
    connector = keyed(emulator, venue)
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(connector, spot)
    faults.set("error_after_accept", venue=venue, endpoint=ORDER_ENDPOINTS[venue], count=1, **lost)

    with pytest.raises(OutcomeUnknown) as caught:
        connector.create_order(spot, "limit", "buy", amount, price)

    assert faults.hits(venue, "error_after_accept") == 1  # sent exactly once, never retried
    found = connector.fetch_order_by_client_id(spot, caught.value.client_order_id or "")
    assert found["clientOrderId"] == caught.value.client_order_id and found["status"] == "open"
    connector.cancel_order(found["id"], spot)


def test_a_timeout_on_create_is_outcome_unknown_and_reconciles(
    emulator: Any, venue: str, faults: Faults, no_sleep: list[float]
) -> None:
    connector = keyed(emulator, venue)
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(connector, spot)
    client_order_id = f"timeout{venue}1"
    # The venue accepts the order and then holds the answer until the fault is cleared.
    faults.set("hang", venue=venue, endpoint=ORDER_ENDPOINTS[venue], accept=True, max_s=10)
    connector.exchange.timeout = 300  # ms
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            connector.create_order(spot, "limit", "buy", amount, price, client_order_id=client_order_id)
    finally:
        connector.exchange.timeout = 10_000
        faults.clear()

    assert caught.value.client_order_id == client_order_id
    assert faults.hits(venue, "hang") == 1
    found = connector.fetch_order_by_client_id(spot, client_order_id)
    assert found["status"] == "open"
    connector.cancel_order(found["id"], spot)


def test_an_order_beyond_the_balance_is_insufficient_funds(emulator: Any, venue: str) -> None:
    credentials = fresh_credentials(emulator, venue, "small", balances={"USDT": "100"})
    connector = connect(emulator, venue, credentials)
    spot = SYMBOLS[venue]["spot"]
    market = connector.market(spot)
    tick, step = Decimal(str(market["precision"]["price"])), Decimal(str(market["precision"]["amount"]))
    price = (connector.fetch_ticker(spot)["last"] * Decimal("0.9") // tick) * tick
    amount = (Decimal(1000) / price // step + 1) * step  # ~1,000 USDT: within the limits, 10x the balance

    assert connector.fetch_balance()["balances"]["USDT"]["free"] == 100
    with pytest.raises(InsufficientFunds):
        connector.create_order(spot, "limit", "buy", amount, price)


def test_an_unknown_order_id_is_order_not_found(emulator: Any, venue: str) -> None:
    with pytest.raises(OrderNotFound):
        keyed(emulator, venue).fetch_order("123456789", SYMBOLS[venue]["spot"])


def test_an_unknown_client_order_id_is_order_not_found(emulator: Any, venue: str) -> None:
    with pytest.raises(OrderNotFound):
        keyed(emulator, venue).fetch_order_by_client_id(SYMBOLS[venue]["spot"], "nosuchorder1")


def test_a_duplicate_client_order_id_is_an_invalid_order(emulator: Any, venue: str) -> None:
    connector = keyed(emulator, venue)
    spot = SYMBOLS[venue]["spot"]
    amount, price = far_below(connector, spot)
    first = connector.create_order(spot, "limit", "buy", amount, price, client_order_id="dupcase1")
    try:
        with pytest.raises(InvalidOrder):
            connector.create_order(spot, "limit", "buy", amount, price, client_order_id="dupcase1")
    finally:
        connector.cancel_order(first["id"], spot)


# ------------------------------------------------------------------ test connection


def test_check_connection_reports_what_a_good_key_may_do(emulator: Any, venue: str) -> None:
    result = check_connection(
        venue, demo_credentials(venue), environment="emulator", emulator_url=emulator.url
    )
    assert result.ok is True and result.error_code is None
    if result.can_trade is None:  # surface why the venue did not say (e.g. not emulated yet)
        create_connector(
            venue, demo_credentials(venue), environment="emulator", emulator_url=emulator.url
        ).fetch_permissions()
    assert result.can_read is True and result.can_trade in (True, False)
    assert "Connected to" in result.message


def test_check_connection_reports_that_a_read_only_key_cannot_trade(emulator: Any, venue: str) -> None:
    credentials = read_only_credentials(emulator, venue)
    result = check_connection(venue, credentials, environment="emulator", emulator_url=emulator.url)
    assert result.ok is True and result.can_read is True and result.can_trade is False


def test_check_connection_reports_a_bad_key_clearly(emulator: Any, venue: str) -> None:
    bad = Credentials("not-a-key-0000", "not-a-secret", "not-a-passphrase")
    result = check_connection(venue, bad, environment="emulator", emulator_url=emulator.url)
    assert result.ok is False and result.error_code == "exchange_credentials_rejected"
    assert "rejected the API key" in result.message


# ------------------------------------------------------------------ secrets


def test_no_secret_reaches_logs_reprs_or_errors_even_when_ccxt_echoes_the_request(
    emulator: Any, venue: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "leak-me-not-" + venue + "-0123456789"
    credentials = Credentials(demo_credentials(venue).api_key, secret, "leak-passphrase-1234")
    caplog.set_level(logging.DEBUG)  # ccxt logs request headers at DEBUG; they must not pass
    connector = connect(emulator, venue, credentials)
    with pytest.raises(CredentialsRejected) as caught:
        connector.fetch_balance()

    texts = [
        repr(connector),
        str(caught.value),
        "".join(traceback.format_exception(caught.value)),
        *(r.getMessage() for r in caplog.records),
    ]
    for text in texts:
        assert secret not in text and "leak-passphrase-1234" not in text


# ------------------------------------------------------------------ a venue without a module


def test_a_plain_ccxt_exchange_reaches_the_emulator_and_its_404_comes_back_as_our_error(
    emulator: Any,
) -> None:
    connector = create_connector("kraken", environment="emulator", emulator_url=emulator.url)
    before = requests_to_unknown_host(emulator, "api.kraken.com")

    with pytest.raises(connectors.ConnectorError) as caught:
        connector.fetch_ticker("BTC/USD")

    # The emulator's own 404 body, so the request really reached it, translated into our tree.
    assert "unknown host 'api.kraken.com'" in caught.value.message
    assert caught.value.code == "exchange_error"
    assert connector.capabilities()["fetch_ticker"] is True
    assert requests_to_unknown_host(emulator, "api.kraken.com") > before
