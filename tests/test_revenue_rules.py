"""Huber's evidence tags and revenue (services.revenue, the one place the
rules live): refunded removes, rebought counts once, unresolved holds back,
a tag contradicting the export is Louis's exception. Tags go through the
real evidence service, which recomputes the summary after every action."""

import pytest

from reconciliation.models import BookSummary
from reconciliation.services.evidence import tag_orders
from reconciliation.services.imports import import_frame
from reconciliation.services.revenue import recompute_summary
from tests.imp_frames import accepted_upload, frame, new_request, order


@pytest.fixture
def make_import(louis, wade):
    def make(*orders):
        data_request = new_request(louis)
        return import_frame(upload=accepted_upload(data_request, wade), frame=frame(*orders))

    return make


def book(imported):
    """The project's order book summary (what the pages read)."""
    return BookSummary.objects.get(pk=imported.data_request.project_id)


def tag(huber, imported, tag_name, *order_ids, **refs):
    refs.setdefault("evidence_ref", "EV-1")
    tag_orders(
        actor=huber,
        project=imported.data_request.project,
        tag=tag_name,
        order_ids=list(order_ids),
        **refs,
    )
    return book(imported)


def consistent(summary):
    totals = summary.totals
    for field in ("by_day", "by_source_event", "by_program", "by_discount_code"):
        rows = getattr(summary, field)
        for metric in ("paid_amount", "held_amount", "refunded_amount", "orders", "rebuy_orders"):
            assert sum(r[metric] for r in rows) == pytest.approx(totals[metric]), (field, metric)
    assert sum(totals["exception_counts"].values()) == summary.exception_count


def test_refunded_tag_removes_an_order_from_revenue(make_import, huber):
    imported = make_import(
        order("R-1", "paid", 28000),
        order("R-2", "paid", 28000, customer="c2", when="2026-05-15 20:00", source="LIVE-0515"),
    )
    assert book(imported).totals["paid_amount"] == 56000
    summary = tag(huber, imported, "refunded", "R-2", refund_ref="RF-77")
    assert summary.totals["paid_amount"] == 28000
    assert summary.totals["refunded_amount"] == 28000 and summary.totals["refunded_orders"] == 1
    days = {d["key"]: d["paid_amount"] for d in summary.by_day}
    assert days == {"2026-05-12": 28000, "2026-05-15": 0}
    assert summary.effective_status == "accepted"
    consistent(summary)


def test_unresolved_holds_back_and_keeps_the_import_partial_until_resolved(make_import, huber):
    imported = make_import(order("U-1", "paid", 28000), order("U-2", "paid", 1000, customer="c2"))
    summary = tag(huber, imported, "unresolved", "U-1", note="金流查無此筆")
    assert summary.effective_status == "partial"
    assert summary.totals["paid_amount"] == 1000
    assert summary.totals["held_amount"] == 28000
    assert summary.exceptions == [
        {
            "row_number": 2,
            "order_id": "U-1",
            "code": "unresolved",
            "owner": "huber",
            "amount": 28000.0,
            "program_id": "TRAIN-28000",
        }
    ]
    summary = tag(huber, imported, "paid", "U-1", payment_ref="PAY-U-1")
    assert summary.effective_status == "accepted"
    assert summary.totals["paid_amount"] == 29000 and summary.exception_count == 0
    consistent(summary)


def test_tagged_paid_but_exported_refunded_is_louis_exception(make_import, huber):
    imported = make_import(order("T-1", "refunded", 28000, ref="RF-1"), order("T-2", "paid", 500))
    summary = tag(huber, imported, "paid", "T-1", payment_ref="PAY-9")
    assert summary.effective_status == "partial"
    assert summary.totals["paid_amount"] == 500  # a contradiction never becomes revenue
    assert summary.totals["held_amount"] == 28000
    assert [(e["order_id"], e["code"], e["owner"]) for e in summary.exceptions] == [
        ("T-1", "tag_conflict", "louis")
    ]
    consistent(summary)


def test_paid_evidence_settles_a_refund_ref_on_a_paid_row(make_import, huber):
    imported = make_import(order("E-1", "paid", 28000, ref="RF-2026-1"))
    assert imported.status == "partial"
    assert book(imported).totals["paid_amount"] == 0
    summary = tag(huber, imported, "paid", "E-1", payment_ref="PAY-REAL-1")
    assert summary.effective_status == "accepted"
    assert summary.totals["paid_amount"] == 28000 and summary.exception_count == 0
    consistent(summary)


def test_evidence_does_not_settle_wades_data_error(make_import, huber):
    imported = make_import(order("M-1", "paid", 28000), order("M-1", "paid", 25000))
    summary = tag(huber, imported, "paid", "M-1", payment_ref="PAY-M-1")
    assert summary.effective_status == "partial"
    assert summary.totals["paid_amount"] == 0
    assert {e["owner"] for e in summary.exceptions} == {"wade"}
    consistent(summary)


