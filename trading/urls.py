from django.urls import path

from trading import apis

urlpatterns = [
    path("accounts/<int:account_id>/balance/", apis.AccountBalanceApi.as_view(), name="account-balance"),
    path(
        "accounts/<int:account_id>/positions/", apis.AccountPositionsApi.as_view(), name="account-positions"
    ),
    path("accounts/<int:account_id>/positions/tpsl/", apis.PositionTpslApi.as_view(), name="position-tpsl"),
    path(
        "accounts/<int:account_id>/positions/margin/",
        apis.PositionMarginApi.as_view(),
        name="position-margin",
    ),
    path("accounts/<int:account_id>/leverage/", apis.LeverageApi.as_view(), name="account-leverage"),
    path(
        "accounts/<int:account_id>/position-mode/",
        apis.PositionModeApi.as_view(),
        name="account-position-mode",
    ),
    path("accounts/<int:account_id>/orders/", apis.OrderListCreateApi.as_view(), name="order-list"),
    path(
        "accounts/<int:account_id>/orders/cancel-all/",
        apis.OrderCancelAllApi.as_view(),
        name="order-cancel-all",
    ),
    path(
        "accounts/<int:account_id>/orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="order-detail"
    ),
]
