"""Huber's evidence queue: the queue, tagging by ids, by filter and
by file, the revenue effect of each tag through `services.revenue`, the
append-only history, and who may do what."""

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from reconciliation.management.commands._orders_data import (
    TRAINING_PROGRAM,
    frame_from_rows,
    import_from_frame,
    synthetic_frame,
)
from reconciliation.models import (
    AuditEvent,
    BookSummary,
    Order,
    OrderEvidence,
    OrderTag,
)
from reconciliation.selectors import evidence as queue
from reconciliation.services.evidence import tag_orders
from reconciliation.services.tag_files import import_tag_file

ORDERS = "/api/kolable/orders"
EVIDENCE = "/api/kolable/evidence"
T0 = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)


@pytest.fixture
def small_import(project):
    """40 orders: 30 of the NT$28,000 training programme, 10 of another."""
    return import_from_frame(synthetic_frame(40, training=30, seed=7), project=project)


def _csv(rows, header=("order_id", "tag", "payment_ref", "refund_ref", "evidence_ref", "note")):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _book(reconciliation_import):
    return BookSummary.objects.get(pk=reconciliation_import.data_request.project_id)


def _totals(reconciliation_import):
    return _book(reconciliation_import).totals


def _training_ids(reconciliation_import, **filters):
    return list(
        Order.objects.filter(
            project=reconciliation_import.data_request.project,
            program_id=TRAINING_PROGRAM,
            **filters,
        )
        .order_by("id")
        .values_list("order_id", flat=True)
    )


# --- The queue -----------------------------------------------------------------------


def test_default_queue_is_the_training_programme_untagged_first(small_import, api_as, huber):
    body = api_as(huber).get(ORDERS).json()
    assert body["program_id"] == TRAINING_PROGRAM
    assert body["counts"]["total"] == 30
    assert body["counts"]["untagged"] == 30 and body["counts"]["progress"] == 0
    assert {r["program_id"] for r in body["results"]} == {TRAINING_PROGRAM}
    assert all(r["tag"] is None for r in body["results"])
    assert body["matching"] == 30


def test_training_programme_setting_wins_over_the_amount_rule(
    small_import, api_as, huber, settings
):
    settings.TRAINING_PROGRAM_ID = "LIVE-VIP-4800"
    body = api_as(huber).get(ORDERS).json()
    assert body["program_id"] == "LIVE-VIP-4800"
    assert {r["program_id"] for r in body["results"]} <= {"LIVE-VIP-4800"}


