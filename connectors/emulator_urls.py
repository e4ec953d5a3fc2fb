"""The one mapping from a venue URL to its address on the exchange emulator.

A venue URL ``https://HOST[:PORT]/PATH`` is reached at ``EMULATOR_URL/HOST/PATH`` and
``wss://HOST[:PORT]/PATH`` at the emulator's ``ws://`` address with the same path: the
original host becomes the first path segment, so one emulator can serve every host of
every venue and route by host and path (Binance's spot, futures and options hosts share
paths such as ``/futures/data``). The port is dropped: no venue serves different APIs
on one host by port.

CCXT URL templates keep their placeholders (``https://api.{hostname}`` becomes
``http://127.0.0.1:8700/api.{hostname}``); CCXT fills them in per request, so the host
segment the emulator sees is the real one.

This module imports nothing but the standard library: the emulator's tests call it too,
and the emulator itself must not import the connectors.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["emulator_host_url", "repoint_url_tree", "to_emulator_url"]

_VENUE_URL = re.compile(r"^(?P<scheme>https?|wss?)://(?P<host>[^/:?#]+)(?::\d+)?(?P<rest>.*)$")


def emulator_host_url(emulator_url: str, host: str, *, websocket: bool = False) -> str:
    """Return the emulator's base URL for one venue host (``http://E/HOST`` or ``ws://E/HOST``)."""
    base = emulator_url.rstrip("/")
    if websocket:
        parts = urlsplit(base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        base = f"{scheme}://{parts.netloc}{parts.path}"
    return f"{base}/{host}"


def to_emulator_url(url: str, emulator_url: str) -> str:
    """Map one venue URL onto the emulator; anything that is not an absolute URL is returned as is."""
    match = _VENUE_URL.match(url)
    if match is None:
        return url
    websocket = match["scheme"].startswith("ws")
    return emulator_host_url(emulator_url, match["host"], websocket=websocket) + match["rest"]


def repoint_url_tree(tree: Any, emulator_url: str) -> Any:
    """Apply :func:`to_emulator_url` to every string in a nested dict/list (CCXT's ``urls['api']``)."""
    if isinstance(tree, dict):
        return {key: repoint_url_tree(value, emulator_url) for key, value in tree.items()}
    if isinstance(tree, list):
        return [repoint_url_tree(value, emulator_url) for value in tree]
    if isinstance(tree, str):
        return to_emulator_url(tree, emulator_url)
    return tree
