"""``python -m bench`` (``make bench``): every benchmark, short default runs."""

from __future__ import annotations

from bench import streams


def main() -> None:
    streams.main([])


if __name__ == "__main__":
    main()
