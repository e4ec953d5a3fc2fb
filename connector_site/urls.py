"""URL configuration: admin, health probes, the REST API and the dashboard."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from connector_site.health import healthz, readyz

admin.site.site_header = "Exchange Connector"
admin.site.site_title = "Exchange Connector"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("connector_site.api_urls")),
    path("", include("streams.dashboard_urls")),
]

handler404 = "connector_site.error_views.not_found"
handler500 = "connector_site.error_views.server_error"
