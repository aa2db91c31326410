"""The order book: orders keep their identity, versions and
evidence across every file of the project; revenue counts each order once;
Louis's decision is taken as of a book version and is flagged, never
replaced, when the book moves."""

import threading

import pytest
from django.db import connections

from reconciliation.models import (
    BookSummary,
    Notification,
    Order,
    OrderEvidence,
    OrderRow,
    OrderTag,
)
from reconciliation.selectors.scorecard import scorecard
from reconciliation.selectors.scorecard_api import scorecard_as_api
from reconciliation.services.evidence import tag_orders
from reconciliation.services.imports import import_frame
from reconciliation.services.revenue import rebuild_book_summary, record_revenue_decision
from tests.imp_frames import accepted_upload, frame, new_request, order

R1 = (
    order("B-1", "paid", 28000, customer="c1"),
    order("B-2", "paid", 28000, customer="c2"),
    order("B-3", "pending", 28000, customer="c3"),
    order("B-4", "paid", 990, customer="c4", program="BOOK-990"),
)


def _import(data_request, wade, *orders, name="orders.csv", mode="snapshot"):
    return import_frame(
        upload=accepted_upload(data_request, wade, name=name, mode=mode), frame=frame(*orders)
    )


def _book(project):
    return BookSummary.objects.get(pk=project.pk)


def _tag(huber, project, tag, *order_ids, **refs):
    refs.setdefault("evidence_ref", "EV-1")
    return tag_orders(actor=huber, project=project, tag=tag, order_ids=list(order_ids), **refs)


def test_a_corrected_re_export_keeps_tags_and_counts_every_order_once(louis, wade, huber, project):
    first_request = new_request(louis)
    _import(first_request, wade, *R1)
    _tag(huber, project, "paid", "B-1", payment_ref="BANK-1")
    assert _book(project).totals["paid_amount"] == 28000 * 2 + 990

    # A second request, a corrected file: B-3 got paid, B-2's amount fixed,
    # B-5 is new, B-1 and B-4 unchanged.
    other = new_request(louis, requested_dataset="2026-05-12..2026-05-21 corrected export")
    second = _import(
        other,
        wade,
        R1[0],
        {**R1[1], "amount": 26000},
        {**R1[2], "payment_status": "paid"},
        R1[3],
        order("B-5", "paid", 28000, customer="c5"),
        name="orders-corrected.csv",
    )
    book_step = second.summary.book
    assert (
        book_step["new_orders"],
        book_step["changed_orders"],
        book_step["unchanged_orders"],
    ) == (1, 2, 2)
    assert book_step["changes"] == {"amount": 1, "payment_status:pending→paid": 1}
    assert book_step["missing_from_snapshot"] == 0

    assert Order.objects.filter(project=project).count() == 5  # once each, across files
    totals = _book(project).totals
    assert totals["orders"] == 5
    assert totals["paid_amount"] == 28000 + 26000 + 28000 + 990 + 28000
    # Huber's tag survived; B-1 was unchanged, so it is not stale.
    tag = OrderTag.objects.get(order__order_id="B-1")
    assert (tag.tag, tag.stale) == ("paid", False)
    b2 = Order.objects.get(order_id="B-2")
    assert (b2.versions, float(b2.amount), b2.changed_import_id) == (2, 26000.0, second.pk)


def test_a_tag_on_an_order_that_changes_is_kept_stale_and_a_contradiction_is_louiss(
    louis, wade, huber, project
):
    data_request = new_request(louis)
    _import(data_request, wade, *R1)
    _tag(huber, project, "paid", "B-2", payment_ref="BANK-2")
    _import(
        data_request,
        wade,
        R1[0],
        {**R1[1], "payment_status": "refunded", "payment_ref": "RF-2"},
        R1[2],
        R1[3],
        name="orders-v2.csv",
    )
    tag = OrderTag.objects.get(order__order_id="B-2")
    assert tag.stale and tag.tag == "paid"
    # The evidence row still names the version Huber saw.
    evidence = OrderEvidence.objects.get(order__order_id="B-2")
    assert evidence.order_row_id != tag.order.current_row_id
    summary = _book(project)
    conflicts = [e for e in summary.exceptions if e["code"] == "tag_conflict"]
    assert [(e["order_id"], e["owner"]) for e in conflicts] == [("B-2", "louis")]
    assert summary.totals["paid_amount"] == 28000 + 990  # a contradiction never counts
    # A new tag on the current version is no longer stale.
    _tag(huber, project, "refunded", "B-2", refund_ref="RF-2")
    assert not OrderTag.objects.get(order__order_id="B-2").stale


