"""The data migration that built the order book from the imports before
it and moved Huber's tags from one import's rows onto their orders, run on
a database in the shape it found (0007) and checked in the shape it left
(0008). Data at 0007 can only be made through that state's models."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from tests.migrations.executor import migrate, newest_migrations

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("reconciliation", "0007_order_book")]
AFTER = [("reconciliation", "0008_order_tags_on_orders")]


def _old_world(apps):
    User = apps.get_model("auth", "User")
    Profile = apps.get_model("reconciliation", "Profile")
    Project = apps.get_model("reconciliation", "Project")
    DataRequest = apps.get_model("reconciliation", "DataRequest")
    Upload = apps.get_model("reconciliation", "Upload")
    Import = apps.get_model("reconciliation", "ReconciliationImport")
    OrderRow = apps.get_model("reconciliation", "OrderRow")
    Evidence = apps.get_model("reconciliation", "OrderEvidence")

    huber = Profile.objects.create(user=User.objects.create(username="huber-old"))
    project = Project.objects.create(name="Kolable (before the book)")
    rows = {}

    def imported(n, lines, at):
        request = DataRequest.objects.create(
            project=project,
            requested_dataset=f"export {n}",
            period_start=date(2026, 5, 12),
            period_end=date(2026, 5, 21),
            data_owner_profile=huber,
            requested_by_profile=huber,
        )
        upload = Upload.objects.create(
            data_request=request,
            uploaded_by=huber,
            original_name=f"orders-{n}.csv",
            size=1,
            sha256=f"{n:064d}",
            schema_status="accepted",
        )
        with time_machine.travel(at, tick=False):
            imp = Import.objects.create(data_request=request, upload=upload, status="accepted")
        for number, (order_id, status, classification) in enumerate(lines, start=2):
            rows[(n, order_id, number)] = OrderRow.objects.create(
                reconciliation_import=imp,
                row_number=number,
                order_id=order_id,
                created_at=datetime(2026, 5, 12, 12, 0, tzinfo=UTC),
                customer_key="c" * 64,
                program_id="TRAIN-28000",
                amount=Decimal("28000.00"),
                payment_status=status,
                payment_ref=f"PAY-{order_id}",
                classification=classification,
            )

    imported(
        1,
        [("KB-1", "paid", "verified"), ("KB-2", "paid", "verified"), ("KB-1", "paid", "duplicate")],
        datetime(2026, 5, 22, 1, 0, tzinfo=UTC),
    )
    imported(
        2,
        [
            ("KB-1", "paid", "verified"),
            ("KB-2", "refunded", "refunded"),
            ("KB-3", "paid", "verified"),
        ],
        datetime(2026, 5, 23, 1, 0, tzinfo=UTC),
    )
    for row, tag in (
        (rows[(1, "KB-1", 2)], "paid"),
        (rows[(1, "KB-2", 3)], "unresolved"),
        (rows[(1, "KB-2", 3)], "paid"),  # the newer tag of KB-2 wins
    ):
        Evidence.objects.create(order_row=row, tag=tag, payment_ref="BANK", created_by=huber)
    return project


def test_the_book_is_built_and_tags_follow_their_orders():
    latest = newest_migrations()
    try:
        project = _old_world(migrate(BEFORE))
        apps = migrate(AFTER)
        Order = apps.get_model("reconciliation", "Order")
        OrderTag = apps.get_model("reconciliation", "OrderTag")
        Evidence = apps.get_model("reconciliation", "OrderEvidence")

        orders = {o.order_id: o for o in Order.objects.filter(project_id=project.pk)}
        assert sorted(orders) == ["KB-1", "KB-2", "KB-3"]
        # KB-1 came twice unchanged (its in-file repeat is no version); KB-2
        # changed in the second file: the book holds its newest state.
        assert orders["KB-1"].versions == 1
        assert (orders["KB-2"].versions, orders["KB-2"].payment_status) == (2, "refunded")
        assert orders["KB-3"].versions == 1
        # Every evidence row now points at its order.
        assert not Evidence.objects.filter(order=None).exists()
        assert Evidence.objects.filter(order=orders["KB-2"]).count() == 2
        tags = {
            t.order.order_id: (t.tag, t.stale) for t in OrderTag.objects.select_related("order")
        }
        # KB-2 was tagged on a version the second file changed: kept, marked stale.
        assert tags == {"KB-1": ("paid", False), "KB-2": ("paid", True)}
    finally:
        migrate(latest)
