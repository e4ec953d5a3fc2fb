"""Seed the embedded demo: an operator login and one account per venue on the emulator."""

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import ExchangeAccount
from accounts.services import account_create
from connectors.environments import Environment
from emulator.accounts import DEMO_CREDENTIALS

DEMO_USERNAME = "operator"


class Command(BaseCommand):
    help = "Create (once) the demo operator and one emulator account per venue, then print the login."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        password_file = settings.VAR_DIR / "demo-operator-password"
        if not password_file.exists():
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()

        user_model = get_user_model()
        operator, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not operator.check_password(password):
            operator.set_password(password)
            operator.save()

        for venue, (key, secret, passphrase) in DEMO_CREDENTIALS.items():
            label = f"{venue} demo"
            if ExchangeAccount.objects.filter(owner=operator, label=label).exists():
                continue
            account_create(
                actor=operator,
                owner=operator,
                label=label,
                exchange=venue,
                environment=Environment.EMULATOR.value,
                api_key=key,
                api_secret=secret,
                passphrase=passphrase,
            )
        self.stdout.write(f"Demo operator: {DEMO_USERNAME} / {password}  (stored in {password_file})")
