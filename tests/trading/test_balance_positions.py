"""GET balance and positions: read scope, per-account access, and every venue error class
with its status and body."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors import create_connector
from tests.trading.conftest import VENUES, require_venue, skip_if_not_emulated

pytestmark = pytest.mark.django_db

BALANCE = "GET */api/v3/account"


def smallest_order(emulator, venue, symbol):
    """The smallest amount the market takes (its step, its minimum and its minimum value)."""
    connector = create_connector(venue, environment="emulator", emulator_url=emulator.url)
    market = connector.market(symbol)
    step = Decimal(str(market["precision"]["amount"]))
    amount = max(step, Decimal(str(market["limits"]["amount"].get("min") or step)))
    value_min = Decimal(str((market["limits"].get("cost") or {}).get("min") or 0))
    price = connector.fetch_ticker(symbol)["last"] * Decimal(str(market.get("contractSize") or 1))
    while amount * price < value_min * Decimal("1.2"):
        amount += step
    return format(amount.normalize(), "f")


@pytest.fixture
def fast_retries(monkeypatch):
    """Reads retry temporary errors with backoff; keep the waits short here."""
    from connectors import retry

    monkeypatch.setattr(retry, "sleep", lambda seconds: None)


class TestBalance:
    def test_it_returns_the_venue_balances_as_strings(self, api, seeded_emulator, trading_account):
        response = api("GET", "balance/")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["account_id"] == trading_account.pk and body["exchange"] == "binance"
        usdt = body["balances"]["USDT"]
        assert set(usdt) == {"free", "used", "total"}
        assert all(isinstance(v, str) for v in usdt.values())
        assert "e" not in usdt["total"].lower()  # plain decimal strings, never floats or exponents
        assert all(entry["total"] != "0" for entry in body["balances"].values())

    def test_include_zero_lists_empty_currencies_too(self, api, seeded_emulator):
        some = api("GET", "balance/").json()["balances"]
        everything = api("GET", "balance/?include_zero=true").json()["balances"]
        assert set(some) <= set(everything)

    def test_a_malformed_account_type_is_a_400_naming_it(self, api, seeded_emulator):
        response = api("GET", "balance/?type=../../x")
        assert response.status_code == 400 and response.json()["error"]["field"] == "type"

    def test_the_read_only_teammate_may_read_and_the_outsider_gets_404(self, api, seeded_emulator):
        assert api("GET", "balance/", as_="teammate").status_code == 200
        response = api("GET", "balance/", as_="outsider")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"

    def test_a_token_without_account_read_gets_403(self, client, make_token, owner, trading_account):
        _, key = make_token(owner, ["trade"], [trading_account])
        response = client.get(
            f"/api/v1/accounts/{trading_account.pk}/balance/", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert response.status_code == 403

    def test_keys_the_venue_rejects_are_a_400_never_a_401(
        self, make_account, make_token, owner, client, seeded_emulator, settings
    ):
        settings.EMULATOR_URL = seeded_emulator.url
        bad = make_account(label="bad keys", exchange="binance", api_secret="not-the-secret-the-venue-has")
        _, key = make_token(owner, ["account:read"], [bad])
        response = client.get(f"/api/v1/accounts/{bad.pk}/balance/", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "exchange_credentials_rejected"
        assert "not-the-secret" not in response.content.decode()

    def test_the_venue_rate_limit_is_a_429_with_retry_after(self, api, seeded_emulator):
        with seeded_emulator.faults.active("rate_limit", "binance", BALANCE, retry_after=30):
            response = api("GET", "balance/")
        assert response.status_code == 429
        assert response["Retry-After"] == "30"
        assert response.json()["error"]["code"] == "rate_limited"

    def test_a_venue_in_maintenance_is_a_503(self, api, seeded_emulator, fast_retries):
        with seeded_emulator.faults.active("error", "binance", BALANCE, status=503):
            response = api("GET", "balance/")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "exchange_unavailable"
        assert set(response.json()) == {"error"}
        assert int(response["Retry-After"]) >= 1  # the venue gave no time; we still say when


class TestPositions:
    @pytest.mark.parametrize("venue", VENUES, indirect=True)
    def test_it_lists_open_positions_with_money_as_strings(self, api, seeded_emulator, venue):
        require_venue(seeded_emulator, venue)
        response = api("GET", "positions/")
        skip_if_not_emulated(response)
        assert response.status_code == 200, response.json()
        assert isinstance(response.json(), list)

    @pytest.mark.parametrize("exchange", VENUES)
    def test_an_open_position_is_listed_without_naming_its_symbol(
        self, own_key_api, seeded_emulator, exchange
    ):
        # Without ?symbol= the connector asks every contract category (Bybit: linear per
        # settle coin and inverse; it used to ask category=spot and get 10001).
        call = own_key_api(exchange, "positions")
        swap = "BTC/USDT:USDT"
        order = {
            "symbol": swap,
            "side": "buy",
            "type": "market",
            "amount": smallest_order(seeded_emulator, exchange, swap),
        }
        assert call("POST", "orders/", order).status_code == 201

        response = call("GET", "positions/")

        assert response.status_code == 200, response.json()
        [position] = [p for p in response.json() if p["symbol"] == swap]
        assert position["side"] == "long"
        assert isinstance(position["contracts"], str) and Decimal(position["contracts"]) > 0
        assert isinstance(position["entry_price"], str) and "e" not in position["entry_price"].lower()

    def test_the_outsider_gets_404_and_a_token_without_account_read_403(
        self, api, client, make_token, owner, trading_account
    ):
        assert api("GET", "positions/", as_="outsider").status_code == 404
        _, key = make_token(owner, ["trade"], [trading_account])
        response = client.get(
            f"/api/v1/accounts/{trading_account.pk}/positions/", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert response.status_code == 403

    def test_a_venue_without_the_endpoint_is_a_clean_4xx_not_a_500(self, api, seeded_emulator):
        response = api("GET", "positions/")
        if response.status_code == 200:  # once the emulator serves Binance futures accounts
            assert isinstance(response.json(), list)
        else:
            assert response.status_code == 400
            assert set(response.json()["error"]) == {"code", "message", "field"}
