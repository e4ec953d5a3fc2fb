"""Orders, balances, positions and derivatives settings of one exchange account.

Every view first resolves the account through ``reachable_account`` (a 404 for an account
the user or token may not reach) and checks the token's scope per method
(``account:read`` to read, ``trade`` to write). Connector errors need no handling here:
``connector_site/api_errors.py`` maps them; only order placement adds the order to the
error body, since the order exists (journaled) even when the venue refused it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import reachable_account, request_ip, request_token
from accounts.models import ExchangeAccount
from accounts.permissions import HasTokenScope
from connector_site.api_errors import connector_status, error_body, exception_handler
from connector_site.api_schema import (
    ErrorDetailSerializer,
    ErrorEnvelopeSerializer,
    error_envelope,
    error_response,
)
from connectors.types import Position
from trading import selectors, services
from trading.errors import IdempotentReplay, OrderFailed, invalid
from trading.models import Order, OrderStatus

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


# --------------------------------------------------------------------------- shared pieces


class Money(serializers.DecimalField):
    """A decimal serialised as a plain string without exponent or trailing zeros ("0.001")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 36)
        kwargs.setdefault("decimal_places", 18)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        if value is None:
            return None
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return f"{number.normalize():f}"


class PositiveMoney(Money):
    def to_internal_value(self, data: Any) -> Decimal:
        value = super().to_internal_value(data)
        if value <= 0:
            raise serializers.ValidationError("must be greater than zero")
        return value


class AccountScopedApi(APIView):
    permission_classes = [HasTokenScope]

    def account(self, request: Request, account_id: int) -> ExchangeAccount:
        return reachable_account(request, account_id)


class OrderEventSerializer(serializers.Serializer):
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    reason = serializers.CharField()
    at = serializers.DateTimeField()


class OrderOutputSerializer(serializers.ModelSerializer):
    account_id = serializers.IntegerField()
    amount = Money()
    price = Money(allow_null=True)
    filled = Money()
    average = Money(allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "account_id",
            "client_order_id",
            "exchange_order_id",
            "symbol",
            "side",
            "type",
            "amount",
            "price",
            "filled",
            "average",
            "time_in_force",
            "reduce_only",
            "post_only",
            "status",
            "last_error_code",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields


class OrderDetailOutputSerializer(OrderOutputSerializer):
    history = OrderEventSerializer(source="events", many=True)

    class Meta(OrderOutputSerializer.Meta):
        fields = [*OrderOutputSerializer.Meta.fields, "history"]
        read_only_fields = fields


OrderErrorSerializer = error_envelope(
    "OrderError",
    detail={"client_order_id": serializers.CharField(required=False)},
    order=OrderOutputSerializer(),
)

COMMON_ERRORS = {
    400: error_response("Invalid input (the field is named) or the venue refused"),
    401: error_response("No or bad token"),
    403: error_response(
        "The token lacks the scope (permission_denied), or the venue refused the account's API key "
        "this action (exchange_permission_denied: e.g. a read-only key trading)"
    ),
    404: error_response("No such account (or not reachable by this token)"),
    429: error_response("Rate limited; see Retry-After"),
    502: error_response("Venue error"),
    503: error_response("Venue unavailable"),
}


def _with_order(response: Response, order: Order) -> Response:
    response.data["order"] = OrderOutputSerializer(order).data
    return response


def _kept_headers(response: Response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k in ("Retry-After", "Location")}


def placement_response(order: Order, request: Request | None = None) -> Response:
    """201 with the order once the venue answered; 202 with the envelope and the order when
    the outcome is unknown (reconciliation resolves it, never a re-send)."""
    if order.status in (OrderStatus.UNKNOWN, OrderStatus.PENDING_SUBMIT):
        body = error_body(
            "outcome_unknown",
            order.last_error_message or "The order was journaled; its outcome at the venue is not known yet",
        )
        body["error"]["client_order_id"] = order.client_order_id
        return _with_order(Response(body, status=status.HTTP_202_ACCEPTED), order)
    if order.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
        code = order.last_error_code or "invalid_order"
        body = error_body(code, order.last_error_message)
        return _with_order(Response(body, status=connector_status(code)), order)
    headers = {"Location": f"/api/v1/accounts/{order.account_id}/orders/{order.pk}/"}
    return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED, headers=headers)


# --------------------------------------------------------------------------- orders


