"""`flush`, able to empty the append-only tables.

The triggers refuse row DELETEs on OrderRow, OrderEvidence, AuditEvent and the
imports. PostgreSQL's flush uses TRUNCATE, which row triggers don't see, but
SQLite's uses DELETE, so the SQLite triggers step aside while a row exists in
`kolable_maintenance` — which only this command writes, for the length of its
transaction. (Test teardown calls flush between transactional tests.)"""

from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections, transaction


class Command(FlushCommand):
    def handle(self, **options):
        database = options.get("database") or "default"
        connection = connections[database]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        with transaction.atomic(using=database):
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO kolable_maintenance (reason) VALUES ('flush')")
            super().handle(**options)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM kolable_maintenance")
