"""An orphan settlement line whose order a later order import brings: the
line counts for that order (matched on its trimmed, case-folded reference),
leaves every orphan count and list, and shows on the order's page; only the
orders the import touched get their results rewritten."""

import pytest
from django.test import Client

from reconciliation.management.commands._orders_data import import_from_frame
from reconciliation.models import OrderSettlement, SettlementLine, Upload
from reconciliation.selectors import settlement as figures
from reconciliation.selectors.scorecard import default_project
from reconciliation.services.settlement.manual import match_line
from reconciliation.services.settlement.matching import rebuild_order_settlements
from tests.imp_frames import frame, order
from tests.test_settlement import _send, _settlement_request

pytestmark = pytest.mark.django_db

# A settled, B short by NT$2,000, and a line for order J the book lacks yet
# (its reference in another case, with a stray space: ECPay's habit).
SETTLEMENT = (
    b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"
    b"PAY-A,T1,28000,770,2026-05-12 20:01,charge\n"
    b"PAY-B,T2,26000,715,2026-05-12 20:02,charge\n"
    b"pay-j ,T9,5000,138,2026-05-12 20:09,charge\n"
)


def _orders(*extra, mode=Upload.Mode.INCREMENTAL):
    return import_from_frame(
        frame(
            order("A", amount=28000),
            order("B", amount=28000),
            order("D", amount=12000, program="VIP-12000", customer="c4"),
            *extra,
        ),
        mode=mode,
        name=f"orders-{len(extra)}.csv",
    )


def _later_order_j(amount=5000, ref="PAY-J"):
    return import_from_frame(
        frame(order("J", amount=amount, program="BOOK-5000", customer="c9", ref=ref)),
        mode=Upload.Mode.INCREMENTAL,
        name=f"orders-j-{amount}-{ref}.csv",
    )


def _results() -> dict:
    return {
        r.order.order_id: (
            r.state,
            r.settled_gross,
            r.settled_fee,
            r.settled_net,
            r.refund_settled,
            r.unsettled_gross,
            r.line_count,
            r.difference_accepted,
        )
        for r in OrderSettlement.objects.select_related("order")
    }


def _orphan_codes(project) -> list[str]:
    return [
        e["code"]
        for e in figures.settlement_exceptions(figures.settlement_figures(project))
        if e["code"] == "settlement_orphan"
    ]


def test_a_later_order_import_claims_the_orphan_line(louis, wade, huber):
    _orders()
    data_request = _settlement_request(louis)
    _upload, result = _send(data_request, wade, "late.csv", SETTLEMENT)
    project = data_request.project
    assert (result.matched_count, result.orphan_count, result.mismatch_count) == (2, 1, 1)
    line = SettlementLine.objects.get(provider_txn_id="T9")
    assert (line.line_state, line.order_id) == ("orphan", None)
    assert _orphan_codes(project) == ["settlement_orphan"]
    assert [
        e["owner"] for e in figures.settlement_exceptions(figures.settlement_figures(project))
    ] == [
        "wade",
        "wade",
        "louis",
    ]

    _later_order_j()

    j = OrderSettlement.objects.get(order__order_id="J")
    assert (j.state, j.settled_gross, j.settled_fee, j.settled_net, j.line_count) == (
        "settled",
        5000,
        138,
        4862,
        1,
    )
    # The stored line is as it arrived (append-only); the claim counts it.
    line.refresh_from_db()
    assert (line.line_state, line.order_id) == ("orphan", None)
    assert not figures.orphan_lines(project).exists()
    got = figures.settlement_figures(project)
    assert (got["orphan_count"], got["mismatch_count"]) == (0, 1)
    assert _orphan_codes(project) == []
    # A 28000/770, B 26000/715, J 5000/138.
    assert (got["settled_gross"], got["fees"], got["settled_net"]) == (59000.0, 1623.0, 57377.0)
    assert got["collected"] == 27230 + 25285 + 4862
    latest = Client()
    latest.force_login(louis)
    owners = [
        e["code"]
        for e in latest.get("/api/kolable/reconciliation/latest").json()["exceptions"]
        if e["code"].startswith("settlement_")
    ]
    assert owners == ["settlement_missing", "settlement_mismatch"]
    page = Client()
    page.force_login(huber)
    html = page.get("/orders/J/").content.decode()
    assert html.count('data-testid="order-settlement"') == 1
    assert "<code>T9</code>" in html
    orphans_page = page.get("/settlement/orphans/").content.decode()
    assert 'data-testid="no-orphans"' in orphans_page
    assert [entry["gross_amount"] for entry in figures.order_lines(j.order)] == [5000.0]


def test_an_order_import_rewrites_only_the_orders_it_touched(louis, wade):
    _orders()
    data_request = _settlement_request(louis)
    _send(data_request, wade, "late.csv", SETTLEMENT)
    project = default_project()
    # A probe, not data: an order the next import does not touch keeps
    # whatever its row holds; a rewrite would put back line_count 1.
    OrderSettlement.objects.filter(order__order_id="A").update(line_count=99)

    _later_order_j()

    assert OrderSettlement.objects.get(order__order_id="A").line_count == 99
    after_import = _results()
    rebuild_order_settlements(project=project)
    full = _results()
    assert full["A"][6] == 1
    after_import["A"] = full["A"]
    assert after_import == full
    assert set(full) == {"A", "B", "J"}


def test_a_changed_order_moves_its_results_and_an_unchanged_one_does_not(louis, wade):
    _orders()
    data_request = _settlement_request(louis)
    _send(data_request, wade, "late.csv", SETTLEMENT)
    project = default_project()
    # B now exported at what the provider settled: its mismatch goes.
    import_from_frame(
        frame(order("A", amount=28000), order("B", amount=26000)),
        mode=Upload.Mode.INCREMENTAL,
        name="b-corrected.csv",
    )
    assert OrderSettlement.objects.get(order__order_id="B").state == "settled"
    assert figures.settlement_figures(project)["mismatch_count"] == 0
    # J arrives with another reference: the line stays an orphan.
    _later_order_j(ref="PAY-J-2")
    assert not OrderSettlement.objects.filter(order__order_id="J").exists()
    assert figures.orphan_lines(project).count() == 1
    # J's reference corrected in a later export: the line is J's.
    _later_order_j(ref="PAY-J")
    assert OrderSettlement.objects.get(order__order_id="J").state == "settled"
    assert figures.orphan_lines(project).count() == 0
    # And moved away again: an orphan once more.
    _later_order_j(ref="PAY-J-3")
    assert not OrderSettlement.objects.filter(order__order_id="J").exists()
    assert figures.settlement_figures(project)["orphan_count"] == 1


def test_a_manual_match_wins_over_a_later_order(louis, wade, huber):
    _orders()
    data_request = _settlement_request(louis)
    _send(data_request, wade, "late.csv", SETTLEMENT)
    project = default_project()
    line = figures.orphan_lines(project).get()
    match_line(
        actor=huber,
        line_id=line.pk,
        order_id="D",
        note="客服確認是 D 的分期",
        accept_difference=True,
    )
    _later_order_j()
    assert not OrderSettlement.objects.filter(order__order_id="J").exists()
    d = OrderSettlement.objects.get(order__order_id="D")
    assert (d.state, d.settled_gross, d.difference_accepted) == ("settled", 5000, True)
    assert figures.settlement_figures(project)["orphan_count"] == 0
