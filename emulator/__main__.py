"""``python -m emulator --host 127.0.0.1 --port 8700 [--seed N] [--account KEY:SECRET[:PASSPHRASE]]...``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from emulator.accounts import Account
from emulator.server import EmulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Exchange emulator (Binance, OKX, Bybit)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port (0: any free port; default 8700)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random walk (default 0)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        type=Account.parse,
        metavar="KEY:SECRET[:PASS]",
        help="add an API key (repeatable) that may read and trade, with the default balance on every venue",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = EmulatorServer(host=args.host, port=args.port, seed=args.seed, accounts=args.account)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"emulator listening on {server.url}", flush=True)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
