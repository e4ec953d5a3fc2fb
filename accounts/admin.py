"""Operator admin: accounts with write-only secrets, API tokens shown once, the audit log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from accounts import services
from accounts.models import ApiToken, AuditEvent, ExchangeAccount

admin.site.unregister(APIKey)  # the library's own model is unused; ApiToken replaces it


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR")


class SecretInput(forms.PasswordInput):
    """Write-only: never renders the stored value back into the page."""

    def __init__(self) -> None:
        super().__init__(render_value=False, attrs={"autocomplete": "new-password"})


class ExchangeAccountForm(forms.ModelForm):
    api_key = forms.CharField(widget=SecretInput(), required=False, strip=True)
    api_secret = forms.CharField(widget=SecretInput(), required=False, strip=True, label="API secret")
    passphrase = forms.CharField(
        widget=SecretInput(), required=False, strip=True, help_text="OKX and some other venues only."
    )

    class Meta:
        model = ExchangeAccount
        fields = [
            "label",
            "exchange",
            "environment",
            "api_key",
            "api_secret",
            "passphrase",
            "uid",
            "is_active",
            "owner",
            "shared_with",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never hand a stored secret to the form, not even as an initial value.
        for name in services.SECRET_FIELDS:
            self.initial[name] = ""
        editing = self.instance.pk is not None
        hint = "Leave blank to keep the stored value." if editing else ""
        for name in ("api_key", "api_secret"):
            self.fields[name].required = not editing
            if hint:
                self.fields[name].help_text = hint
        if editing and self.instance.api_key_hint:
            self.fields["api_key"].help_text = f"Stored key ends in {self.instance.masked_api_key}. {hint}"

    def _post_clean(self) -> None:
        # Keep stored secrets when their input was left blank: drop them before the
        # ModelForm copies cleaned data onto the instance.
        for name in services.SECRET_FIELDS:
            if not self.cleaned_data.get(name) and self.instance.pk is not None:
                self.cleaned_data.pop(name, None)
        super()._post_clean()  # type: ignore[misc]  # BaseModelForm's hook, not in the stubs


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    form = ExchangeAccountForm
    list_display = ["label", "exchange", "environment", "key_column", "is_active", "owner", "updated_at"]
    list_filter = ["exchange", "environment", "is_active"]
    search_fields = ["label", "exchange", "uid", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    filter_horizontal = ["shared_with"]
    actions = ["test_connection"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(description="API key")
    def key_column(self, obj: ExchangeAccount) -> str:
        return format_html("<code>{}</code>", obj.masked_api_key)

    def save_model(self, request: HttpRequest, obj: ExchangeAccount, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in data}
            # The form has already copied its values onto obj: give the service the stored row.
            stored = ExchangeAccount.objects.get(pk=obj.pk)
            services.account_update(
                account=stored, actor=request.user, changes=changes, ip=client_ip(request)
            )
        else:
            created = services.account_create(
                actor=request.user,
                ip=client_ip(request),
                owner=data["owner"],
                label=data["label"],
                exchange=data["exchange"],
                environment=data["environment"],
                api_key=data["api_key"],
                api_secret=data["api_secret"],
                passphrase=data.get("passphrase"),
                uid=data.get("uid", ""),
                is_active=data["is_active"],
                shared_with=data.get("shared_with", []),
            )
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # shared_with is saved (and audited) by the service, not by form.save_m2m().
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: ExchangeAccount) -> None:
        services.account_delete(account=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            services.account_delete(account=account, actor=request.user, ip=client_ip(request))

    @admin.action(description="Test connection to the venue")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            result = services.account_test_connection(
                account=account, actor=request.user, ip=client_ip(request)
            )
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{account.label}: {result.message}", level)
            for warning in result.warnings:
                self.message_user(request, f"{account.label}: {warning}", messages.WARNING)


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in ApiToken.SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "scopes", "accounts", "expiry_date", "revoked"]


@admin.register(ApiToken)
class ApiTokenAdmin(APIKeyModelAdmin):
    form = ApiTokenForm
    # Tuples of our own length: the library's admin types its tuples exactly.
    list_display = (  # type: ignore[assignment]
        "name",
        "prefix",
        "user",
        "scope_list",
        "created",
        "expiry_date",
        "last_used_at",
        "_has_expired",
        "revoked",
    )
    list_filter = ("revoked", "created")  # type: ignore[assignment]
    search_fields = ("name", "prefix", "user__username")  # type: ignore[assignment]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    filter_horizontal = ["accounts"]

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("prefix", "last_used_at") if obj is None else ("prefix", "user", "last_used_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any = None, change: bool = False) -> None:
        data = form.cleaned_data
        if change:
            if "revoked" in form.changed_data and data["revoked"]:
                services.token_revoke(token=obj, actor=request.user, ip=client_ip(request))
            super(APIKeyModelAdmin, self).save_model(request, obj, form, change)
            return
        token, plaintext = services.token_issue(
            user=data["user"],
            name=data["name"],
            scopes=data["scopes"],
            accounts=data.get("accounts", []),
            expires_at=data.get("expiry_date"),
            actor=request.user,
            ip=client_ip(request),
        )
        obj.pk = token.pk
        self.message_user(
            request,
            f"The token for {token.name} is: {plaintext} — copy it now, it will not be shown again.",
            messages.WARNING,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only, even for superusers."""

    list_display = ["at", "actor_name", "action", "account_label", "exchange", "ip_address", "details"]
    list_filter = ["action", "exchange"]
    search_fields = ["actor_name", "account_label", "exchange"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