class OrderListCreateApi(AccountScopedApi):
    required_scopes = {"GET": "account:read", "POST": "trade"}

    class OrderCreateInputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=64)
        side = serializers.ChoiceField(choices=Order.Side.choices)
        type = serializers.ChoiceField(choices=Order.Type.choices)
        amount = PositiveMoney()
        price = PositiveMoney(required=False, allow_null=True)
        time_in_force = serializers.ChoiceField(choices=Order.TimeInForce.choices, required=False, default="")
        reduce_only = serializers.BooleanField(required=False, default=False)
        post_only = serializers.BooleanField(required=False, default=False)
        client_order_id = serializers.CharField(max_length=64, required=False, allow_null=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs["type"] == Order.Type.LIMIT and attrs.get("price") is None:
                raise invalid("price", "price is required for a limit order", code="required")
            return attrs

    class OrderFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
        symbol = serializers.CharField(max_length=64, required=False)

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 200

    @extend_schema(
        operation_id="orders_list",
        parameters=[
            OrderFilterSerializer,
            OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, at most 200)"),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses={
            200: inline_serializer(
                "PaginatedOrders",
                fields={
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OrderOutputSerializer(many=True),
                },
            ),
            **COMMON_ERRORS,
        },
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = self.account(request, account_id)
        filters = self.OrderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list(account=account, **filters.validated_data)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Same key + same body returns the first response; never a second order",
            )
        ],
        responses={
            201: OrderOutputSerializer,
            202: OpenApiResponse(OrderErrorSerializer, description="Outcome unknown: reconciled later"),
            409: OpenApiResponse(
                ErrorEnvelopeSerializer,
                description="Kill switch, duplicate client order id, reused or in-flight Idempotency-Key",
            ),
            **COMMON_ERRORS,
            400: OpenApiResponse(
                OrderErrorSerializer,
                description="Invalid input, or rejected by the venue (the body then carries the order)",
            ),
            403: OpenApiResponse(
                OrderErrorSerializer,
                description="The token lacks the trade scope (permission_denied), or the venue refused the "
                "account's API key permission to trade (exchange_permission_denied; the body carries the "
                "rejected order)",
            ),
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = self.account(request, account_id)
        serializer = self.OrderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = self._claim(request)  # raises IdempotentReplay for a repeated request
        try:
            order = services.order_place(
                account=account,
                actor=request.user,
                token=request_token(request),
                idempotency_key=record,
                ip=request_ip(request),
                **serializer.validated_data,
            )
            response = placement_response(order)
        except OrderFailed as failure:
            response = _with_order(exception_handler(failure.cause, {"request": request}), failure.order)  # type: ignore[arg-type]
        except BaseException:
            if record is not None:
                services.idempotency_release(record=record)  # only if no order was journaled
            raise
        if record is not None:
            services.idempotency_complete(
                record=record,
                status=response.status_code,
                body=response.data,
                headers=_kept_headers(response),
            )
        return response

    def _claim(self, request: Request) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not IDEMPOTENCY_KEY.match(key):
            raise invalid("Idempotency-Key", "Idempotency-Key must be 1-255 printable ASCII characters")
        fingerprint = services.request_fingerprint(
            method=request.method or "POST", path=request.path, data=request.data
        )
        return services.idempotency_claim(
            user=request.user, token=request_token(request), key=key, fingerprint=fingerprint
        )

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, IdempotentReplay):
            record = exc.record
            if exc.orphaned:
                response = placement_response(record.order)
                services.idempotency_complete(
                    record=record,
                    status=response.status_code,
                    body=response.data,
                    headers=_kept_headers(response),
                )
                return response
            headers = {**(record.response_headers or {}), "Idempotent-Replayed": "true"}
            return Response(record.response_body, status=record.response_status, headers=headers)
        return super().handle_exception(exc)


class OrderDetailApi(AccountScopedApi):
    required_scopes = {"GET": "account:read", "DELETE": "trade"}

    def order(self, request: Request, account_id: int, order_id: int) -> Order:
        account = self.account(request, account_id)
        try:
            return selectors.order_get(account=account, order_id=order_id)
        except Order.DoesNotExist:
            raise NotFound("No such order") from None

    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[
            OpenApiParameter(
                "refresh", OpenApiTypes.BOOL, description="Ask the venue first (reconciles an unknown order)"
            )
        ],
        responses={200: OrderDetailOutputSerializer, **COMMON_ERRORS},
    )
    def get(self, request: Request, account_id: int, order_id: int) -> Response:
        order = self.order(request, account_id, order_id)
        if request.query_params.get("refresh") in ("1", "true", "yes"):
            order = services.order_sync_from_venue(order=order)
        return Response(OrderDetailOutputSerializer(order).data)

    @extend_schema(
        operation_id="orders_cancel",
        responses={
            200: OrderOutputSerializer,
            409: error_response("Not open (or outcome still unknown)"),
            **COMMON_ERRORS,
        },
    )
    def delete(self, request: Request, account_id: int, order_id: int) -> Response:
        order = self.order(request, account_id, order_id)
        order = services.order_cancel(
            order=order, actor=request.user, token=request_token(request), ip=request_ip(request)
        )
        return Response(OrderOutputSerializer(order).data)


