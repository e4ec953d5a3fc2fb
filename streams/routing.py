"""WebSocket routes, mounted by connector_site/asgi.py behind origin and session checks."""

from django.urls import URLPattern, path

from streams.consumers import MarketStreamConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/v1/market/", MarketStreamConsumer.as_asgi(), name="ws-market"),
]