def test_rebought_on_the_refunded_original_counts_the_money_once(make_import, huber):
    # The export still says paid for the original; Huber knows it was
    # refunded and bought again as R-NEW.
    imported = make_import(
        order("R-OLD", "paid", 28000, when="2026-05-12 20:00"),
        order("R-NEW", "paid", 28000, when="2026-05-17 20:00"),
    )
    assert book(imported).totals["paid_amount"] == 56000
    summary = tag(huber, imported, "rebought", "R-OLD", refund_ref="RF-OLD")
    assert summary.totals["paid_amount"] == 28000
    assert summary.totals["rebuy_orders"] == 1 and summary.totals["rebuy_amount"] == 28000
    assert summary.effective_status == "accepted"
    consistent(summary)


def test_rebought_on_the_new_order_retires_the_earlier_one(make_import, huber):
    imported = make_import(
        order("N-OLD", "paid", 28000, when="2026-05-12 20:00"),
        order("N-NEW", "paid", 28000, when="2026-05-17 20:00"),
        order("X-1", "paid", 28000, customer="other", when="2026-05-13 20:00"),
    )
    summary = tag(huber, imported, "rebought", "N-NEW", evidence_ref="LINE-chat-0517")
    assert summary.totals["paid_amount"] == 56000  # N-NEW and X-1
    assert summary.totals["refunded_orders"] == 1
    assert summary.totals["rebuy_orders"] == 1
    consistent(summary)


def test_rebought_without_a_partner_order_is_huber_exception(make_import, huber):
    imported = make_import(order("S-1", "paid", 28000))
    summary = tag(huber, imported, "rebought", "S-1", refund_ref="RF-S")
    assert summary.effective_status == "partial"
    assert summary.totals["paid_amount"] == 0
    assert [(e["code"], e["owner"]) for e in summary.exceptions] == [("rebuy_unmatched", "huber")]
    consistent(summary)


def test_tags_on_duplicates_change_nothing_and_recompute_is_idempotent(make_import, huber):
    imported = make_import(order("D-1", "paid", 28000), order("D-1", "paid", 28000))
    summary = tag(huber, imported, "paid", "D-1", payment_ref="PAY-D-1")  # tags both rows
    assert summary.totals["paid_amount"] == 28000
    assert summary.totals["duplicate_rows"] == 1
    before = (summary.totals, summary.by_day, summary.exceptions)
    again = recompute_summary(project=imported.data_request.project)
    assert (again.totals, again.by_day, again.exceptions) == before
    consistent(again)


def test_open_exceptions_lists_every_one_beyond_the_summary_and_follows_evidence(
    make_import, huber, client, louis
):
    from reconciliation.services.revenue import EXCEPTION_LIST_LIMIT, open_exceptions

    many = EXCEPTION_LIST_LIMIT + 10
    imported = make_import(
        *(order(f"X-{i}", "paid", 100, customer=f"c{i}", ref=f"RF-{i}") for i in range(many)),
        order("OK-1", "paid", 100, customer="ok"),
    )
    assert imported.summary.exception_count == many
    assert len(imported.summary.exceptions) == EXCEPTION_LIST_LIMIT
    tag(huber, imported, "paid", "X-0", payment_ref="PAY-0")  # settles one
    tag(huber, imported, "unresolved", "OK-1", note="查無金流")  # raises one
    found = open_exceptions(project=imported.data_request.project)
    assert len(found) == many - 1 + 1
    assert "X-0" not in {e["order_id"] for e in found}
    assert ("OK-1", "unresolved", "huber") in {
        (e["order_id"], e["code"], e["owner"]) for e in found
    }

    client.force_login(louis)
    html = client.get("/scorecard/").content.decode()
    assert html.count('data-testid="exception-row"') == 50
    csv_text = client.get("/scorecard/export.csv").content.decode("utf-8-sig")
    exception_lines = [line.split(",") for line in csv_text.splitlines()]
    assert (
        sum(1 for cells in exception_lines if cells[1:2] and cells[1].startswith("X-")) == many - 1
    )


def test_the_page_says_when_evidence_changed_the_figure_after_approval(
    make_import, huber, louis, client
):
    from reconciliation.services.revenue import record_revenue_decision

    imported = make_import(order("A-1", "paid", 28000), order("A-2", "paid", 1000, customer="c2"))
    record_revenue_decision(decided_by=louis, decision="approve", note="")
    client.force_login(louis)
    assert 'data-testid="decision-outdated"' not in client.get("/scorecard/").content.decode()
    tag(huber, imported, "refunded", "A-1", refund_ref="RF-A-1")
    html = client.get("/scorecard/").content.decode()
    assert 'data-testid="decision-outdated"' in html and "NT$1,000" in html
