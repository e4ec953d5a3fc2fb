"""Issue an API token; the plaintext is printed once, on the last line."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import ApiToken, ExchangeAccount
from accounts.selectors import account_list_reachable
from accounts.services import token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user. The token is printed once, on the last line, and never stored."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--user", required=True, help="username the token acts for")
        parser.add_argument("--scopes", required=True, help="comma-separated: " + ",".join(ApiToken.SCOPES))
        parser.add_argument(
            "--accounts", default="", help="comma-separated account ids; none means no account"
        )
        parser.add_argument("--name", default="", help="a label for the token")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(username=options["user"])
        except user_model.DoesNotExist:
            raise CommandError(f"--user: no user named {options['user']!r}") from None
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        unknown = sorted(set(scopes) - set(ApiToken.SCOPES))
        if unknown or not scopes:
            raise CommandError(
                f"--scopes: unknown {unknown or 'empty'}; choose from {', '.join(ApiToken.SCOPES)}"
            )
        accounts = self._accounts(user, options["accounts"])
        expires = options["expires_in_days"]
        token, plaintext = token_issue(
            user=user,
            name=options["name"] or f"{user.get_username()} cli token",
            scopes=scopes,
            accounts=accounts,
            expires_at=timezone.now() + timedelta(days=expires) if expires else None,
        )
        self.stdout.write(
            f"issued token {token.prefix} for {user.get_username()} with {', '.join(token.scopes)}"
        )
        self.stdout.write(plaintext)

    def _accounts(self, user: Any, raw: str) -> list[ExchangeAccount]:
        try:
            ids = {int(part) for part in raw.split(",") if part.strip()}
        except ValueError:
            raise CommandError("--accounts: expected comma-separated numeric ids") from None
        found = {account.pk: account for account in account_list_reachable(user=user).filter(pk__in=ids)}
        missing = sorted(ids - set(found))
        if missing:
            raise CommandError(f"--accounts: {missing} do not exist or are not reachable by this user")
        return list(found.values())
