"""Account endpoints: what a token may see of the exchange accounts it was granted."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken, ExchangeAccount
from accounts.permissions import HasTokenScope
from accounts.selectors import account_get_reachable, account_list_reachable


class AccountOutputSerializer(serializers.ModelSerializer):
    """Never a secret: the key shows as its last four characters."""

    api_key = serializers.CharField(source="masked_api_key")

    class Meta:
        model = ExchangeAccount
        fields = [
            "id",
            "label",
            "exchange",
            "environment",
            "api_key",
            "uid",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def reachable_account(request: Request, account_id: int) -> ExchangeAccount:
    """The account, if this user and token may reach it; a 404 otherwise (never a 403 that
    would confirm the id exists)."""
    try:
        return account_get_reachable(user=request.user, token=request_token(request), account_id=account_id)
    except ExchangeAccount.DoesNotExist:
        raise NotFound("No such account") from None


def request_token(request: Request) -> ApiToken | None:
    """The API token the request came with; None for a browser session."""
    return request.auth if isinstance(request.auth, ApiToken) else None


def request_ip(request: Request) -> str | None:
    """The client's address for the audit trail."""
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR")


class AccountListApi(APIView):
    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "account:read"}

    @extend_schema(responses=AccountOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        accounts = account_list_reachable(user=request.user, token=request_token(request))
        return Response(AccountOutputSerializer(accounts, many=True).data)


class AccountDetailApi(APIView):
    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "account:read"}

    @extend_schema(responses=AccountOutputSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(AccountOutputSerializer(reachable_account(request, account_id)).data)
