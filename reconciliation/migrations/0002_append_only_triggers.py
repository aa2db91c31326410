"""Database triggers that make the append-only tables refuse UPDATE and DELETE:
the rule holds for every client of the database, not only for this
code. See the `flush` command for the one sanctioned bypass (test teardown on
SQLite)."""

from django.db import migrations

APPEND_ONLY_TABLES = (
    "reconciliation_auditevent",
    "reconciliation_orderrow",
    "reconciliation_orderevidence",
    "kolable_reconciliation_imports",
)


def _runner(schema_editor):
    # params=None: the SQL holds literal % signs (RAISE's format string).
    return lambda sql: schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    connection = schema_editor.connection
    run = _runner(schema_editor)
    run("CREATE TABLE kolable_maintenance (reason varchar(40) NOT NULL)")
    if connection.vendor == "postgresql":
        run(
            """
            CREATE OR REPLACE FUNCTION kolable_refuse_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'restrict_violation';
            END
            $$ LANGUAGE plpgsql
            """
        )
        for table in APPEND_ONLY_TABLES:
            run(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kolable_refuse_change()"
            )
    elif connection.vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
            run(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END"
            )
            run(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "WHEN NOT EXISTS (SELECT 1 FROM kolable_maintenance) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END"
            )
    else:
        raise RuntimeError(
            f"append-only triggers are written for PostgreSQL and SQLite, not {connection.vendor}"
        )


def remove(apps, schema_editor):
    connection = schema_editor.connection
    run = _runner(schema_editor)
    for table in APPEND_ONLY_TABLES:
        if connection.vendor == "postgresql":
            run(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            run(f"DROP TRIGGER IF EXISTS {table}_no_update")
            run(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if connection.vendor == "postgresql":
        run("DROP FUNCTION IF EXISTS kolable_refuse_change()")
    run("DROP TABLE kolable_maintenance")


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
