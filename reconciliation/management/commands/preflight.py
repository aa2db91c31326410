"""Refuse to serve production with development settings (`make serve`)."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kolable.settings import DEV_SECRET_KEY


class Command(BaseCommand):
    help = "Check the settings `make serve` needs; exit non-zero with the reasons otherwise."

    def handle(self, *args, **options):
        problems = []
        if settings.DEBUG:
            problems.append("DEBUG is on: set DEBUG=false.")
        if settings.SECRET_KEY == DEV_SECRET_KEY or len(settings.SECRET_KEY) < 50:
            problems.append("SECRET_KEY is the development default or shorter than 50 characters.")
        engine = settings.DATABASES["default"]["ENGINE"]
        if engine.endswith("sqlite3") and os.environ.get("ALLOW_SQLITE") != "1":
            problems.append(
                "DATABASE_URL points at SQLite: use PostgreSQL, or ALLOW_SQLITE=1 for one machine."
            )
        if not settings.REDIS_URL:
            self.stderr.write("note: REDIS_URL unset, django-q2 uses the database as its broker.")
        if problems:
            raise CommandError("refusing to serve:\n  - " + "\n  - ".join(problems))
        self.stdout.write("preflight ok")
