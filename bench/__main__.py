"""``python -m bench [NAME [OPTIONS...]]`` (``make bench``): every benchmark in turn with its
short default run (each well under two minutes), or one by name with its own options, e.g.
``python -m bench rest --seconds 30`` (``python -m bench NAME --help`` lists them).

Benchmarks: ``streams`` (docs/streams.md), ``rest`` and ``orders`` (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib
import sys
import traceback

BENCHMARKS = {
    "streams": "bench.streams",
    "rest": "bench.rest",
    "orders": "bench.orders",
}


def run_one(name: str, argv: list[str]) -> None:
    importlib.import_module(BENCHMARKS[name]).main(argv)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return
    if args:
        name, *options = args
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        run_one(name, options)
        return
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        try:
            run_one(name, [])
        except Exception:
            # One broken benchmark must not hide the others' numbers.
            traceback.print_exc()
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
