#!/usr/bin/env bash
# Market data over REST on the embedded default: issue a market:read token for the demo
# operator (same VAR_DIR, so the same SQLite database) and fetch a Binance ticker from the
# emulator through GET /api/v1/markets/binance/ticker/. Prints one line; never the token.
# Run by .ci/smoke after `make run` answers /readyz, with BASE and VAR_DIR set.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BASE:?BASE (e.g. http://127.0.0.1:8000) must be set}"
: "${VAR_DIR:?VAR_DIR (the make run state folder) must be set}"
export VAR_DIR

token=$(.venv/bin/python manage.py issue_token --user operator --scopes market:read --name "smoke: market data" | tail -n 1)
[ -n "$token" ] || { echo "issue_token printed no token"; exit 1; }
# The token goes to curl through a header file, never on a command line (ps) or in output.
headers=$(mktemp)
body=$(mktemp)
trap 'rm -f "$headers" "$body"' EXIT
chmod 600 "$headers"
printf 'Authorization: Bearer %s\n' "$token" >"$headers"

url="$BASE/api/v1/markets/binance/ticker/?symbol=BTC%2FUSDT"
status=""
# The web process can answer /readyz a moment before the emulator listens: allow ~20 s.
for _ in $(seq 20); do
    status=$(curl -sS -o "$body" -w '%{http_code}' -H "@$headers" "$url" || echo "000")
    [ "$status" = "200" ] && break
    case "$status" in 502|503|000) sleep 1 ;; *) break ;; esac
done
if [ "$status" != "200" ]; then
    echo "GET /api/v1/markets/binance/ticker/ answered $status: $(head -c 400 "$body")"
    exit 1
fi

.venv/bin/python - "$body" <<'PY'
import json
import sys
from decimal import Decimal, InvalidOperation

with open(sys.argv[1]) as handle:
    answer = json.load(handle)
last = answer.get("data", {}).get("last")
try:
    price = Decimal(last)
except (InvalidOperation, TypeError):
    sys.exit(f"ticker has no numeric last price: {last!r}")
if not price.is_finite() or price <= 0:
    sys.exit(f"ticker last price is not a positive number: {last!r}")
print(
    f"market data: {answer['exchange']} {answer['symbol']} last={last} "
    f"source={answer['source']} age_ms={answer['age_ms']} ({answer['environment']})"
)
PY
