"""Re-encrypt every stored exchange secret under the newest FIELD_ENCRYPTION_KEYS entry."""

from typing import Any

from django.core.management.base import BaseCommand

from accounts.services import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypts every stored secret under the newest key (the first of FIELD_ENCRYPTION_KEYS). "
        "Safe to interrupt and run again. Remove an old key only after a run reports 0 rotated."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        result = secrets_rotate(batch_size=batch_size)
        self.stdout.write(
            f"rotated {result.rotated} account(s); {result.already_current} already under the newest key"
        )
