"""The order book from the imports that came before it, and Huber's tags
moved from one import's rows onto their orders.

For each project, the non-duplicate rows of its verified imports are read in
import order: the first row of an order makes it, a later row with other
field values is a new version (the book keeps the newest). Each
OrderEvidence is pointed at its order (the append-only trigger is lifted for
that one UPDATE and put back), and each order's newest evidence becomes its
OrderTag — stale when the order changed after the tagged version.

The fingerprint is the live `reconciliation.bulk.fingerprints`: the book's
comparison of later files must use the same hash as the rows written here.
The book's summary is computed on first use (services.revenue.book_for's
callers rebuild a missing one).
"""

import django.db.models.deletion
import pandas as pd
from django.db import migrations, models

EVIDENCE = "reconciliation_orderevidence"
FIELDS = (
    "id",
    "row_number",
    "order_id",
    "created_at",
    "customer_key",
    "program_id",
    "amount",
    "payment_status",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
    "classification",
    "rebuy_of",
    "exception_code",
)


def _build_orders(apps, project):
    from reconciliation.bulk import fingerprints

    Import = apps.get_model("reconciliation", "ReconciliationImport")
    OrderRow = apps.get_model("reconciliation", "OrderRow")
    Order = apps.get_model("reconciliation", "Order")
    book: dict[str, dict] = {}
    imports = Import.objects.filter(
        data_request__project=project, status__in=["accepted", "partial"]
    ).order_by("created_at", "id")
    for imp in imports:
        rows = list(
            OrderRow.objects.filter(reconciliation_import=imp)
            .exclude(classification="duplicate")
            .order_by("row_number")
            .values(*FIELDS)
        )
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        frame["amount"] = frame["amount"].astype(float)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        for row, fp in zip(rows, fingerprints(frame).tolist(), strict=True):
            known = book.get(row["order_id"])
            if known is None:
                book[row["order_id"]] = {
                    "row": row,
                    "fp": fp,
                    "first": imp.pk,
                    "current": imp.pk,
                    "changed": None,
                    "versions": 1,
                }
            elif known["fp"] != fp:
                known.update(
                    row=row, fp=fp, current=imp.pk, changed=imp.pk, versions=known["versions"] + 1
                )
    orders = []
    for entry in book.values():
        row = dict(entry["row"])
        row_id = row.pop("id")
        orders.append(
            Order(
                project=project,
                current_row_id=row_id,
                current_import_id=entry["current"],
                first_import_id=entry["first"],
                changed_import_id=entry["changed"],
                versions=entry["versions"],
                fingerprint=entry["fp"],
                **row,
            )
        )
    Order.objects.bulk_create(orders, batch_size=2000)


def _set_evidence_orders(apps, schema_editor):
    Order = apps.get_model("reconciliation", "Order")
    Evidence = apps.get_model("reconciliation", "OrderEvidence")
    vendor = schema_editor.connection.vendor
    lookups = Evidence.objects.values_list(
        "id", "order_row__order_id", "order_row__reconciliation_import__data_request__project_id"
    )
    pairs = []
    for evidence_id, order_id, project_id in lookups.iterator():
        order = (
            Order.objects.filter(project_id=project_id, order_id=order_id)
            .values_list("id", flat=True)
            .first()
        )
        if order is not None:
            pairs.append((order, evidence_id))
    if not pairs:
        return
    run = lambda sql: schema_editor.execute(sql, params=None)  # noqa: E731
    if vendor == "postgresql":
        # The orders written above leave deferred foreign-key checks pending,
        # and PostgreSQL alters no table while any are: run them now.
        run("SET CONSTRAINTS ALL IMMEDIATE")
        run(f"ALTER TABLE {EVIDENCE} DISABLE TRIGGER {EVIDENCE}_append_only")
    else:
        run(f"DROP TRIGGER {EVIDENCE}_no_update")
    with schema_editor.connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {EVIDENCE} SET order_id = %s WHERE id = %s", pairs)  # noqa: S608
    if vendor == "postgresql":
        run(f"ALTER TABLE {EVIDENCE} ENABLE TRIGGER {EVIDENCE}_append_only")
    else:
        run(
            f"CREATE TRIGGER {EVIDENCE}_no_update BEFORE UPDATE ON {EVIDENCE} "
            f"BEGIN SELECT RAISE(ABORT, '{EVIDENCE} is append-only: UPDATE refused'); END"
        )


def _current_tags(apps):
    Order = apps.get_model("reconciliation", "Order")
    Evidence = apps.get_model("reconciliation", "OrderEvidence")
    OrderTag = apps.get_model("reconciliation", "OrderTag")
    newest: dict[int, tuple] = {}
    for evidence_id, order_id, row_id, tag in (
        Evidence.objects.exclude(order=None)
        .order_by("id")
        .values_list("id", "order_id", "order_row_id", "tag")
    ):
        newest[order_id] = (evidence_id, row_id, tag)
    current = dict(Order.objects.filter(id__in=list(newest)).values_list("id", "current_row_id"))
    projects = dict(Order.objects.filter(id__in=list(newest)).values_list("id", "project_id"))
    OrderTag.objects.bulk_create(
        [
            OrderTag(
                order_id=order_id,
                project_id=projects[order_id],
                tag=tag,
                evidence_id=evidence_id,
                stale=current[order_id] != row_id,
            )
            for order_id, (evidence_id, row_id, tag) in newest.items()
        ],
        batch_size=2000,
    )


def forwards(apps, schema_editor):
    Project = apps.get_model("reconciliation", "Project")
    Decision = apps.get_model("reconciliation", "RevenueDecision")
    for project in Project.objects.all():
        _build_orders(apps, project)
    _set_evidence_orders(apps, schema_editor)
    _current_tags(apps)
    # Decisions taken before the book: their project, and no book version,
    # so the page asks Louis to confirm them against the book.
    for decision in Decision.objects.select_related("reconciliation_import__data_request"):
        decision.project_id = decision.reconciliation_import.data_request.project_id
        decision.save(update_fields=["project"])


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0007_order_book"),
    ]

    atomic = True

    operations = [
        migrations.CreateModel(
            name="OrderTag",
            fields=[
                (
                    "order",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        primary_key=True,
                        related_name="current_tag",
                        serialize=False,
                        to="reconciliation.order",
                    ),
                ),
                (
                    "tag",
                    models.CharField(
                        choices=[
                            ("paid", "已付款"),
                            ("refunded", "已退款"),
                            ("rebought", "重買"),
                            ("unresolved", "待釐清"),
                        ],
                        max_length=12,
                    ),
                ),
                ("stale", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "evidence",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="reconciliation.orderevidence",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="reconciliation.project",
                    ),
                ),
            ],
            options={
                "db_table": "kolable_order_tags",
                "indexes": [
                    models.Index(fields=["project", "tag"], name="ordertag_project_tag_idx")
                ],
            },
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
