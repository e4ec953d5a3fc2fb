#!/usr/bin/env bash
# Streams smoke: a tool's WebSocket client with a market:read token gets live tickers.
# Env: BASE (http://127.0.0.1:PORT), VAR_DIR (the running instance's state folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOKEN=$(VAR_DIR="$VAR_DIR" timeout 60 .venv/bin/python manage.py issue_token --user operator --scopes market:read | tail -n 1)
BASE="$BASE" TOKEN="$TOKEN" timeout 30 .venv/bin/python - <<'PY'
import asyncio, json, os, time
import websockets

base = os.environ["BASE"]
url = base.replace("http://", "ws://").replace("https://", "wss://") + "/ws/v1/market/"

async def main():
    headers = {"Authorization": "Bearer " + os.environ["TOKEN"], "Origin": base}
    async with websockets.connect(url, additional_headers=headers) as ws:
        welcome = json.loads(await ws.recv())
        assert welcome.get("type") == "welcome", welcome
        await ws.send(json.dumps({"action": "subscribe", "exchange": "binance", "channel": "ticker", "symbol": "BTC/USDT"}))
        seqs, deadline = [], time.monotonic() + 10
        while len(seqs) < 2 and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
            assert "error" not in msg, msg
            if msg.get("type") == "update":
                seqs.append(msg["seq"])
        assert len(seqs) >= 2, f"only {len(seqs)} updates in 10 s"
        assert seqs == sorted(set(seqs)), f"sequence not rising: {seqs}"
        print(f"streams: {len(seqs)} BTC/USDT ticker updates, seq {seqs[0]} -> {seqs[-1]}, last {msg['data']['last']}")

asyncio.run(main())
PY
