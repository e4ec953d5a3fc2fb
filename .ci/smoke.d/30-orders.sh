#!/usr/bin/env bash
# Smoke: a paper order through the REST API on the embedded default (`make run`).
# Needs BASE (the web address) and VAR_DIR (the same SQLite database as `make run`).
# Issues a token for the demo operator, places a small limit buy far below the market on
# the "binance demo" account (emulator), reads it back and cancels it.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BASE:?BASE must be set}" "${VAR_DIR:?VAR_DIR must be set}"
export VAR_DIR
unset DATABASE_URL REDIS_URL
PY=.venv/bin/python
EMULATOR="${EMULATOR_URL:-http://127.0.0.1:8700}"
fail() { echo "orders smoke FAILED: $*" >&2; exit 1; }
field() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]) if isinstance(d, dict) else "")' "$1"; }

account_id=$("$PY" manage.py shell -c "
from accounts.models import ExchangeAccount
print(ExchangeAccount.objects.get(owner__username='operator', label='binance demo').pk)" | tail -n 1)
[[ "$account_id" =~ ^[0-9]+$ ]] || fail "no 'binance demo' account for operator (got: $account_id)"
echo "account: binance demo is #$account_id"

token=$("$PY" manage.py issue_token --user operator --scopes account:read,trade --accounts "$account_id" \
    --name "ci smoke orders" --expires-in-days 1 | tail -n 1)
[ -n "$token" ] || fail "issue_token printed no token"
echo "token: issued for operator with account:read,trade"
auth=(-H "Authorization: Bearer $token")
orders="$BASE/api/v1/accounts/$account_id/orders/"

last=$(curl -fsS "$EMULATOR/api.binance.com/api/v3/ticker/price?symbol=BTCUSDT" | field price)
price=$("$PY" -c "import sys; from decimal import Decimal; print(int(Decimal(sys.argv[1]) / 2))" "$last")
echo "market: BTC/USDT last $last, bidding $price"

body=$(printf '{"symbol":"BTC/USDT","side":"buy","type":"limit","amount":"0.001","price":"%s"}' "$price")
out=$(curl -sS -o "$VAR_DIR/order.json" -w '%{http_code}' "${auth[@]}" -H "Content-Type: application/json" \
    -H "Idempotency-Key: smoke-$(date +%s)-$$" -d "$body" "$orders")
[ "$out" = "201" ] || fail "POST order answered $out: $(cat "$VAR_DIR/order.json")"
order_id=$(field id <"$VAR_DIR/order.json")
status=$(field status <"$VAR_DIR/order.json")
[ "$status" = "open" ] || fail "new order is $status, expected open"
echo "place: 201, order #$order_id open ($(field client_order_id <"$VAR_DIR/order.json"))"

status=$(curl -fsS "${auth[@]}" "$orders$order_id/" | field status)
[ "$status" = "open" ] || fail "GET order: $status, expected open"
echo "get: order #$order_id is open"

out=$(curl -sS -o "$VAR_DIR/cancel.json" -w '%{http_code}' "${auth[@]}" -X DELETE "$orders$order_id/")
status=$(field status <"$VAR_DIR/cancel.json")
[ "$out" = "200" ] && [ "$status" = "canceled" ] || fail "DELETE answered $out with status $status"
echo "cancel: order #$order_id canceled"
