"""Stream endpoints under /api/v1/: health, and short-lived WebSocket tickets."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasTokenScope
from streams.auth import ticket_issue
from streams.models import StreamState
from streams.selectors import stream_health_list


class StreamHealthOutputSerializer(serializers.Serializer):
    exchange = serializers.CharField()
    environment = serializers.CharField()
    channel = serializers.CharField()
    symbol = serializers.CharField()
    state = serializers.ChoiceField(choices=StreamState.choices)
    last_message_age_ms = serializers.IntegerField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    reconnects = serializers.IntegerField()
    messages = serializers.IntegerField()
    published = serializers.IntegerField()
    leases = serializers.IntegerField()
    watchlisted = serializers.BooleanField()
    last_error = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class StreamListApi(APIView):
    """Health of every exchange stream the manager holds (any process may serve this)."""

    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "market:read"}

    @extend_schema(responses=StreamHealthOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = stream_health_list(environment=settings.MARKET_DATA_ENVIRONMENT)
        return Response(StreamHealthOutputSerializer(rows, many=True).data)


class StreamTicketApi(APIView):
    """A single-use ticket for ``/ws/v1/market/?ticket=...``, for clients that cannot send
    an Authorization header on the WebSocket handshake (browsers of other origins do not)."""

    permission_classes = [HasTokenScope]
    required_scopes = {"POST": "market:read"}

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "StreamTicket", {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()}
        ),
    )
    def post(self, request: Request) -> Response:
        ticket, ttl = ticket_issue(user=request.user)
        return Response({"ticket": ticket, "expires_in": ttl}, status=201)
