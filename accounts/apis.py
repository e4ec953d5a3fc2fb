"""Account endpoints: what a token may see of the exchange accounts it was granted."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ExchangeAccount
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
        return account_get_reachable(user=request.user, token=_token(request), account_id=account_id)
    except ExchangeAccount.DoesNotExist:
        raise NotFound("No such account") from None


def _token(request: Request) -> Any:
    return request.auth if request.auth is not None and not isinstance(request.auth, str) else None


class AccountListApi(APIView):
    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "account:read"}

    @extend_schema(responses=AccountOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        accounts = account_list_reachable(user=request.user, token=_token(request))
        return Response(AccountOutputSerializer(accounts, many=True).data)


class AccountDetailApi(APIView):
    permission_classes = [HasTokenScope]
    required_scopes = {"GET": "account:read"}

    @extend_schema(responses=AccountOutputSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(AccountOutputSerializer(reachable_account(request, account_id)).data)
