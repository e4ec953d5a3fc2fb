"""Bench-only URLconf (``bench.settings``): every route of the product, plus the baselines of
the REST benchmark, each answering the bytes of one ticker response captured in the same run
(the file named by ``BENCH_BODY_FILE``):

* ``bench/hello/bare/``: a bare Django view returning those bytes;
* ``bench/hello/drf/``: a DRF hello-world ``APIView`` (no authentication, permission or
  throttle) rendering the same data, which gives the same bytes;
* ``bench/hello/auth/``: our market-data view base (Bearer token authentication, scope check,
  throttle) rendering the same data without reading the cache: a diagnostic that splits our
  ticker's cost between the auth stack and the ticker itself.

The product's ``connector_site.urls`` never includes this module.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connector_site import urls as site_urls
from markets.apis import MarketApi


@cache
def captured_body() -> bytes:
    # Read on first use: the bench writes the file after the server started.
    return Path(os.environ["BENCH_BODY_FILE"]).read_bytes()


@cache
def captured_data() -> Any:
    return json.loads(captured_body())


def bare_hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(captured_body(), content_type="application/json")


class DrfHello(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response(captured_data())


class AuthStackHello(MarketApi):
    def get(self, request: Request) -> Response:
        return Response(captured_data())


urlpatterns = [
    path("bench/hello/bare/", bare_hello),
    path("bench/hello/drf/", DrfHello.as_view()),
    path("bench/hello/auth/", AuthStackHello.as_view()),
    *site_urls.urlpatterns,
]

handler404 = site_urls.handler404
handler500 = site_urls.handler500
