"""Settlement through the API and the pages: the request of kind
settlement, the upload, the import answer, `settlement: null` before any
settlement file and the figures after, Louis's approval split, the
settlement_state filter, the order's lines, manual match and undo."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from reconciliation.models import AuditEvent, Upload
from tests.test_settlement import ECPAY_FIRST, _book

pytestmark = pytest.mark.django_db

LATEST = "/api/kolable/reconciliation/latest"


def _page(user, path="/scorecard/"):
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def _settlement_via_api(api_as, louis, wade):
    created = api_as(louis).post("/api/kolable/data-requests", {"kind": "settlement"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["kind"] == "settlement"
    assert body["data_owner"]["username"] == "wade"
    sent = api_as(wade).upload(
        f"/api/kolable/data-requests/{body['id']}/upload",
        {"file": SimpleUploadedFile("ecpay.csv", ECPAY_FIRST)},
    )
    assert sent.status_code in (200, 201), sent.content
    assert sent.json()["layout"] == "ecpay"
    answer = api_as(wade).post(
        "/api/kolable/reconciliation/import", {"data_request_id": body["id"]}
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_settlement_is_null_before_and_exact_after(api_as, louis, wade, pls_api):
    _book(louis)
    before = pls_api.get(LATEST).json()
    assert before["settlement"] is None
    html = _page(louis)
    assert 'data-testid="settlement-missing"' in html
    assert 'data-testid="collected"' not in html
    answer = _settlement_via_api(api_as, louis, wade)
    assert {k: answer[k] for k in ("kind", "layout", "line_count", "matched_count")} == {
        "kind": "settlement",
        "layout": "ecpay",
        "line_count": 9,
        "matched_count": 7,
    }
    assert (answer["orphan_count"], answer["duplicate_line_count"], answer["mismatch_count"]) == (
        1,
        1,
        2,
    )
    after = pls_api.get(LATEST).json()["settlement"]
    assert after["collected"] == 71187.0
    assert (after["settled_gross"], after["fees"], after["settled_net"]) == (
        73200.0,
        2783.0,
        70417.0,
    )
    assert after["paid_unsettled_amount"] == 7780.0
    assert (after["expected_count"], after["missing_count"]) == (1, 1)
    owners = {
        e["code"]: e["owner"]
        for e in pls_api.get(LATEST).json()["exceptions"]
        if e["code"].startswith("settlement_")
    }
    assert owners == {
        "settlement_missing": "wade",
        "settlement_orphan": "wade",
        "settlement_mismatch": "louis",
    }
    html = _page(louis)
    assert 'data-testid="collected">NT$71,187<' in html
    assert html.count('data-testid="settlement-exception-row"') == 3
    settlement_upload = Upload.objects.get(layout="ecpay")
    upload_page = _page(
        wade,
        f"/requests/{settlement_upload.data_request_id}/upload/?result={settlement_upload.pk}",
    )
    assert "認得的檔案格式：綠界 ECPay 信用卡撥款對帳檔" in upload_page
    assert 'data-settlement="orphan_count">1<' in upload_page


def test_louis_approval_states_the_settled_part(api_as, louis, wade):
    _book(louis)
    unsettled = api_as(louis).post("/api/kolable/reconciliation/decision", {"decision": "approve"})
    assert unsettled.json()["settled_amount"] is None
    _settlement_via_api(api_as, louis, wade)
    made = api_as(louis).post("/api/kolable/reconciliation/decision", {"decision": "approve"})
    body = made.json()
    # Recognised: paid orders A, B, D, E, F, G = 28000+28000+12000+3600+6800+980.
    assert float(body["recognised_amount"]) == 79380
    # Settled in full: A 28000 and D 12000 (B is short, E is over).
    assert (float(body["settled_amount"]), float(body["unsettled_amount"])) == (40000, 39380)
    event = AuditEvent.objects.filter(verb="revenue.decided").first()
    assert "金流已撥款 NT$40,000、尚未撥款 NT$39,380" in event.message
    assert "其中金流已撥款 NT$40,000，尚未撥款 NT$39,380。" in _page(louis)


def test_orders_filter_and_order_lines(api_as, louis, wade, huber):
    _book(louis)
    _settlement_via_api(api_as, louis, wade)
    api = api_as(louis)

    def ids(state):
        response = api.get("/api/kolable/orders", {"program_id": "*", "settlement_state": state})
        assert response.status_code == 200, response.content
        return sorted(o["order_id"] for o in response.json()["results"])

    assert ids("settled") == ["A", "D"]
    assert ids("amount_mismatch") == ["B"]
    assert ids("refund_settled") == ["C"]
    assert ids("over_amount") == ["E"]
    assert ids("missing") == ["F"]
    assert ids("expected") == ["G"]
    bad = api.get("/api/kolable/orders", {"settlement_state": "cleared"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_filter"
    detail = api.get("/api/kolable/orders/C").json()
    assert detail["settlement_state"] == "refund_settled"
    assert [line["gross_amount"] for line in detail["settlement_lines"]] == [28000.0, -28000.0]
    html = _page(huber, "/orders/B/")
    assert 'data-testid="order-settlement-reason"' in html
    assert "訂單金額 NT$28,000，撥款 NT$26,000（手續費 NT$715，2.75%）" in html
    # The lines are shown once, in the page, not in its <title>.
    assert html.count('data-testid="order-settlement"') == 1
    assert "<" not in html.split("<title>")[1].split("</title>")[0]


def test_manual_match_api_and_undo(api_as, louis, wade, huber):
    _book(louis)
    _settlement_via_api(api_as, louis, wade)
    orphans = api_as(huber).get("/api/kolable/settlement-lines/orphans").json()
    assert [(o["payment_ref"], [s["order_id"] for s in o["suggestions"]]) for o in orphans] == [
        ("PAY-ZZZ", ["F"])
    ]
    line_id = orphans[0]["id"]
    refused = api_as(wade).post(
        "/api/kolable/settlement-matches", {"line_id": line_id, "order_id": "F", "note": "x"}
    )
    assert refused.status_code == 403
    differs = api_as(huber).post(
        "/api/kolable/settlement-matches", {"line_id": line_id, "order_id": "G", "note": "x"}
    )
    assert differs.status_code == 422 and differs.json()["error"] == "amount_differs"
    blank = api_as(huber).post(
        "/api/kolable/settlement-matches", {"line_id": line_id, "order_id": "F", "note": ""}
    )
    assert blank.status_code == 422 and blank.json()["error"] == "note_required"
    made = api_as(huber).post(
        "/api/kolable/settlement-matches",
        {"line_id": line_id, "order_id": "F", "note": "單號打錯"},
    )
    assert made.status_code == 201, made.content
    assert made.json()["order_settlement_state"] == "settled"
    again = api_as(huber).post(
        "/api/kolable/settlement-matches",
        {"line_id": line_id, "order_id": "F", "note": "again"},
    )
    assert again.status_code == 409
    assert api_as(louis).get(LATEST).json()["settlement"]["orphan_count"] == 0
    undone = api_as(louis).post(f"/api/kolable/settlement-matches/{made.json()['id']}/undo", {})
    assert undone.status_code == 200 and undone.json()["undone_by"] == "louis"
    assert undone.json()["order_settlement_state"] == "missing"
    twice = api_as(louis).post(f"/api/kolable/settlement-matches/{made.json()['id']}/undo", {})
    assert twice.status_code == 409
    verbs = list(
        AuditEvent.objects.filter(verb__startswith="settlement.").values_list("verb", flat=True)
    )
    assert sorted(verbs) == ["settlement.imported", "settlement.matched", "settlement.unmatched"]
    assert 'data-testid="orphan-line"' in _page(huber, "/settlement/orphans/")


def test_settlement_template_and_export(api_as, louis, wade):
    client = Client()
    client.force_login(wade)
    csv = client.get("/template.csv?kind=settlement").content.decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("payment_ref,gross_amount,txn_date,provider_txn_id")
    _book(louis)
    client.force_login(louis)
    before = client.get("/scorecard/export.csv").content.decode("utf-8-sig")
    assert "尚未收到：不顯示實收" in before
    _settlement_via_api(api_as, louis, wade)
    after = client.get("/scorecard/export.csv").content.decode("utf-8-sig")
    assert "實收（已撥款淨額，NT$）,71187" in after


def test_queue_page_filters_by_settlement_state_and_window_setting(
    api_as, louis, wade, huber, settings
):
    _book(louis)
    _settlement_via_api(api_as, louis, wade)
    html = _page(huber, "/evidence/?program_id=*&tag=all&settlement_state=missing")
    assert 'data-order-id="F"' in html and 'data-order-id="A"' not in html
    settings.SETTLEMENT_WINDOW_DAYS = 400
    after = api_as(louis).get(LATEST).json()["settlement"]
    assert (after["expected_count"], after["missing_count"], after["window_days"]) == (2, 0, 400)


def test_louis_asks_for_the_settlement_file_from_the_form(louis):
    from datetime import timedelta

    from django.utils import timezone

    from reconciliation.models import DataRequest

    client = Client()
    client.force_login(louis)
    response = client.post(
        "/requests/new/",
        {
            "kind": "settlement",
            "requested_dataset": "2026-05-12..2026-05-21 order/payment export",
            "period_start": "2026-05-12",
            "period_end": "2026-05-21",
            "data_owner": "wade",
            "due_at": (timezone.localtime() + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302
    made = DataRequest.objects.get()
    assert made.kind == "settlement"
    assert made.requested_dataset == "2026-05-12..2026-05-21 payment settlement file"
    assert made.required_schema[0]["name"] == "payment_ref"
    detail = client.get(response["Location"]).content.decode()
    assert "gross_amount" in detail


def test_wade_is_asked_for_the_settlement_columns(louis):
    from reconciliation.message_text import notification_text
    from reconciliation.models import Notification
    from reconciliation.services.requests import create_data_request

    made = create_data_request(requested_by=louis, kind="settlement")
    note = Notification.objects.get(
        data_request=made, recipient__user__username="wade", channel="inbox"
    )
    subject, body = notification_text(note)
    assert "2026-05-12 至 2026-05-21 金流撥款檔" in subject
    assert "payment_ref、gross_amount、txn_date" in body
    assert "/template.xlsx?kind=settlement" in body
