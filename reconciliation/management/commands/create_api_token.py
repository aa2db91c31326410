from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reconciliation.api.auth import issue_token


class Command(BaseCommand):
    help = "Issue an API token for USERNAME. The key is printed once, as the last line; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        key = issue_token(user)
        self.stderr.write(
            f"Token for {username} (shown once; use it as 'Authorization: Token <key>'):"
        )
        self.stdout.write(key)
