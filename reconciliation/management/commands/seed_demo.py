"""Demo data: the Kolable project and the four people. Idempotent. It makes no
request, upload or import: the app starts where the seed does."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from reconciliation.api.auth import issue_token
from reconciliation.models import ApiToken, Project
from reconciliation.permissions import Role, ensure_role_groups
from reconciliation.services.profiles import profile_for

PEOPLE = (
    ("louis", "Louis", Role.LOUIS, "louis@kolable.example"),
    ("wade", "Wade", Role.WADE, "wade@kolable.example"),
    ("huber", "Huber", Role.HUBER, "huber@kolable.example"),
    ("pls", "PLS bot", Role.PLS, ""),
)
PROJECT_NAME = "Kolable"


class Command(BaseCommand):
    help = "Create the Kolable project and the demo users louis, wade, huber, pls (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--token", action="store_true", help="also issue a PLS API token when it has none"
        )

    @transaction.atomic
    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or ""
        generated = not password
        User = get_user_model()
        profiles = {}
        ensure_role_groups()
        created_logins = []
        for username, name, role, email in PEOPLE:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": name, "email": email}
            )
            if created or os.environ.get("DEMO_PASSWORD"):
                user_password = password or secrets.token_urlsafe(9)
                user.set_password(user_password)
                user.save()
                created_logins.append((username, user_password))
            user.groups.add(Group.objects.get(name=role.value))
            profile = profile_for(user)
            if profile.display_name != name:
                profile.display_name = name
                profile.save(update_fields=["display_name"])
            profiles[role] = profile

        project, _ = Project.objects.get_or_create(name=PROJECT_NAME)
        project.owner_profile = profiles[Role.LOUIS]
        project.data_owner_profile = profiles[Role.WADE]
        project.verifier_profile = profiles[Role.HUBER]
        project.save()

        self.stdout.write(f"Project {project.name}: owner louis, data owner wade, verifier huber.")
        if created_logins:
            self.stdout.write("Demo logins (username / password):")
            for username, user_password in created_logins:
                self.stdout.write(f"  {username:6} {user_password}")
            if generated:
                self.stdout.write("  (generated now; set DEMO_PASSWORD to choose one)")
        else:
            self.stdout.write(
                "Demo users already exist; passwords unchanged (set DEMO_PASSWORD to reset)."
            )

        pls_user = User.objects.get(username="pls")
        if (
            options["token"]
            and not ApiToken.objects.filter(user=pls_user, revoked_at__isnull=True).exists()
        ):
            self.stdout.write(f"PLS API token: {issue_token(pls_user)}")