def test_a_snapshot_lists_missing_orders_for_wade_and_drops_nothing(louis, wade, project):
    data_request = new_request(louis)
    _import(data_request, wade, *R1)
    incremental = _import(
        data_request,
        wade,
        order("B-6", "paid", 500, customer="c6"),
        name="top-up.csv",
        mode="incremental",
    )
    assert incremental.summary.book["missing_from_snapshot"] == 0
    snapshot = _import(data_request, wade, *R1[:3], name="snapshot.csv")
    assert snapshot.summary.book["missing_from_snapshot"] == 2  # B-4 and B-6
    assert Order.objects.filter(project=project).count() == 5  # nothing dropped
    summary = _book(project)
    missing = sorted(
        e["order_id"] for e in summary.exceptions if e["code"] == "missing_from_snapshot"
    )
    assert missing == ["B-4", "B-6"]
    assert summary.totals["exception_counts"]["missing_from_snapshot"] == 2
    assert summary.totals["exceptions_by_owner"]["wade"] == 2
    # They are still counted as the last file said (never silently dropped).
    assert summary.totals["paid_amount"] == 28000 * 2 + 990 + 500
    # The next snapshot that has them again clears the exception.
    _import(data_request, wade, *R1, order("B-6", "paid", 500, customer="c6"), name="all.csv")
    assert "missing_from_snapshot" not in _book(project).totals["exception_counts"]


def test_louiss_decision_is_kept_and_flagged_when_the_book_moves(louis, wade, huber, project):
    data_request = new_request(louis)
    _import(data_request, wade, *R1)
    decision = record_revenue_decision(decided_by=louis, decision="approve", project=project)
    assert decision.book_version == _book(project).version
    card = scorecard(project)
    assert card.revenue_status == "recognised" and not card.changed_since_decision

    _import(data_request, wade, *R1, order("B-7", "paid", 28000, customer="c7"), name="v2.csv")
    card = scorecard(project)
    assert card.revenue_status == "recognised"  # kept, not replaced
    assert card.changed_since_decision
    assert card.delta["paid_amount"] == 28000 and card.delta["paid_orders"] == 1
    api = scorecard_as_api(card)
    assert api["decision"]["changed_since_decision"] is True
    assert api["decision"]["delta"]["paid_amount"] == 28000
    assert [i["new_orders"] for i in api["book"]["imports"]] == [4, 1]
    notes = Notification.objects.filter(
        kind=Notification.Kind.BOOK_CHANGED, channel="inbox", recipient__user__username="louis"
    )
    assert notes.count() == 1 and "NT$28,000" in notes.get().body

    # A tagging action is another change batch: one more message.
    _tag(huber, project, "refunded", "B-7", refund_ref="RF-7")
    assert notes.count() == 2
    assert scorecard(project).delta["paid_amount"] == 0

    # Approving again against a version the page no longer shows is refused.
    stale_version = decision.book_version
    from reconciliation.errors import Conflict

    with pytest.raises(Conflict):
        record_revenue_decision(
            decided_by=louis, decision="approve", project=project, expected_version=stale_version
        )
    record_revenue_decision(
        decided_by=louis,
        decision="approve",
        project=project,
        expected_version=_book(project).version,
    )
    assert not scorecard(project).changed_since_decision


def test_the_incremental_summary_equals_a_rebuild_from_the_orders(louis, wade, huber, project):
    data_request = new_request(louis)
    _import(data_request, wade, *R1, order("B-1", "paid", 28000, customer="c1"))
    _tag(huber, project, "unresolved", "B-4", note="查無")
    _import(
        data_request,
        wade,
        {**R1[0], "payment_status": "refunded", "payment_ref": "RF-1"},
        order("B-8", "paid", 28000, customer="c1", when="2026-05-15 20:00"),  # re-buys B-1
        name="v2.csv",
        mode="incremental",
    )
    incremental = _book(project)
    rebuilt = rebuild_book_summary(project=project)
    for key in ("paid_amount", "refunded_amount", "held_amount", "orders", "rebuy_orders"):
        assert incremental.totals[key] == rebuilt.totals[key], key
    assert incremental.by_day == rebuilt.by_day
    assert incremental.exception_count == rebuilt.exception_count


