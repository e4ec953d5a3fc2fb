from django.urls import path

from accounts.apis import AccountDetailApi, AccountListApi

urlpatterns = [
    path("accounts/", AccountListApi.as_view(), name="account-list"),
    path("accounts/<int:account_id>/", AccountDetailApi.as_view(), name="account-detail"),
]
