"""WebSocket routes (the market-data consumer arrives with the streams issue)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
