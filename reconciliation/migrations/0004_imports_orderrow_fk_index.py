"""OrderRow's foreign key to its import loses its own index: every OrderRow
index already starts with the import, and on a 1,000,000-row import the
fourth index costs seconds. Done as a plain DROP INDEX found by
introspection: letting AlterField do it would, on SQLite, rebuild the table
and lose its append-only triggers (migration 0002)."""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "reconciliation_orderrow"
COLUMN = "reconciliation_import_id"


def _single_column_indexes(schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["primary_key"]
        and not info["unique"]
        and info["columns"] == [COLUMN]
    ]


def drop_fk_index(apps, schema_editor):
    for name in _single_column_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def restore_fk_index(apps, schema_editor):
    if _single_column_indexes(schema_editor):
        return
    name = schema_editor._create_index_name(TABLE, [COLUMN])
    schema_editor.execute(
        f"CREATE INDEX {schema_editor.quote_name(name)} ON {schema_editor.quote_name(TABLE)} "
        f"({schema_editor.quote_name(COLUMN)})"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0003_roles"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="orderrow",
                    name="reconciliation_import",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rows",
                        to="reconciliation.reconciliationimport",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_fk_index, restore_fk_index)],
        ),
    ]
