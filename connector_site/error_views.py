"""Error pages: the API answers with its JSON envelope even when no route matched."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from connector_site.api_errors import error_body

API_PREFIXES = ("/api/", "/ws/")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def not_found(request: HttpRequest, exception: Any = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "No such endpoint"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Never a traceback: the error is logged (redacted) by Django's request logger.
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged"), status=500)
    return defaults.server_error(request)
