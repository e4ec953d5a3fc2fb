"""The dashboard's page routes (mounted at the site root by connector_site/urls.py)."""

from django.urls import URLPattern, path

from streams.views import dashboard

urlpatterns: list[URLPattern] = [path("", dashboard, name="dashboard")]
