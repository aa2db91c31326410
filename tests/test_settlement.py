"""Settlement files end to end through the app's own services: the order
export uploaded and imported, then settlement files uploaded, validated and
matched. Every figure is worked out by hand from the files below."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from reconciliation.management.commands._orders_data import import_from_frame
from reconciliation.models import (
    DataRequest,
    OrderSettlement,
    SettlementImport,
    SettlementLine,
    Upload,
)
from reconciliation.selectors import settlement as figures
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from reconciliation.services.settlement.manual import match_line, undo_match
from reconciliation.services.uploads import receive_upload
from tests.imp_frames import frame, order

pytestmark = pytest.mark.django_db


def _book(louis):
    recent = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    return import_from_frame(
        frame(
            order("A", amount=28000),
            order("B", amount=28000),
            order("C", "refunded", amount=28000),
            order("D", amount=12000, program="VIP-12000", customer="c4"),
            order("E", amount=3600, program="LIVE-COACH-3600", customer="c5"),
            order("F", amount=6800, program="WORKSHOP-6800", customer="c6"),
            order("G", amount=980, program="BOOK-980", customer="c7", when=recent),
            order("H", "pending", amount=980, program="BOOK-980", customer="c8"),
        )
    )


def _settlement_request(louis):
    return create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)


def _send(data_request, wade, name, data: bytes):
    outcome = receive_upload(
        data_request=data_request,
        uploaded_by=wade,
        file=SimpleUploadedFile(name, data, content_type="text/csv"),
        original_name=name,
        content_type="text/csv",
    )
    upload = outcome.upload
    result = import_upload(upload_id=upload.pk) if upload.schema_status == "accepted" else None
    return upload, result


# B: order NT$28,000, ECPay settled NT$26,000 with a NT$715 fee.
B_REASON = {
    "field": "amount",
    "expected": 28000.0,
    "settled": 26000.0,
    "difference": -2000.0,
    "fee": 715.0,
    "fee_rate": 0.0275,
}


ECPAY_FIRST = (
    "綠界科技 信用卡撥款對帳明細\r\n"
    "訂單編號,授權單號,交易日期,請款日期,交易金額,手續費,撥款金額\r\n"
    '="PAY-A",="T001",2026/05/12 20:01:00,20260515,28000,770,27230\r\n'
    '="PAY-A",="T001",2026/05/12 20:01:00,20260515,28000,770,27230\r\n'
    '="pay-b ",="T002",2026/05/12 20:02:00,20260515,26000,715,25285\r\n'
    '="PAY-C",="T003",2026/05/12 20:03:00,20260515,28000,770,27230\r\n'
    '="PAY-C",="R003",2026/05/13 10:00:00,20260516,-28000,0,-28000\r\n'
    '="PAY-D",="T004",2026/05/12 20:04:00,20260515,12000,330,11670\r\n'
    '="PAY-E",="T005",2026/05/12 20:05:00,20260515,3600,99,3501\r\n'
    '="PAY-E",="T006",2026/05/12 20:06:00,20260515,3600,99,3501\r\n'
    '="PAY-ZZZ",="T007",2026/05/12 20:07:00,20260515,6800,187,6613\r\n'
).encode("cp950")

CANONICAL_LATER = (
    b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"
    b"PAY-D,R004,-2000,0,2026-05-20,\n"
    b"PAY-A,T001,28000,770,2026-05-12 20:01,charge\n"
)


def test_ecpay_file_matches_the_book_with_exact_states_and_figures(louis, wade):
    _book(louis)
    assert figures.settlement_figures(DataRequest.objects.first().project) is None
    data_request = _settlement_request(louis)
    assert data_request.requested_dataset == "2026-05-12..2026-05-21 payment settlement file"
    assert [c["name"] for c in data_request.required_schema][:3] == [
        "payment_ref",
        "gross_amount",
        "txn_date",
    ]
    upload, result = _send(data_request, wade, "ecpay.csv", ECPAY_FIRST)
    assert upload.schema_status == Upload.SchemaStatus.ACCEPTED
    assert upload.layout == "ecpay"
    assert upload.row_count == 9
    assert isinstance(result, SettlementImport)
    assert (
        result.line_count,
        result.matched_count,
        result.orphan_count,
        result.duplicate_line_count,
        result.mismatch_count,
    ) == (9, 7, 1, 1, 2)
    project = data_request.project
    states = dict(OrderSettlement.objects.values_list("order__order_id", "state"))
    assert states == {
        "A": "settled",
        "B": "amount_mismatch",
        "C": "refund_settled",
        "D": "settled",
        "E": "over_amount",
    }
    b = OrderSettlement.objects.get(order__order_id="B")
    reason = figures.mismatch_reason(b.order, b)
    assert reason == B_REASON
    got = figures.settlement_figures(project)
    # Matched, counted lines: A 28000/770, B 26000/715, C 28000−28000/770,
    # D 12000/330, E 2×3600/2×99.
    assert got["settled_gross"] == 73200.0
    assert got["fees"] == 2783.0
    assert got["settled_net"] == 70417.0
    assert got["refund_settled"] == 28000.0
    # 實收: the net of recognisable (paid, no exception) orders A, B, D, E.
    assert got["collected"] == 27230 + 25285 + 11670 + 3501 * 2
    # Paid without a line: F (May: past the window, missing), G (yesterday: expected).
    assert (got["missing_count"], got["expected_count"]) == (1, 1)
    assert got["paid_unsettled_amount"] == 6800 + 980
    assert (got["orphan_count"], got["mismatch_count"]) == (1, 2)
    assert got["coverage"] == round(4 / 6, 4)
    g = project.orders.get(order_id="G")
    f = project.orders.get(order_id="F")
    assert figures.order_state(g) == "expected"
    assert figures.order_state(f) == "missing"
    assert [e["owner"] for e in figures.settlement_exceptions(got)] == ["wade", "wade", "louis"]
    duplicate = SettlementLine.objects.get(line_state="duplicate_line")
    assert duplicate.row_number == 4


def test_a_later_file_adds_refunds_and_the_same_file_twice_changes_nothing(louis, wade):
    _book(louis)
    data_request = _settlement_request(louis)
    _send(data_request, wade, "ecpay.csv", ECPAY_FIRST)
    again, result = _send(data_request, wade, "ecpay-again.csv", ECPAY_FIRST)
    assert SettlementImport.objects.count() == 1
    assert SettlementLine.objects.count() == 9
    upload, later = _send(data_request, wade, "later.csv", CANONICAL_LATER)
    assert upload.layout == "canonical"
    assert (later.line_count, later.matched_count, later.duplicate_line_count) == (2, 1, 1)
    d = OrderSettlement.objects.get(order__order_id="D")
    assert d.state == "partially_refunded"
    assert (d.settled_gross, d.refund_settled, d.settled_net) == (10000, 2000, 9670)
    assert OrderSettlement.objects.get(order__order_id="A").settled_gross == 28000


def test_two_orders_with_one_reference_the_earliest_created_has_its_line(louis, wade):
    """Whatever order the rows were stored in (row ids differ between SQLite
    and PostgreSQL), the line goes to the earliest created order."""
    import_from_frame(
        frame(
            order("S1-LATE", amount=980, program="BOOK-980", when="2026-05-14 20:00", ref="PAY-S"),
            order("S2-EARLY", amount=28000, when="2026-05-12 20:00", customer="c2", ref="pay-s"),
        )
    )
    data_request = _settlement_request(louis)
    _send(
        data_request,
        wade,
        "shared.csv",
        b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date\n"
        b"PAY-S,S001,28000,770,2026-05-12 20:01\n",
    )
    results = {r.order.order_id: r.state for r in OrderSettlement.objects.select_related("order")}
    assert results == {"S2-EARLY": "settled"}


def test_manual_match_needs_accepted_difference_and_undo_restores(louis, wade, huber):
    from reconciliation.errors import InvalidInput

    _book(louis)
    data_request = _settlement_request(louis)
    _send(data_request, wade, "ecpay.csv", ECPAY_FIRST)
    project = data_request.project
    orphan = figures.orphan_lines(project).get()
    assert [o.order_id for o in figures.suggestions(project, orphan)] == ["F"]
    with pytest.raises(InvalidInput):
        match_line(actor=huber, line_id=orphan.pk, order_id="G", note="客服確認")
    match = match_line(actor=huber, line_id=orphan.pk, order_id="F", note="ECPay 單號打錯")
    f = OrderSettlement.objects.get(order__order_id="F")
    assert (f.state, f.settled_net) == ("settled", 6613)
    assert figures.settlement_figures(project)["orphan_count"] == 0
    assert figures.settlement_figures(project)["missing_count"] == 0
    undo_match(actor=louis, match_id=match.pk, note="對錯了")
    assert not OrderSettlement.objects.filter(order__order_id="F").exists()
    assert figures.settlement_figures(project)["orphan_count"] == 1
    other = match_line(
        actor=louis,
        line_id=orphan.pk,
        order_id="G",
        note="同一筆，金額差額由客服補",
        accept_difference=True,
    )
    g = OrderSettlement.objects.get(order__order_id="G")
    assert (g.state, g.difference_accepted, other.difference) == ("settled", True, -5820)


@pytest.mark.parametrize(
    "name,data,layout,provider",
    [
        (
            "stripe.csv",
            b"balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,"
            b"reporting_category,automatic_payout_id,payment_intent_id,charge_id\n"
            b"txn_1,2026-05-12 12:01:00,2026-05-15 00:00:00,twd,28000.00,770.00,27230.00,"
            b"charge,po_1,PAY-A,\n"
            b"txn_2,2026-05-13 02:00:00,2026-05-16 00:00:00,twd,-28000.00,0.00,-28000.00,"
            b"refund,po_2,,PAY-C\n",
            "stripe",
            "Stripe",
        ),
        (
            "newebpay.csv",
            "\ufeffMerchantOrderNo,TradeNo,PayTime,Amt,Fee\n"
            "PAY-A,N1,2026-05-12 20:01:00,28000,770\n".encode(),
            "newebpay",
            "NewebPay",
        ),
    ],
)
def test_provider_layouts_are_recognised(louis, wade, name, data, layout, provider):
    _book(louis)
    upload, result = _send(_settlement_request(louis), wade, name, data)
    assert (upload.schema_status, upload.layout) == ("accepted", layout)
    lines = list(SettlementLine.objects.order_by("row_number"))
    assert lines[0].provider == provider
    assert lines[0].net_amount == 27230
    assert lines[0].order.order_id == "A"
    if layout == "stripe":
        # charge_id fills in where payment_intent_id is blank; UTC times.
        assert lines[1].order.order_id == "C"
        assert lines[1].txn_type == "refund"
        assert lines[0].txn_date.isoformat() == "2026-05-12T12:01:00+00:00"


def test_row_errors_of_a_settlement_file(louis, wade):
    data = (
        b"payment_ref,gross_amount,txn_date,txn_type,settlement_status\n"
        b"PAY-A,abc,2026-05-12,charge,settled\n"
        b",28000,20261345,bogus,frozen?\n"
    )
    upload, result = _send(_settlement_request(louis), wade, "bad.csv", data)
    assert upload.schema_status == "schema_failed"
    assert result is None
    found = {(e["row"], e["column"], e["code"]) for e in upload.row_errors}
    assert found == {
        (2, "gross_amount", "bad_settlement_amount"),
        (3, "payment_ref", "blank_value"),
        (3, "txn_date", "bad_settlement_date"),
        (3, "txn_type", "unknown_txn_type"),
        (3, "settlement_status", "unknown_settlement_status"),
    }
    assert not SettlementLine.objects.exists()


def test_a_settlement_amount_the_lines_cannot_store_is_a_row_error(louis, wade):
    data = (
        b"payment_ref,gross_amount,fee_amount,txn_date\n"
        b"PAY-A,28000,770,2026-05-12\n"
        b"PAY-B,-1e15,0,2026-05-12\n"
        b"PAY-C,28000,999999999999999,2026-05-12\n"
    )
    upload, result = _send(_settlement_request(louis), wade, "huge.csv", data)
    assert upload.schema_status == "schema_failed" and result is None
    found = {(e["row"], e["column"], e["code"]) for e in upload.row_errors}
    assert found == {
        (3, "gross_amount", "amount_too_large"),
        (4, "fee_amount", "amount_too_large"),
    }
    assert not SettlementLine.objects.exists()


def test_missing_required_columns(louis, wade):
    upload, _ = _send(_settlement_request(louis), wade, "x.csv", b"payment_ref,amount\nPAY-A,1\n")
    assert upload.missing_fields == ["gross_amount", "txn_date"]


def test_sample_settlement_files_are_recognised_and_accepted(tmp_path):
    from django.core.management import call_command

    from reconciliation.settlement_validation import validate_settlement_file

    call_command(
        "make_sample_export",
        out=str(tmp_path),
        xlsx_rows=600,
        csv_rows="",
        stdout=open(tmp_path / "log", "w"),  # noqa: SIM115
    )
    totals = {}
    for layout in ("ecpay", "stripe", "newebpay", "canonical"):
        result = validate_settlement_file(tmp_path / f"settlement-{layout}-600.csv")
        assert (result.layout, result.accepted) == (layout, True), result.file_errors
        totals[layout] = (result.row_count, round(result.frame["net_amount"].sum(), 2))
    assert len(set(totals.values())) == 1, totals
    ecpay = (tmp_path / "settlement-ecpay-600.csv").read_bytes()
    assert b'="' in ecpay and "訂單編號".encode("cp950") in ecpay
    assert validate_settlement_file(tmp_path / "settlement-ecpay-600.csv").encoding == "cp950"


def test_settlement_lines_and_imports_are_append_only(louis, wade):
    from django.db import IntegrityError, transaction

    _book(louis)
    _send(_settlement_request(louis), wade, "ecpay.csv", ECPAY_FIRST)
    line = SettlementLine.objects.first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        SettlementLine.objects.filter(pk=line.pk).update(gross_amount=1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        SettlementLine.objects.filter(pk=line.pk).delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        SettlementImport.objects.update(line_count=0)
    line.refresh_from_db()
    assert SettlementImport.objects.get().line_count == 9