def test_keyset_pages_cover_every_order_once(small_import, api_as, louis):
    client = api_as(louis)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, "program_id": "*", **({"cursor": cursor} if cursor else {})}
        body = client.get(ORDERS, params).json()
        seen += [r["id"] for r in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 6  # 40 rows, 7 a page
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 40
    # And back again from the last page.
    back = client.get(ORDERS, {"limit": 7, "program_id": "*", "cursor": body["prev_cursor"]}).json()
    assert [r["id"] for r in back["results"]] == seen[-12:-5]


def test_bad_cursor_and_bad_filter_are_422(small_import, api_as, huber):
    client = api_as(huber)
    assert client.get(ORDERS, {"cursor": "%%%"}).json()["error"] == "invalid_cursor"
    bad = client.get(ORDERS, {"tag": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_filter"
    assert client.get(ORDERS, {"limit": 0}).status_code == 422


def test_filters_and_search(project, api_as, huber):
    imp = import_from_frame(
        frame_from_rows(
            [
                {"order_id": "A-1", "payment_status": "paid", "source_event": "LIVE-0512"},
                {"order_id": "A-2", "payment_status": "refunded", "source_event": "LIVE-0513"},
                {
                    "order_id": "A-3",
                    "payment_status": "pending",
                    "payment_ref": "PEND-3",
                    "discount_code": "VIP",
                    "created_at": T0 + timedelta(days=3),
                },
                {"order_id": "A-1", "payment_status": "paid"},
            ]
        ),
        project=project,
    )
    client = api_as(huber)

    def ids(**params):
        body = client.get(ORDERS, {"tag": "all", **params}).json()
        return [r["order_id"] for r in body["results"]]

    assert ids(payment_status="refunded") == ["A-2"]
    # The queue lists orders: the repeat of A-1 inside the file is a row of
    # the file's history, not a second order.
    assert ids(classification="duplicate") == []
    assert ids(source_event="LIVE-0513") == ["A-2"]
    assert ids(discount_code="VIP") == ["A-3"]
    assert ids(date_from="2026-05-15") == ["A-3"]
    assert ids(date_to="2026-05-14") == ["A-1", "A-2"]
    assert ids(q="PAY-2") == ["A-2"]
    assert ids(q="A-3") == ["A-3"]
    tag_orders(
        actor=huber,
        project=imp.data_request.project,
        tag="refunded",
        order_ids=["A-2"],
        refund_ref="RF-777",
    )
    assert ids(q="RF-777") == ["A-2"]
    assert ids(tag="refunded") == ["A-2"]
    assert ids(untagged="true") == ["A-1", "A-3"]


def test_page_queries_do_not_grow_with_page_size(
    project, client, huber, django_assert_max_num_queries
):
    imp = import_from_frame(synthetic_frame(600, training=600, seed=3), project=project)
    tag_orders(
        actor=huber,
        project=imp.data_request.project,
        tag="paid",
        queue_filter=queue.parse_filter(
            {"tag": "untagged", "payment_status": "paid"}, book=_book(imp)
        ),
        payment_ref="BANK-0521",
    )
    client.force_login(huber)
    url = reverse("evidence")
    client.get(url, {"tag": "all"})  # warm the per-import caches
    with CaptureQueriesContext(connection) as small:
        assert client.get(url, {"tag": "all", "limit": 50}).status_code == 200
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url, {"tag": "all", "limit": 500})
    assert response.status_code == 200
    assert response.content.count(b'data-testid="order-row"') == 500
    assert "已付款".encode() in response.content


def _page_plan(book, flt, cursor=None) -> str:
    """The database's plan for the queue page's query, as text."""
    with CaptureQueriesContext(connection) as captured:
        queue.queue_page(book, flt, cursor=cursor, page_size=20)
    (sql,) = [q["sql"] for q in captured.captured_queries if "LIMIT 21" in q["sql"]]
    with connection.cursor() as db:
        if connection.vendor == "postgresql":
            # Without the cheap ways out on a small table, the plan shows
            # which index the page walks on a big one.
            db.execute("SET LOCAL enable_seqscan = off")
            db.execute("SET LOCAL enable_sort = off")
            db.execute("SET LOCAL enable_bitmapscan = off")
            db.execute("EXPLAIN " + sql)
        else:
            db.execute("EXPLAIN QUERY PLAN " + sql)
        return "\n".join(str(row) for row in db.fetchall())


def test_a_programme_page_walks_the_programme_index_in_both_directions(project):
    """The book's ids are grouped by programme: reading a programme's page off
    the primary key skips every order of the programmes before it (at
    1,000,000 orders 45 ms forward, 580 ms backward on PostgreSQL)."""
    imp = import_from_frame(synthetic_frame(400, training=300, seed=5), project=project)
    book = _book(imp)
    past_the_end = queue.encode_cursor("p", Order.objects.aggregate(m=Max("id"))["m"] + 1)
    # Forward through the training programme, backward from the end through
    # the programme whose ids come first.
    for program, cursor in ((TRAINING_PROGRAM, None), ("COACH-12000", past_the_end)):
        flt = queue.parse_filter({"program_id": program, "tag": "untagged"}, book=book)
        plan = _page_plan(book, flt, cursor)
        assert "order_queue_program_idx" in plan, plan
        assert "kolable_orders_pkey" not in plan and "TEMP B-TREE" not in plan, plan


def test_a_programmes_tag_counts_read_the_smaller_side(small_import, huber):
    """Counted from the book's tags when there are fewer tags than orders in
    the programme, from the programme's orders otherwise: the same counts."""
    project = small_import.data_request.project
    book = _book(small_import)
    training = _training_ids(small_import)
    sizes = {}
    for order in Order.objects.filter(project=project).exclude(program_id=TRAINING_PROGRAM):
        sizes.setdefault(order.program_id, []).append(order.order_id)
    small, small_ids = min(sizes.items(), key=lambda item: len(item[1]))
    tag_orders(actor=huber, project=project, tag="paid", order_ids=training[:3], payment_ref="P")
    tag_orders(actor=huber, project=project, tag="refunded", order_ids=training[3:4], refund_ref="R")
    tag_orders(actor=huber, project=project, tag="paid", order_ids=small_ids[:1], payment_ref="S")
    tags = OrderTag.objects.filter(project=project).count()
    assert tags == 5 < len(training) and tags >= len(small_ids)

    counts = queue.tag_counts(book, TRAINING_PROGRAM)  # from the 5 tags
    assert (counts.total, counts.by_tag) == (30, {"paid": 3, "refunded": 1})
    counts = queue.tag_counts(book, small)  # from the programme's orders
    assert (counts.total, counts.by_tag) == (len(small_ids), {"paid": 1})
    assert queue.tag_counts(book, None).by_tag == {"paid": 4, "refunded": 1}
    assert queue.tag_counts(book, "NO-SUCH-PROGRAMME").by_tag == {}


# --- Tagging ----------------------------------------------------------------------------


def test_tag_by_order_ids_writes_history_tag_and_one_audit_event(small_import, api_as, huber):
    ids = _training_ids(small_import)[:3]
    response = api_as(huber).post(
        EVIDENCE,
        {"order_ids": ids, "tag": "paid", "payment_ref": "BANK-1", "note": "對帳單第 3 頁"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tagged"] == 3
    assert body["counts"]["paid"] == 3 and body["counts"]["untagged"] == 27
    assert OrderEvidence.objects.count() == 3
    assert (
        OrderTag.objects.filter(tag="paid", project=small_import.data_request.project).count() == 3
    )
    tag = OrderTag.objects.select_related("evidence").get(order__order_id=ids[0])
    assert tag.evidence.payment_ref == "BANK-1" and tag.evidence.created_by.username == "huber"
    event = AuditEvent.objects.get(verb=AuditEvent.Verb.EVIDENCE_TAGGED)
    assert event.data["count"] == 3 and event.data["source"] == "order_ids"
    assert event.data_request_id == small_import.data_request_id
    assert "3 筆" in event.message

    # A second action: a new history row per order, the current tag moves.
    api_as(huber).post(EVIDENCE, {"order_ids": ids[:1], "tag": "refunded", "refund_ref": "RF-9"})
    assert OrderEvidence.objects.filter(order_row__order_id=ids[0]).count() == 2
    assert OrderTag.objects.get(order__order_id=ids[0]).tag == "refunded"
    assert OrderTag.objects.count() == 3


def test_unknown_order_ids_refuse_the_whole_action(small_import, api_as, huber):
    ids = _training_ids(small_import)[:2]
    response = api_as(huber).post(
        EVIDENCE, {"order_ids": [*ids, "NOPE-1"], "tag": "paid", "payment_ref": "P"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_order_ids"
    assert response.json()["detail"]["order_ids"] == ["NOPE-1"]
    assert (
        not OrderEvidence.objects.exists()
        and not AuditEvent.objects.filter(verb="evidence.tagged").exists()
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"tag": "paid"}, "missing_reference"),
        ({"tag": "refunded", "note": "只有備註"}, "missing_reference"),
        ({"tag": "paid", "payment_ref": "4111 1111 1111 1111"}, "card_number"),
        ({"tag": "refunded", "refund_ref": "tok_1N3pQx8Ryz0AbCdE"}, "payment_token"),
        ({"tag": "paid", "payment_ref": "x" * 201}, "too_long"),
        ({"tag": "maybe", "payment_ref": "P"}, "invalid_input"),
    ],
)
def test_bad_tags_and_references_are_refused(small_import, api_as, huber, payload, code):
    ids = _training_ids(small_import)[:1]
    response = api_as(huber).post(EVIDENCE, {"order_ids": ids, **payload})
    assert response.status_code == 422, response.content
    assert response.json()["error"] == code
    assert not OrderEvidence.objects.exists()


def test_unresolved_needs_no_reference(small_import, api_as, huber):
    ids = _training_ids(small_import)[:1]
    response = api_as(huber).post(EVIDENCE, {"order_ids": ids, "tag": "unresolved"})
    assert response.status_code == 201


def test_bulk_tag_every_order_matching_a_filter(small_import, api_as, huber):
    paid_untagged = _training_ids(small_import, payment_status="paid")
    client = api_as(huber)
    response = client.post(
        EVIDENCE,
        {
            "filter": {"untagged": True, "payment_status": "paid"},
            "tag": "paid",
            "evidence_ref": "BANK-STATEMENT-0521",
            "expected_count": len(paid_untagged),
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["tagged"] == len(paid_untagged)
    assert set(
        OrderTag.objects.filter(tag="paid").values_list("order__order_id", flat=True)
    ) == set(paid_untagged)
    # Other programmes were not touched by the training-programme filter.
    assert not OrderTag.objects.exclude(order__program_id=TRAINING_PROGRAM).exists()
    events = AuditEvent.objects.filter(verb=AuditEvent.Verb.EVIDENCE_TAGGED)
    assert events.count() == 1
    assert events.get().data["count"] == len(paid_untagged)
    assert events.get().data["filter"]["payment_status"] == "paid"
    # Nothing left: the same filter now matches no order.
    again = client.post(
        EVIDENCE,
        {"filter": {"untagged": True, "payment_status": "paid"}, "tag": "paid", "payment_ref": "P"},
    )
    assert again.status_code == 422 and again.json()["error"] == "no_orders_matched"


def test_filter_that_grew_since_the_page_was_read_is_refused(small_import, api_as, huber):
    response = api_as(huber).post(
        EVIDENCE,
        {"filter": {"tag": "untagged"}, "tag": "unresolved", "expected_count": 5},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "filter_changed"
    assert response.json()["detail"]["count"] == 30
    assert not OrderEvidence.objects.exists()


def test_order_ids_and_filter_are_exclusive(small_import, api_as, huber):
    both = api_as(huber).post(EVIDENCE, {"order_ids": ["x"], "filter": {}, "tag": "unresolved"})
    assert both.status_code == 422 and both.json()["error"] == "order_ids_or_filter"
    neither = api_as(huber).post(EVIDENCE, {"tag": "unresolved"})
    assert neither.json()["error"] == "order_ids_or_filter"


def test_no_accepted_import_is_409(seeded, api_as, huber):
    assert api_as(huber).get(ORDERS).json()["error"] == "no_accepted_import"
    response = api_as(huber).post(EVIDENCE, {"order_ids": ["x"], "tag": "unresolved"})
    assert response.status_code == 409


def test_history_is_append_only(small_import, huber):
    ids = _training_ids(small_import)[:1]
    tag_orders(
        actor=huber,
        project=small_import.data_request.project,
        tag="paid",
        order_ids=ids,
        payment_ref="P-1",
    )
    evidence = OrderEvidence.objects.get()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        OrderEvidence.objects.filter(pk=evidence.pk).update(tag="refunded")
    # Raw SQL, past the ORM's own PROTECT check: the trigger refuses it.
    table = connection.ops.quote_name(OrderEvidence._meta.db_table)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [evidence.pk])  # noqa: S608
    assert OrderEvidence.objects.get().tag == "paid"


def test_current_tag_never_moves_back_to_older_evidence(small_import, huber):
    """The OrderTag upsert is a compare-and-set on the evidence id: an older
    evidence row arriving late (a slower concurrent action committing after
    a newer one) leaves the newer tag."""
    from reconciliation.services.evidence import move_current_tags, write_evidence
    from reconciliation.services.profiles import profile_for

    row = Order.objects.filter(project=small_import.data_request.project).first()
    for entry in (
        (row.id, row.current_row_id, "paid", "P", "", "", ""),
        (row.id, row.current_row_id, "refunded", "", "R", "", ""),
    ):
        write_evidence(
            project=small_import.data_request.project, entries=[entry], profile=profile_for(huber)
        )
    older, newer = OrderEvidence.objects.order_by("id")
    assert OrderTag.objects.get(pk=row.id).evidence_id == newer.id
    move_current_tags(
        project=small_import.data_request.project, written=[(row.id, older.id, "paid")]
    )
    current = OrderTag.objects.get(pk=row.id)
    assert (current.evidence_id, current.tag) == (newer.id, "refunded")


# --- Revenue effect (services.revenue is the one place of the rules) ---------------------


@pytest.fixture
def revenue_import(project):
    """Known answers: four paid training orders, one exported refunded and
    then bought again by the same customer (R-2 → R-3)."""
    key = "a" * 64
    return import_from_frame(
        frame_from_rows(
            [
                {"order_id": "R-1", "payment_status": "paid"},
                {"order_id": "R-2", "payment_status": "paid", "customer_key": key},
                {
                    "order_id": "R-3",
                    "payment_status": "paid",
                    "customer_key": key,
                    "created_at": T0 + timedelta(days=2),
                },
                {"order_id": "R-4", "payment_status": "paid"},
                {"order_id": "R-5", "payment_status": "refunded"},
            ]
        ),
        project=project,
    )


def test_revenue_before_any_tag(revenue_import):
    totals = _totals(revenue_import)
    assert totals["paid_orders"] == 4 and totals["paid_amount"] == 112000
    assert totals["refunded_orders"] == 1
    assert _book(revenue_import).effective_status == "accepted"


def test_refunded_tag_removes_the_order_from_revenue(revenue_import, api_as, huber):
    api_as(huber).post(EVIDENCE, {"order_ids": ["R-1"], "tag": "refunded", "refund_ref": "RF-1"})
    totals = _totals(revenue_import)
    assert totals["paid_orders"] == 3 and totals["paid_amount"] == 84000
    assert totals["refunded_orders"] == 2


def test_paid_tag_confirms_and_keeps_revenue(revenue_import, api_as, huber):
    response = api_as(huber).post(
        EVIDENCE, {"order_ids": ["R-1", "R-4"], "tag": "paid", "payment_ref": "BANK"}
    )
    assert response.json()["revenue"]["paid_amount"] == 112000
    assert _totals(revenue_import)["paid_amount"] == 112000


def test_rebought_links_the_refund_to_the_later_order_so_it_counts_once(
    revenue_import, api_as, huber
):
    api_as(huber).post(EVIDENCE, {"order_ids": ["R-2"], "tag": "rebought", "refund_ref": "RF-2"})
    totals = _totals(revenue_import)
    # R-2 is the refunded original; R-3 is the rebuy and counts, once.
    assert totals["paid_orders"] == 3 and totals["paid_amount"] == 84000
    assert totals["rebuy_orders"] == 1


def test_unresolved_holds_the_order_back_and_keeps_the_import_partial(
    revenue_import, api_as, huber
):
    api_as(huber).post(EVIDENCE, {"order_ids": ["R-4"], "tag": "unresolved", "note": "金流查無"})
    summary = _book(revenue_import)
    assert summary.effective_status == "partial"
    assert summary.totals["paid_amount"] == 84000 and summary.totals["held_orders"] == 1
    assert any(e["order_id"] == "R-4" and e["owner"] == "huber" for e in summary.exceptions)
    # Resolving it (tagged paid with a reference) releases it.
    api_as(huber).post(EVIDENCE, {"order_ids": ["R-4"], "tag": "paid", "payment_ref": "BANK-4"})
    summary.refresh_from_db()
    assert summary.effective_status == "accepted"
    assert summary.totals["paid_amount"] == 112000


def test_paid_tag_on_an_exported_refund_is_an_exception_for_louis(revenue_import, api_as, huber):
    api_as(huber).post(EVIDENCE, {"order_ids": ["R-5"], "tag": "paid", "payment_ref": "BANK-5"})
    summary = _book(revenue_import)
    assert summary.effective_status == "partial"
    conflict = [e for e in summary.exceptions if e["order_id"] == "R-5"]
    assert conflict and conflict[0]["code"] == "tag_conflict" and conflict[0]["owner"] == "louis"
    assert summary.totals["paid_amount"] == 112000  # not counted while the conflict stands


# --- Tag files --------------------------------------------------------------------------


def test_clean_csv_tag_file_is_applied_whole(small_import, huber):
    ids = _training_ids(small_import)
    data = _csv(
        [
            (ids[0], "paid", "BANK-1", "", "", ""),
            (ids[1], "已退款", "", "RF-2", "", "退刷"),
            (ids[2], "重買", "", "RF-3", "", ""),
            (ids[3], "unresolved", "", "", "", "查無"),
        ]
    )
    report = import_tag_file(
        actor=huber, project=small_import.data_request.project, data=data, original_name="tags.csv"
    )
    assert report.ok and report.applied == 4 and report.status == "applied"
    assert dict(OrderTag.objects.values_list("order__order_id", "tag")) == {
        ids[0]: "paid",
        ids[1]: "refunded",
        ids[2]: "rebought",
        ids[3]: "unresolved",
    }
    event = AuditEvent.objects.get(verb=AuditEvent.Verb.EVIDENCE_TAGGED)
    assert event.data["count"] == 4 and event.data["source"] == "file"
    assert event.data["file_sha256"] == report.sha256


def test_tag_file_with_bad_rows_applies_nothing_and_lists_every_error(small_import, huber):
    ids = _training_ids(small_import)
    data = _csv(
        [
            (ids[0], "paid", "BANK-1", "", "", ""),  # row 2: fine
            (ids[1], "maybe", "", "", "", ""),  # row 3: unknown tag
            ("", "paid", "P", "", "", ""),  # row 4: blank order_id
            ("NOPE-1", "paid", "P", "", "", ""),  # row 5: unknown order
            (ids[2], "paid", "", "", "", ""),  # row 6: no reference
            (ids[0], "refunded", "", "RF", "", ""),  # row 7: repeat of row 2
            (ids[3], "refunded", "", "5500 0000 0000 0004", "", ""),  # row 8: card number
            ("NOPE-2", "unresolved", "", "", "", ""),  # row 9: unknown order
        ]
    )
    report = import_tag_file(
        actor=huber, project=small_import.data_request.project, data=data, original_name="t.csv"
    )
    assert not report.ok and report.applied == 0 and report.status == "rejected"
    assert [(e["row"], e["code"]) for e in report.row_errors] == [
        (3, "invalid_tag"),
        (4, "blank_order_id"),
        (5, "unknown_order_id"),
        (6, "missing_reference"),
        (7, "duplicate_order_id"),
        (8, "card_number"),
        (9, "unknown_order_id"),
    ]
    assert report.unknown_order_ids == ["NOPE-1", "NOPE-2"]
    assert report.valid_count == 1
    # The card number is shown masked, never whole.
    assert "5500 0000 0000 0004" not in str(report.as_dict())
    assert "5500 **** **** 0004" in str(report.as_dict())
    assert (
        not OrderEvidence.objects.exists()
        and not AuditEvent.objects.filter(verb="evidence.tagged").exists()
    )

    # "Apply valid rows only": the one good row, one audit event.
    report = import_tag_file(
        actor=huber,
        project=small_import.data_request.project,
        data=data,
        original_name="t.csv",
        apply_valid_only=True,
    )
    assert report.applied == 1 and report.status == "applied_valid_rows"
    assert list(OrderTag.objects.values_list("order__order_id", "tag")) == [(ids[0], "paid")]
    assert AuditEvent.objects.get(verb="evidence.tagged").data["skipped_rows"] == 7


def test_xlsx_tag_file_with_title_rows_and_chinese_headers(small_import, huber):
    ids = _training_ids(small_import)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Huber 5/22 佐證"])
    sheet.append([])
    sheet.append(["訂單編號", "標記", "付款單號", "退款單號", "佐證編號", "備註"])
    sheet.append([ids[0], "已付款", "BANK-1", None, None, None])
    sheet.append([ids[1], "退刷", None, None, "SCREENSHOT-7", None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = import_tag_file(
        actor=huber,
        project=small_import.data_request.project,
        data=buffer.getvalue(),
        original_name="t.xlsx",
    )
    assert report.ok, report.as_dict()
    assert report.applied == 2
    assert OrderTag.objects.get(order__order_id=ids[1]).evidence.evidence_ref == "SCREENSHOT-7"

    # Row numbers count the title rows, as Excel shows them.
    sheet.append([ids[2], "nope", None, None, None, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = import_tag_file(
        actor=huber, project=small_import.data_request.project, data=buffer.getvalue()
    )
    assert [(e["row"], e["column"]) for e in report.row_errors] == [(6, "tag")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"order_id,amount\nA,1\n", "missing_columns"),
        ("訂單編號,金額\nA,1\n".encode(), "missing_columns"),
        (b"order_id,tag\n", "header_only"),
        (b"PK\x03\x04garbage", "unreadable_file"),
        (b"%PDF-1.4 not a table", "unsupported_type"),
    ],
)
def test_unusable_tag_files_are_file_errors(small_import, huber, data, code):
    report = import_tag_file(actor=huber, project=small_import.data_request.project, data=data)
    assert [e["code"] for e in report.file_errors] == [code]
    assert report.applied == 0


def test_big5_csv_from_excel_is_read(small_import, huber):
    ids = _training_ids(small_import)
    data = f"訂單編號,標記,退款單號\n{ids[0]},已退款,RF-1\n".encode("cp950")
    report = import_tag_file(actor=huber, project=small_import.data_request.project, data=data)
    assert report.ok and report.applied == 1


# --- Pages ---------------------------------------------------------------------------------


def test_page_shows_counts_progress_and_rows(small_import, client, huber):
    ids = _training_ids(small_import)
    tag_orders(
        actor=huber,
        project=small_import.data_request.project,
        tag="paid",
        order_ids=ids[:6],
        payment_ref="B",
    )
    client.force_login(huber)
    response = client.get(reverse("evidence"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "已標記 6 / 30 筆（20%）" in html
    assert html.count('data-testid="order-row"') == 24  # untagged first: the default
    assert 'data-testid="nav-evidence"' in html
    assert "標記符合篩選的全部 24 筆" in html


def test_plain_form_tags_a_selection_and_redirects_back(small_import, client, huber):
    ids = _training_ids(small_import)[:2]
    client.force_login(huber)
    response = client.post(
        reverse("evidence-tag"),
        {
            "scope": "selection",
            "order_ids": ids,
            "tag": "refunded",
            "refund_ref": "RF-100",
            "next": "/evidence/?tag=untagged",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/evidence/?tag=untagged"
    assert OrderTag.objects.filter(tag="refunded").count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "已將 2 筆訂單標為「已退款」" in page


def test_plain_form_tags_everything_the_filter_matches(small_import, client, huber):
    client.force_login(huber)
    response = client.post(
        reverse("evidence-tag"),
        {
            "scope": "filter",
            "f_program_id": TRAINING_PROGRAM,
            "f_tag": "untagged",
            "f_payment_status": "pending",
            "expected_count": "99",
            "tag": "unresolved",
            "note": "待付款未入帳",
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/evidence/"
    pending = _training_ids(small_import, payment_status="pending")
    assert sorted(OrderTag.objects.values_list("order__order_id", flat=True)) == sorted(pending)


def test_the_page_inline_form_tags_the_pressed_row_with_its_own_fields(
    small_import, client, huber
):
    """Without the script: every row's controls submit the page's one inline
    form; the pressed button's order is tagged with that row's tag and
    reference, and no other row's."""
    first, second = _training_ids(small_import)[:2]
    client.force_login(huber)
    page = client.get(reverse("evidence")).content.decode()
    assert page.count('id="inline-tag"') == 1
    form = page[page.index('id="inline-tag"') : page.index("</form>", page.index('id="inline-tag"'))]
    assert "csrfmiddlewaretoken" in form and "<button type=\"submit\" disabled>" in form
    rows = page[page.index("<tbody>") : page.index("</tbody>")]
    assert "csrfmiddlewaretoken" not in rows and "<form" not in rows
    assert f'name="tag:{first}" form="inline-tag"' in rows

    response = client.post(
        reverse("evidence-tag"),
        {
            "scope": "inline",
            "next": "/evidence/?tag=all",
            "order_ids": second,
            f"tag:{first}": "paid",
            f"ref:{first}": "PAY-FIRST",
            f"tag:{second}": "refunded",
            f"ref:{second}": "RF-SECOND",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/evidence/?tag=all"
    tag = OrderTag.objects.select_related("evidence", "order").get()
    assert (tag.order.order_id, tag.tag) == (second, "refunded")
    assert tag.evidence.refund_ref == "RF-SECOND" and tag.evidence.payment_ref == ""


def test_inline_plain_form_puts_the_reference_where_the_tag_says(small_import, client, huber):
    order_id = _training_ids(small_import)[0]
    client.force_login(huber)
    client.post(
        reverse("evidence-tag"),
        {"scope": "inline", "order_ids": order_id, "tag": "paid", "ref": "PAY-X"},
    )
    assert OrderTag.objects.get().evidence.payment_ref == "PAY-X"


def test_import_page_rejects_then_applies_valid_rows_from_the_kept_file(
    small_import, client, huber
):
    ids = _training_ids(small_import)
    client.force_login(huber)
    upload = io.BytesIO(
        _csv([(ids[0], "paid", "B-1", "", "", ""), ("NOPE-9", "paid", "B-2", "", "", "")])
    )
    upload.name = "tags.csv"
    page = client.post(reverse("evidence-import"), {"file": upload}).content.decode()
    assert "未套用" in page and "NOPE-9" in page and 'data-testid="apply-valid-form"' in page
    assert not OrderTag.objects.exists()
    report = import_tag_file(
        actor=huber, project=small_import.data_request.project, data=b"x"
    )  # any file
    assert report.file_errors
    sha = (
        __import__("hashlib")
        .sha256(_csv([(ids[0], "paid", "B-1", "", "", ""), ("NOPE-9", "paid", "B-2", "", "", "")]))
        .hexdigest()
    )
    page = client.post(
        reverse("evidence-import"),
        {"sha256": sha, "original_name": "tags.csv", "apply_valid_only": "1"},
    ).content.decode()
    assert "已套用有效列" in page
    assert list(OrderTag.objects.values_list("order__order_id", flat=True)) == [ids[0]]


def test_templates_download(small_import, client, huber):
    client.force_login(huber)
    csv_text = client.get(reverse("evidence-template", args=["csv"])).content.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "order_id,tag,payment_ref,refund_ref,evidence_ref,note"
    xlsx = client.get(reverse("evidence-template", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[1]] == [
        "order_id",
        "tag",
        "payment_ref",
        "refund_ref",
        "evidence_ref",
        "note",
    ]


def test_exports_are_formula_safe_hashed_and_reimportable(project, client, huber):
    imp = import_from_frame(
        frame_from_rows(
            [
                {"order_id": "E-1", "discount_code": '=HYPERLINK("x")'},
                {"order_id": "E-2", "source_event": "+SUM(A1)"},
            ]
        ),
        project=project,
    )
    tag_orders(
        actor=huber,
        project=imp.data_request.project,
        tag="paid",
        order_ids=["E-1"],
        payment_ref="@cmd",
    )
    client.force_login(huber)
    response = client.get(reverse("evidence-export", args=["csv"]), {"tag": "all"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["order_id"] for r in rows] == ["E-1", "E-2"]
    assert rows[0]["tag"] == "paid" and rows[0]["payment_ref"] == "'@cmd"
    assert rows[0]["discount_code"].startswith("'=")
    assert rows[1]["source_event"] == "'+SUM(A1)"
    assert all(len(r["customer_key"]) == 64 for r in rows)
    xlsx = client.get(reverse("evidence-export", args=["xlsx"]), {"tag": "all"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][0] == "E-1" and not str(
        values[1][values[0].index("discount_code")]
    ).startswith("=")
    assert values[1][values[0].index("amount")] == 28000  # a number, not text

    # The export's first six columns are a tag file: re-import it as it is.
    edited = text.replace("E-2,,", "E-2,unresolved,", 1)
    report = import_tag_file(
        actor=huber, project=imp.data_request.project, data=edited.encode("utf-8")
    )
    assert report.ok, report.as_dict()


# --- Permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "read", "tag"),
    [
        ("louis", 200, 403),
        ("wade", 403, 403),
        ("huber", 200, 201),
        ("pls", 200, 201),
        ("outsider", 403, 403),
    ],
)
def test_api_permissions_for_every_role(small_import, api_as, request, who, read, tag):
    user = "pls" if who == "pls" else request.getfixturevalue(who)
    client = api_as(user)
    order_id = _training_ids(small_import)[0]
    assert client.get(ORDERS).status_code == read
    response = client.post(EVIDENCE, {"order_ids": [order_id], "tag": "unresolved"})
    assert response.status_code == tag, response.content
    if tag == 403:
        assert response.json()["error"] == "forbidden"
        assert not OrderEvidence.objects.exists()


def test_anonymous_api_is_401(small_import, api_as):
    assert api_as(None).get(ORDERS).status_code == 401
    assert api_as(None).post(EVIDENCE, {"order_ids": ["x"], "tag": "unresolved"}).status_code == 401


@pytest.mark.parametrize(
    ("who", "page", "tag_post", "nav"),
    [
        ("louis", 200, 403, True),
        ("wade", 403, 403, False),
        ("huber", 200, 302, True),
        ("outsider", 403, 403, False),
    ],
)
def test_page_permissions_for_every_role(small_import, client, request, who, page, tag_post, nav):
    user = request.getfixturevalue(who)
    client.force_login(user)
    response = client.get(reverse("evidence"))
    assert response.status_code == page
    if page == 200:
        html = response.content.decode()
        # Louis reads: no tagging forms for him.
        assert ('id="bulk-form"' in html) == (who == "huber")
    assert client.get(reverse("evidence-import")).status_code == (200 if who == "huber" else 403)
    order_id = _training_ids(small_import)[0]
    response = client.post(reverse("evidence-tag"), {"order_ids": order_id, "tag": "unresolved"})
    assert response.status_code == tag_post
    assert client.get(reverse("evidence-export", args=["csv"])).status_code == page
    board = client.get("/")
    if board.status_code == 200:
        assert ('data-testid="nav-evidence"' in board.content.decode()) == nav


def test_big_xlsx_exports_are_sent_to_csv(small_import, client, huber, monkeypatch):
    from reconciliation.views import evidence as evidence_views

    monkeypatch.setattr(evidence_views, "XLSX_EXPORT_LIMIT", 5)
    client.force_login(huber)
    response = client.get(reverse("evidence-export", args=["xlsx"]))
    assert response.status_code == 302 and response["Location"].startswith("/evidence/?")
    page = client.get(response["Location"]).content.decode()
    assert "請用 CSV" in page
    assert client.get(reverse("evidence-export", args=["csv"])).status_code == 200


def test_openapi_documents_the_evidence_endpoints(seeded, client):
    paths = client.get("/api/schema/").json()["paths"]
    assert "get" in paths["/api/kolable/orders"]
    assert "post" in paths["/api/kolable/evidence"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_bulk_actions_leave_each_order_on_its_newest_evidence(project, huber):
    """Two people tag the same 600 orders at once: no deadlock, no lost
    history, and every current tag is the order's newest evidence row."""
    imp = import_from_frame(synthetic_frame(600, training=600, seed=11), project=project)
    ids = _training_ids(imp)
    barrier = threading.Barrier(2)
    errors = []

    def run(tag, refs):
        try:
            barrier.wait()
            tag_orders(
                actor=huber,
                project=imp.data_request.project,
                tag=tag,
                order_ids=list(reversed(ids)) if tag == "refunded" else ids,
                **refs,
            )
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=("paid", {"payment_ref": "P"})),
        threading.Thread(target=run, args=("refunded", {"refund_ref": "R"})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert OrderEvidence.objects.count() == 1200
    newest = dict(
        OrderEvidence.objects.values("order_id")
        .annotate(newest=Max("id"))
        .values_list("order_id", "newest")
    )
    assert dict(OrderTag.objects.values_list("order_id", "evidence_id")) == newest
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.EVIDENCE_TAGGED).count() == 2
