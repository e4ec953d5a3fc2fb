"""Stream routes under /api/v1/."""

from django.urls import URLPattern, path

from streams.apis import StreamListApi, StreamTicketApi

urlpatterns: list[URLPattern] = [
    path("streams/", StreamListApi.as_view(), name="stream-list"),
    path("streams/tickets/", StreamTicketApi.as_view(), name="stream-ticket"),
]
