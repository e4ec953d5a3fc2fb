"""The emulator against CCXT's recorded payloads (``emulator/data/ccxt-static``), for every venue.

* Shape (:func:`call_recorded`, :func:`shape_mismatches`): for every recorded response whose endpoint the
  emulator serves, CCXT makes the same call against the emulator and the raw answer must have the recorded
  field names with the same JSON types, recursively.
* Replay (:func:`replay_recorded`): every recorded request (exact URL and body CCXT sends) to a served
  endpoint is sent again (signed afresh by the venue's test) and must be understood: no 404 and no
  parameter-level error.

Each venue's ``test_<venue>_fixtures.py`` keeps its explicit lists (unserved cases, substituted inputs) and
what is venue-specific: the inputs, the signing, and which answers mean "not understood".
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

import ccxt
import orjson

from emulator.catalogue import load_json
from emulator.routing import Route
from emulator.server import EmulatorServer

HTTP_METHODS = ("GET", "POST", "DELETE", "PUT")


def cases(kind: str, venue: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(name, ccxt_method, case)`` of the recorded ``kind`` ("response" or "request"); name is
    ``method#index``."""
    for method, recorded in load_json(kind, venue)["methods"].items():
        for index, case in enumerate(recorded):
            yield f"{method}#{index}", method, case


def shape_mismatches(recorded: Any, ours: Any, path: str = "$") -> list[str]:
    """Where ``ours`` lacks a recorded field or has another JSON type. CCXT's recordings store some integers
    (ids, times) as digit strings where the venue sends numbers, so a digit string matches an int."""
    if recorded is None:
        return []
    if isinstance(recorded, dict):
        if not isinstance(ours, dict):
            return [f"{path}: object expected, got {type(ours).__name__}"]
        problems = [f"{path}.{k}: missing" for k in recorded if k not in ours]
        for key in recorded.keys() & ours.keys():
            problems += shape_mismatches(recorded[key], ours[key], f"{path}.{key}")
        return problems
    if isinstance(recorded, list):
        if not isinstance(ours, list):
            return [f"{path}: array expected, got {type(ours).__name__}"]
        if recorded and not ours:
            return [f"{path}: empty array, nothing to compare"]
        return shape_mismatches(recorded[0], ours[0], f"{path}[0]") if recorded else []
    if isinstance(recorded, bool) or isinstance(ours, bool):
        return [] if type(recorded) is type(ours) else [f"{path}: {type(recorded).__name__} expected"]
    if isinstance(recorded, str) and isinstance(ours, int) and recorded.lstrip("-").isdigit():
        return []
    if isinstance(recorded, int | float) and isinstance(ours, int | float):
        return []
    return (
        []
        if type(recorded) is type(ours)
        else [f"{path}: {type(recorded).__name__} expected, got {type(ours).__name__} ({ours!r})"]
    )


def served(server: EmulatorServer, url: str | None) -> bool:
    """Whether the emulator routes the emulator URL ``url`` (``http://EMULATOR/HOST/PATH``) for any method."""
    if url is None:
        return False
    host, _, path = urlsplit(url).path.lstrip("/").partition("/")
    return any(server.router.resolve(host, method, "/" + path) is not None for method in HTTP_METHODS)


def call_recorded(
    server: EmulatorServer,
    exchange: Any,
    venue: str,
    arguments: Callable[[str, dict[str, Any]], list[Any]],
    errors: tuple[type[BaseException], ...] = (ccxt.BaseError, TypeError),
) -> tuple[dict[str, tuple[dict[str, Any], Any]], set[str]]:
    """Make every recorded call with ``arguments(name, case)`` (its recorded input, or a substitute);
    ``errors`` are expected (an answer is still recorded). Returns ``{name: (case, our raw answer)}`` for
    the calls that reached a served endpoint, and the names of the others."""
    answers: dict[str, tuple[dict[str, Any], Any]] = {}
    unserved: set[str] = set()
    for name, method, case in cases("response", venue):
        exchange.last_request_url = None
        with contextlib.suppress(*errors):
            getattr(exchange, method)(*arguments(name, case))
        if served(server, exchange.last_request_url):
            answers[name] = (case, orjson.loads(exchange.last_http_response))
        else:
            unserved.add(name)
    return answers, unserved


def compare(
    answers: dict[str, tuple[dict[str, Any], Any]],
    recorded: Callable[[Any], Any] = lambda response: response,
) -> dict[str, list[str]]:
    """The shape mismatches of each answer against its (``recorded``-adjusted) recorded response."""
    problems = {}
    for name, (case, ours) in answers.items():
        mismatch = shape_mismatches(recorded(case["httpResponse"]), ours)
        if mismatch:
            problems[name] = mismatch
    return problems


def report_shapes(compared: Any, unserved: set[str], substituted: dict[str, str]) -> None:
    print(
        "compared:",
        sorted(compared),
        "\nno served endpoint:",
        sorted(unserved),
        "\nsubstituted:",
        substituted,
    )


# A recorded request made ready to send: query string, body, headers.
Prepared = tuple[str, str | None, dict[str, str]]


def replay_recorded(
    server: EmulatorServer,
    venue: str,
    http_method: Callable[[str, str | None], str],
    prepare: Callable[[Route, str, SplitResult, str | None], Prepared],
) -> tuple[dict[str, tuple[int, Any]], set[str]]:
    """Send every recorded request whose endpoint is served: ``http_method(ccxt_method, body)`` chooses the
    HTTP method, ``prepare(route, http_method, url, body)`` signs it. Returns ``{name: (status, answer)}``
    and the ``"METHOD host/path"`` of the endpoints that are not served."""
    replies: dict[str, tuple[int, Any]] = {}
    skipped: set[str] = set()
    for name, method, case in cases("request", venue):
        url, body = urlsplit(case["url"]), case.get("output")
        verb = http_method(method, body)
        route = server.router.resolve(url.netloc, verb, url.path)
        if route is None:
            skipped.add(f"{verb} {url.netloc}{url.path}")
            continue
        query, data, headers = prepare(route, verb, url, body)
        request = urllib.request.Request(
            f"{server.url}/{url.netloc}{url.path}" + (f"?{query}" if query else ""),
            data=data.encode() if data is not None else None,
            method=verb,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                replies[name] = (response.status, orjson.loads(response.read()))
        except urllib.error.HTTPError as error:
            replies[name] = (error.code, orjson.loads(error.read()))
    print(f"replayed {len(replies)}, endpoints not served:", *sorted(skipped), sep="\n  ")
    return replies, skipped


def json_post_or_get(_method: str, body: str | None) -> str:
    """The HTTP method of a recorded request of a JSON API: POST when it has a body."""
    return "POST" if body is not None else "GET"
