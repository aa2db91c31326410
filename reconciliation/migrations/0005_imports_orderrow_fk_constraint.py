"""OrderRow → ReconciliationImport without a database FK constraint on
PostgreSQL: the deferred check runs once per row at commit (~10 s of a
1,000,000-row import). The relation holds by construction: OrderRows are
written only inside their import's transaction and imports are append-only.

On SQLite the REFERENCES clause stays: dropping it means rebuilding the table
(which would also drop its append-only triggers) and SQLite's check costs
nothing measurable."""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "reconciliation_orderrow"
COLUMN = "reconciliation_import_id"


def _fk_names(schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return [
        name
        for name, info in constraints.items()
        if info["foreign_key"] and info["columns"] == [COLUMN]
    ]


def drop_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _fk_names(schema_editor):
        schema_editor.execute(
            f"ALTER TABLE {schema_editor.quote_name(TABLE)} "
            f"DROP CONSTRAINT {schema_editor.quote_name(name)}"
        )


def restore_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql" or _fk_names(schema_editor):
        return
    name = schema_editor._create_index_name(TABLE, [COLUMN], suffix="_fk")
    schema_editor.execute(
        f"ALTER TABLE {schema_editor.quote_name(TABLE)} ADD CONSTRAINT "
        f"{schema_editor.quote_name(name)} FOREIGN KEY ({schema_editor.quote_name(COLUMN)}) "
        "REFERENCES kolable_reconciliation_imports (id) DEFERRABLE INITIALLY DEFERRED"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0004_imports_orderrow_fk_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="orderrow",
                    name="reconciliation_import",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rows",
                        to="reconciliation.reconciliationimport",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_fk, restore_fk)],
        ),
    ]
