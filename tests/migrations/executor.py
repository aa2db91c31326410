"""Moving the test database between migrations, for the data-migration tests."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target):
    """Migrate to `target` ([(app, migration)]) and return its historical apps."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return MigrationExecutor(connection).loader.project_state(target).apps


def newest_migrations():
    """The app's newest migrations (to migrate back to after a test)."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes("reconciliation")
