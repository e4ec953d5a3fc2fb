from django.urls import path

from accounts.apis_admin import AccountDetailManageApi, AccountListCreateApi, AccountTestConnectionApi

# The list and detail views in apis_admin extend the read-only ones in apis with the
# accounts:admin write methods (one view per URL).
urlpatterns = [
    path("accounts/", AccountListCreateApi.as_view(), name="account-list"),
    path("accounts/<int:account_id>/", AccountDetailManageApi.as_view(), name="account-detail"),
    path("accounts/<int:account_id>/test/", AccountTestConnectionApi.as_view(), name="account-test"),
]
