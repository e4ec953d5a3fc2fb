"""Exchange connection management for provisioning tools (scope ``accounts:admin``).

POST /accounts/ creates an account owned by the token's user (secrets are write-only and
never come back), PATCH and DELETE change or remove it (owner or superuser only), and
POST /accounts/{id}/test/ checks the stored keys against the venue. Every change goes
through ``accounts.services``, which writes the same audit rows as the admin.

The list and detail views here extend the read-only ones in ``accounts/apis.py`` with the
write methods, since a URL has one view.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ErrorDetail, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.apis import (
    AccountDetailApi,
    AccountListApi,
    AccountOutputSerializer,
    reachable_account,
    request_ip,
    request_token,
)
from accounts.models import ExchangeAccount
from accounts.permissions import HasTokenScope
from connector_site.api_schema import error_envelope
from connectors.exchanges import exchange_choices

ERROR = error_envelope("AccountError")
ERRORS = {
    400: OpenApiResponse(ERROR, description="Invalid input; the field is named"),
    401: OpenApiResponse(ERROR, description="No or bad token"),
    403: OpenApiResponse(
        ERROR, description="The token lacks the scope, or the user does not own the account"
    ),
    404: OpenApiResponse(ERROR, description="No such account (or not reachable by this token)"),
    409: OpenApiResponse(ERROR, description="Label taken, or the account has orders"),
}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _label_taken() -> Conflict:
    return Conflict("You already have an account with this label", code="account_label_taken")


@contextmanager
def _account_write() -> Iterator[None]:
    """Model validation errors as our 400 naming the field; the unique label, when another
    request took it between our check and the write, as the 409 the check gives."""
    try:
        yield
    except DjangoValidationError as exc:
        raise _as_api_error(exc) from None
    except IntegrityError:
        raise _label_taken() from None


def _as_api_error(exc: DjangoValidationError) -> APIException:
    """A model validation error as our 400 naming the field (or a 409 for the unique label)."""
    errors = getattr(exc, "message_dict", {"__all__": exc.messages})
    field, messages = next(iter(errors.items()))
    message = str(messages[0]) if messages else "invalid"
    if "label" in message.lower() and ("exists" in message.lower() or "unique" in message.lower()):
        return _label_taken()
    name = None if field == "__all__" else field
    if name is None:
        return ValidationError({"non_field_errors": [ErrorDetail(message, code="invalid_input")]})
    return ValidationError({name: [ErrorDetail(message, code="invalid_input")]})


def _check_passphrase(exchange: str, passphrase: str | None) -> None:
    if exchange == "okx" and not passphrase:
        raise ValidationError(
            {"passphrase": [ErrorDetail("OKX API keys need their passphrase", code="required")]}
        )


def _owner_only(request: Request, account: ExchangeAccount) -> None:
    user = request.user
    if not (getattr(user, "is_superuser", False) or account.owner_id == user.pk):
        raise PermissionDenied("Only the account's owner may change or delete it")


# Choice errors name the allowed values, never echo the input: a secret pasted into the
# wrong field must not come back in a response.
NO_ECHO: dict[str, Any] = {"invalid_choice": "Not one of the allowed values."}


class AccountCreateInputSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=100)  # type: ignore[assignment]
    exchange = serializers.ChoiceField(choices=[], error_messages=NO_ECHO)
    environment = serializers.ChoiceField(
        choices=ExchangeAccount.EnvironmentChoice.choices, error_messages=NO_ECHO
    )
    api_key = serializers.CharField(max_length=512, write_only=True, trim_whitespace=True)
    api_secret = serializers.CharField(max_length=4096, write_only=True, trim_whitespace=True)
    passphrase = serializers.CharField(max_length=256, write_only=True, required=False, allow_blank=True)
    uid = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["exchange"].choices = exchange_choices()  # type: ignore[attr-defined]  # the connectors' allow-list, nothing else

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _check_passphrase(attrs["exchange"], attrs.get("passphrase"))
        return attrs


class AccountUpdateInputSerializer(serializers.Serializer):
    """Only these fields change; anything else sent (owner, exchange, ...) is ignored."""

    label = serializers.CharField(max_length=100, required=False)  # type: ignore[assignment]
    environment = serializers.ChoiceField(
        choices=ExchangeAccount.EnvironmentChoice.choices, required=False, error_messages=NO_ECHO
    )
    api_key = serializers.CharField(max_length=512, write_only=True, required=False, allow_blank=True)
    api_secret = serializers.CharField(max_length=4096, write_only=True, required=False, allow_blank=True)
    passphrase = serializers.CharField(max_length=256, write_only=True, required=False, allow_blank=True)
    uid = serializers.CharField(max_length=100, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class AccountListCreateApi(AccountListApi):
    required_scopes = {"GET": "account:read", "POST": "accounts:admin"}

    @extend_schema(
        operation_id="accounts_create",
        request=AccountCreateInputSerializer,
        responses={201: AccountOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = AccountCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        token = request_token(request)
        owner: Any = request.user
        if ExchangeAccount.objects.filter(owner=owner, label=data["label"]).exists():
            raise _label_taken()
        with _account_write(), transaction.atomic():
            account = services.account_create(
                actor=request.user, owner=request.user, ip=request_ip(request), **data
            )
            if token is not None:
                # The provisioning token may manage what it created; other tokens need a grant.
                token.accounts.add(account)
        return Response(AccountOutputSerializer(account).data, status=status.HTTP_201_CREATED)


class AccountDetailManageApi(AccountDetailApi):
    required_scopes = {"GET": "account:read", "PATCH": "accounts:admin", "DELETE": "accounts:admin"}

    @extend_schema(
        operation_id="accounts_partial_update",
        request=AccountUpdateInputSerializer,
        responses={200: AccountOutputSerializer, **ERRORS},
    )
    def patch(self, request: Request, account_id: int) -> Response:
        account = reachable_account(request, account_id)
        _owner_only(request, account)
        serializer = AccountUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "passphrase" in changes or "api_key" in changes:
            _check_passphrase(account.exchange, changes.get("passphrase") or account.passphrase)
        label = changes.get("label")
        if (
            label
            and label != account.label
            and ExchangeAccount.objects.filter(owner=account.owner, label=label).exists()
        ):
            raise _label_taken()
        with _account_write():
            account = services.account_update(
                account=account, actor=request.user, changes=changes, ip=request_ip(request)
            )
        return Response(AccountOutputSerializer(account).data)

    @extend_schema(operation_id="accounts_destroy", responses={204: None, **ERRORS})
    def delete(self, request: Request, account_id: int) -> Response:
        account = reachable_account(request, account_id)
        _owner_only(request, account)
        try:
            services.account_delete(account=account, actor=request.user, ip=request_ip(request))
        except ProtectedError:
            raise Conflict(
                "This account has orders on record and cannot be deleted; deactivate it instead "
                "(PATCH is_active=false)",
                code="account_has_orders",
            ) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountTestConnectionApi(APIView):
    permission_classes = [HasTokenScope]
    required_scopes = {"POST": "accounts:admin"}

    class AccountTestOutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField()
        message = serializers.CharField()
        can_read = serializers.BooleanField(allow_null=True)
        can_trade = serializers.BooleanField(allow_null=True)
        can_withdraw = serializers.BooleanField(allow_null=True)
        error_code = serializers.CharField(allow_null=True)
        warnings = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="accounts_test", request=None, responses={200: AccountTestOutputSerializer, **ERRORS}
    )
    def post(self, request: Request, account_id: int) -> Response:
        """Check the stored keys against the venue. Always 200 with the report: ``ok`` false
        and ``error_code`` (e.g. ``exchange_credentials_rejected``) say what went wrong."""
        account = reachable_account(request, account_id)
        result = services.account_test_connection(account=account, actor=request.user, ip=request_ip(request))
        data = {
            "ok": result.ok,
            "message": result.message,
            "can_read": result.can_read,
            "can_trade": result.can_trade,
            "can_withdraw": result.can_withdraw,
            "error_code": result.error_code,
            "warnings": list(result.warnings),
        }
        return Response(self.AccountTestOutputSerializer(data).data)