class OrderCancelAllApi(AccountScopedApi):
    required_scopes = {"POST": "trade"}

    class OrderCancelAllInputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=64, required=False)

    @extend_schema(
        operation_id="orders_cancel_all",
        request=OrderCancelAllInputSerializer,
        responses={
            200: inline_serializer(
                "CancelAllResult",
                fields={
                    "canceled": OrderOutputSerializer(many=True),
                    "failed": inline_serializer(
                        "CancelFailure",
                        fields={"order": OrderOutputSerializer(), "error": ErrorDetailSerializer()},
                        many=True,
                    ),
                },
            ),
            **COMMON_ERRORS,
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = self.account(request, account_id)
        serializer = self.OrderCancelAllInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        canceled, failed = services.order_cancel_all(
            account=account,
            actor=request.user,
            token=request_token(request),
            ip=request_ip(request),
            symbol=serializer.validated_data.get("symbol"),
        )
        failures = []
        for order, exc in failed:
            rendered = exception_handler(exc, {"request": request})
            failures.append(
                {"order": OrderOutputSerializer(order).data, **(rendered.data if rendered else {})}
            )
        return Response({"canceled": OrderOutputSerializer(canceled, many=True).data, "failed": failures})


# --------------------------------------------------------------------------- balances and positions


class BalanceEntrySerializer(serializers.Serializer):
    free = Money(allow_null=True)
    used = Money(allow_null=True)
    total = Money(allow_null=True)


class AccountBalanceApi(AccountScopedApi):
    required_scopes = {"GET": "account:read"}

    class BalanceOutputSerializer(serializers.Serializer):
        account_id = serializers.IntegerField()
        exchange = serializers.CharField()
        timestamp = serializers.IntegerField(allow_null=True)
        balances = serializers.DictField(child=BalanceEntrySerializer())

    @extend_schema(
        operation_id="accounts_balance",
        parameters=[
            OpenApiParameter(
                "type", OpenApiTypes.STR, description="Venue account type, e.g. spot, swap, future"
            ),
            OpenApiParameter(
                "include_zero", OpenApiTypes.BOOL, description="Also list currencies with nothing"
            ),
        ],
        responses={200: BalanceOutputSerializer, **COMMON_ERRORS},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = self.account(request, account_id)
        account_type = request.query_params.get("type") or None
        if account_type is not None and not re.fullmatch(r"[a-z_]{1,20}", account_type):
            raise invalid("type", "type must be a venue account type such as spot, swap or future")
        include_zero = request.query_params.get("include_zero") in ("1", "true", "yes")
        balance = selectors.account_balance(
            account=account, account_type=account_type, include_zero=include_zero
        )
        data = {"account_id": account.pk, "exchange": account.exchange, **balance}
        return Response(self.BalanceOutputSerializer(data).data)


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    side = serializers.CharField(allow_null=True)
    contracts = Money(allow_null=True)
    contract_size = Money(source="contractSize", allow_null=True, required=False)
    entry_price = Money(source="entryPrice", allow_null=True, required=False)
    mark_price = Money(source="markPrice", allow_null=True, required=False)
    notional = Money(allow_null=True, required=False)
    leverage = Money(allow_null=True, required=False)
    unrealized_pnl = Money(source="unrealizedPnl", allow_null=True, required=False)
    liquidation_price = Money(source="liquidationPrice", allow_null=True, required=False)
    margin_mode = serializers.CharField(source="marginMode", allow_null=True, required=False)
    take_profit_price = Money(source="takeProfitPrice", allow_null=True, required=False)
    stop_loss_price = Money(source="stopLossPrice", allow_null=True, required=False)
    timestamp = serializers.IntegerField(allow_null=True, required=False)


class AccountPositionsApi(AccountScopedApi):
    required_scopes = {"GET": "account:read"}

    @extend_schema(
        operation_id="accounts_positions",
        parameters=[OpenApiParameter("symbol", OpenApiTypes.STR, description="Only this contract market")],
        responses={200: PositionSerializer(many=True), **COMMON_ERRORS},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = self.account(request, account_id)
        symbol = request.query_params.get("symbol")
        if symbol is not None and not 0 < len(symbol) <= 64:
            raise invalid("symbol", "symbol must be a market symbol such as BTC/USDT:USDT")
        positions = selectors.account_positions(account=account, symbols=[symbol] if symbol else None)
        # Every key present (None where the venue says nothing), so the output shape is fixed.
        rows: list[dict[str, Any]] = [{**dict.fromkeys(Position.__annotations__), **p} for p in positions]
        return Response(PositionSerializer(rows, many=True).data)


# --------------------------------------------------------------------------- derivatives settings


VENUE_SETTING_RESPONSES = {
    200: inline_serializer(
        "VenueSettingResult", fields={"ok": serializers.BooleanField(), "setting": serializers.DictField()}
    ),
    **COMMON_ERRORS,
}


# One derivatives setting sent to the venue: each subclass's ``post`` names its input
# serializer and the service that applies it (with account, actor, ip and the input). A
# comment, not a docstring: drf-spectacular would publish a view docstring as the
# operation's description.
class VenueSettingApi(AccountScopedApi):
    required_scopes = {"POST": "trade"}

    def setting_apply(
        self,
        request: Request,
        account_id: int,
        input_serializer: type[serializers.Serializer],
        service: Callable[..., dict[str, Any]],
    ) -> Response:
        account = self.account(request, account_id)
        serializer = input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        setting = service(
            account=account, actor=request.user, ip=request_ip(request), **serializer.validated_data
        )
        # The venue's raw answer ("info") stays out: it is the venue's, not our contract.
        shown = {
            k: (f"{v.normalize():f}" if isinstance(v, Decimal) else v)
            for k, v in setting.items()
            if k != "info"
        }
        return Response({"ok": True, "setting": shown})


class LeverageApi(VenueSettingApi):
    class LeverageInputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=64)
        leverage = PositiveMoney(max_digits=10, decimal_places=2)

    @extend_schema(
        operation_id="accounts_leverage", request=LeverageInputSerializer, responses=VENUE_SETTING_RESPONSES
    )
    def post(self, request: Request, account_id: int) -> Response:
        return self.setting_apply(
            request, account_id, self.LeverageInputSerializer, services.account_set_leverage
        )


class PositionModeApi(VenueSettingApi):
    class PositionModeInputSerializer(serializers.Serializer):
        hedged = serializers.BooleanField(help_text="true: long/short mode; false: net (one-way) mode")

    @extend_schema(
        operation_id="accounts_position_mode",
        request=PositionModeInputSerializer,
        responses=VENUE_SETTING_RESPONSES,
    )
    def post(self, request: Request, account_id: int) -> Response:
        return self.setting_apply(
            request, account_id, self.PositionModeInputSerializer, services.account_set_position_mode
        )


class PositionTpslApi(VenueSettingApi):
    class PositionTpslInputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=64)
        take_profit = Money(required=False, allow_null=True, min_value=Decimal(0))
        stop_loss = Money(required=False, allow_null=True, min_value=Decimal(0))

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs.get("take_profit") is None and attrs.get("stop_loss") is None:
                raise invalid("take_profit", "give take_profit, stop_loss or both (0 clears one)")
            return attrs

    @extend_schema(
        operation_id="accounts_positions_tpsl",
        request=PositionTpslInputSerializer,
        responses=VENUE_SETTING_RESPONSES,
    )
    def post(self, request: Request, account_id: int) -> Response:
        return self.setting_apply(
            request, account_id, self.PositionTpslInputSerializer, services.position_set_tpsl
        )


class PositionMarginApi(VenueSettingApi):
    class PositionMarginInputSerializer(serializers.Serializer):
        symbol = serializers.CharField(max_length=64)
        amount = Money(help_text="Positive adds isolated margin, negative removes it")

        def validate_amount(self, value: Decimal) -> Decimal:
            if value == 0:
                raise serializers.ValidationError("amount must not be zero")
            return value

    @extend_schema(
        operation_id="accounts_positions_margin",
        request=PositionMarginInputSerializer,
        responses=VENUE_SETTING_RESPONSES,
    )
    def post(self, request: Request, account_id: int) -> Response:
        return self.setting_apply(
            request, account_id, self.PositionMarginInputSerializer, services.position_adjust_margin
        )


__all__ = [
    "AccountBalanceApi",
    "AccountPositionsApi",
    "LeverageApi",
    "OrderCancelAllApi",
    "OrderDetailApi",
    "OrderListCreateApi",
    "PositionMarginApi",
    "PositionModeApi",
    "PositionTpslApi",
    "placement_response",
]