def _final_state(project):
    orders = Order.objects.filter(project=project).order_by("order_id")
    return (
        [(o.order_id, o.payment_status, float(o.amount), o.versions) for o in orders],
        _book(project).totals["paid_amount"],
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_into_one_book_end_as_sequential_ones(louis, wade, project):
    first = [order(f"C-{i}", "paid", 1000, customer=f"c{i}") for i in range(400)]
    second = [{**o, "amount": 900} for o in first[:200]] + [
        order(f"D-{i}", "pending", 500, customer=f"d{i}") for i in range(200)
    ]
    requests = [new_request(louis), new_request(louis, requested_dataset="second export")]
    uploads = [
        accepted_upload(requests[0], wade, name="a.csv", mode="incremental"),
        accepted_upload(requests[1], wade, name="b.csv", mode="incremental"),
    ]
    barrier = threading.Barrier(2)
    errors = []

    def run(upload, rows):
        try:
            barrier.wait()
            import_frame(upload=upload, frame=frame(*rows))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(uploads[0], first)),
        threading.Thread(target=run, args=(uploads[1], second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    concurrent = _final_state(project)
    # Whichever ran first, the book holds each order once and the versions
    # of every C order that both files had.
    assert len(concurrent[0]) == 600
    assert OrderRow.objects.count() == 800
    book = _book(project)
    assert book.version == 2
    rebuilt = rebuild_book_summary(project=project)
    assert rebuilt.totals["paid_amount"] == concurrent[1]


@pytest.mark.parametrize("factor", [8, 10**9], ids=["reads-the-file's-orders", "reads-whole-book"])
def test_a_small_file_into_a_big_book_reads_only_its_orders_with_the_same_result(
    louis, wade, project, monkeypatch, factor
):
    from reconciliation.services import book

    monkeypatch.setattr(book, "SELECTIVE_READ_FACTOR", factor)
    data_request = new_request(louis)
    big = [order(f"R-{n:02d}", "paid", 28000, customer=f"c{n}") for n in range(40)]
    big[5] = order("R-05", "refunded", 28000, customer="cX", ref="RF-05")
    _import(data_request, wade, *big)
    top_up = _import(
        data_request,
        wade,
        order("R-01", "paid", 26000, customer="c1"),
        order("NEW-1", "paid", 28000, customer="cX", when="2026-05-20 10:00"),
        order("R-02", "paid", 28000, customer="c2"),
        name="top-up.csv",
        mode="incremental",
    )
    assert {
        k: top_up.summary.book[k] for k in ("new_orders", "changed_orders", "unchanged_orders")
    } == {
        "new_orders": 1,
        "changed_orders": 1,
        "unchanged_orders": 1,
    }
    assert top_up.summary.book["changes"] == {"amount": 1}
    assert Order.objects.filter(project=project).count() == 41
    assert Order.objects.get(order_id="R-01").amount == 26000
    # NEW-1 re-buys the refunded R-05 of the same customer and programme.
    assert OrderRow.objects.get(reconciliation_import=top_up, order_id="NEW-1").rebuy_of == "R-05"


def test_an_import_that_grows_the_book_refreshes_its_statistics(louis, wade):
    """Without them PostgreSQL takes a million-order book for an empty one,
    and SQLite (which keeps none by itself) reads the every-programme queue
    page off the project index and sorts the whole book (480 ms at 1,000,000
    orders, 19 ms with them). A small file into a big book leaves them."""
    from django.db import connection

    def analyzed():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT reltuples FROM pg_class WHERE relname = %s", [Order._meta.db_table]
                )
                return cursor.fetchone()[0]
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s", [Order._meta.db_table])
            return max(int(stat.split()[0]) for (stat,) in cursor.fetchall())

    # An odd size no earlier test leaves behind (PostgreSQL's statistics
    # outlive their test's rolled-back rows).
    data_request = new_request(louis)
    orders = [order(f"G-{n}", "paid", 990, customer=f"g{n}") for n in range(37)]
    _import(data_request, wade, *orders)
    assert analyzed() == 37
    _import(data_request, wade, order("G-NEW", "paid", 990, customer="gn"), mode="incremental")
    assert Order.objects.count() == 38
    assert analyzed() == 37


def test_a_file_of_only_new_orders_into_a_much_bigger_book(louis, wade, project):
    """The book is read for the file's orders only, finds none of them, and
    every order of the file is new (the daily file of a new day)."""
    data_request = new_request(louis)
    _import(data_request, wade, *[order(f"B-{n}", "paid", 990, customer=f"b{n}") for n in range(40)])
    daily = _import(
        data_request,
        wade,
        order("D-1", "paid", 990, customer="d1"),
        order("D-2", "pending", 990, customer="d2"),
        name="day.csv",
        mode="incremental",
    )
    assert daily.status == "accepted"
    assert {k: daily.summary.book[k] for k in ("new_orders", "changed_orders")} == {
        "new_orders": 2,
        "changed_orders": 0,
    }
    assert Order.objects.filter(project=project).count() == 42
