"""The versioned REST API (/api/v1/): each app contributes its own routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("markets.urls")),
    path("", include("trading.urls")),
    path("", include("streams.urls")),
]
