"""Seed test D, the revenue-recognition guard: unverified (no totals, no
NT$ figure anywhere) until an accepted import exists; verified after; Louis
alone turns verified into recognised (or paused); a partial import is
approved only for its unblocked rows."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reconciliation.models import AuditEvent, ImportSummary, ReconciliationImport, RevenueDecision
from reconciliation.services.imports import _record_failed, import_frame
from tests.imp_frames import accepted_upload, frame, new_request, order

LATEST = "/api/kolable/reconciliation/latest"
DECISION = "/api/kolable/reconciliation/decision"
MONEY = re.compile(r"NT\$\s*[\d,]+")

ORDERS = (
    order("D-1", "paid", 28000),
    order("D-2", "paid", 28000, customer="c2", when="2026-05-14 21:00", source="LIVE-0514"),
    order("D-3", "pending", 28000, customer="c3"),
    order("D-4", "refunded", 28000, customer="c4", ref="RF-4"),
)


@pytest.fixture
def data_request(louis):
    return new_request(louis)


def imported(data_request, wade, *orders):
    return import_frame(
        upload=accepted_upload(data_request, wade), frame=frame(*(orders or ORDERS))
    )


def page(client, user, path="/scorecard/"):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_no_request_no_data_unverified_everywhere(client, louis, pls_api):
    body = pls_api.get(LATEST).json()
    assert body["revenue_status"] == "unverified"
    assert body["totals"] is None and body["import"] is None
    assert body["by_day"] is None and body["by_source_event"] is None
    assert body["exceptions"] == [] and body["decision"] is None
    assert not MONEY.search(json.dumps(body, ensure_ascii=False))

    html = page(client, louis)
    assert 'data-status="unverified"' in html
    assert "營收未驗證" in html
    assert not MONEY.search(html), MONEY.findall(html)
    assert 'data-testid="results"' not in html and "daily-chart" not in html


def test_open_request_and_failed_import_stay_unverified(client, louis, wade, pls_api, data_request):
    upload = accepted_upload(data_request, wade)
    failed = _record_failed(upload=upload, actor=None, reason="the kept file is gone")
    assert failed.status == ReconciliationImport.Status.FAILED
    body = pls_api.get(LATEST).json()
    assert body["revenue_status"] == "unverified" and body["totals"] is None
    html = page(client, wade)
    assert 'data-status="unverified"' in html
    assert not MONEY.search(html)
    # The 本輪狀態 cards and the flow still say where things stand.
    assert 'data-testid="card-data"' in html and "未回收" in html
    assert 'data-testid="step-D1" data-state="done"' in html


def test_after_an_accepted_import_verified_with_totals(client, louis, wade, pls_api, data_request):
    result = imported(data_request, wade)
    body = pls_api.get(LATEST).json()
    assert body["revenue_status"] == "verified"
    assert body["import"]["id"] == str(result.pk)
    assert body["import"]["paid_count"] == 2 and body["import"]["effective_status"] == "accepted"
    totals = body["totals"]
    assert totals["paid_amount"] == 56000
    assert totals["pending_amount"] == 28000 and totals["refunded_amount"] == 28000
    assert "import_time" not in totals
    assert [d["key"] for d in body["by_day"]] == ["2026-05-12", "2026-05-14"]
    assert body["decision"] is None

    html = page(client, louis)
    assert 'data-status="verified"' in html
    assert 'data-testid="total-paid">NT$56,000<' in html
    assert 'data-testid="daily-chart"' in html
    assert html.count("<g data-day=") == 10  # 5/12 … 5/21
    assert 'data-rule="has_data"' in html
    assert re.search(r'<tr class="current"[^>]*data-rule="has_data"', html)


def test_a_request_open_for_years_charts_the_days_with_orders_not_every_day(client, louis, wade):
    """The API sync's standing request covers 2000–2099: the chart narrows to
    the days that have orders (and to at most CHART_MAX_DAYS of them)."""
    from datetime import date

    from reconciliation.selectors.scorecard import CHART_MAX_DAYS

    standing = new_request(louis, period_start=date(2000, 1, 1), period_end=date(2099, 12, 31))
    imported(
        standing,
        wade,
        order("Y-1", "paid", 28000, when="2026-03-01 20:00"),
        order("Y-2", "paid", 28000, customer="c2", when="2026-05-14 21:00"),
    )
    html = page(client, louis)
    days = re.findall(r'<g data-day="([0-9-]+)"', html)
    assert len(days) == CHART_MAX_DAYS
    assert days[0] == "2026-03-14" and days[-1] == "2026-05-14"
    assert "每日營收 3/14–5/14" in html
    assert "2000/1/1-2099/12/31" in html  # the title's period keeps its years
    assert len(html) < 400_000


def test_decision_409_when_nothing_is_verified(api_as, louis, data_request):
    response = api_as(louis).post(DECISION, {"decision": "approve", "note": "x"})
    assert response.status_code == 409
    assert response.json()["error"] == "nothing_verified"
    assert not RevenueDecision.objects.exists()


@pytest.mark.parametrize("who", ["wade", "huber", "pls", "outsider"])
def test_only_louis_decides(request, api_as, wade, data_request, who):
    imported(data_request, wade)
    user = "pls" if who == "pls" else request.getfixturevalue(who)
    response = api_as(user).post(DECISION, {"decision": "approve"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert not RevenueDecision.objects.exists()


def test_decision_needs_sign_in(api_as, wade, data_request):
    imported(data_request, wade)
    assert api_as(None).post(DECISION, {"decision": "approve"}).status_code == 401


def test_invalid_decision_is_422(api_as, louis, wade, data_request):
    imported(data_request, wade)
    response = api_as(louis).post(DECISION, {"decision": "maybe"})
    assert response.status_code == 422


def test_louis_approves_then_pauses(api_as, louis, wade, pls_api, data_request):
    result = imported(data_request, wade)
    response = api_as(louis).post(DECISION, {"decision": "approve", "note": "對過金流"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["revenue_status"] == "recognised"
    assert body["import_id"] == str(result.pk)
    assert float(body["recognised_amount"]) == 56000 and body["held_back_rows"] == 0
    assert body["decided_by"] == "louis"
    latest = pls_api.get(LATEST).json()
    assert latest["revenue_status"] == "recognised"
    assert latest["decision"]["note"] == "對過金流"
    event = AuditEvent.objects.get(verb=AuditEvent.Verb.REVENUE_DECIDED)
    assert event.actor.username == "louis" and "NT$56,000" in event.message

    paused = api_as(louis).post(DECISION, {"decision": "pause", "note": "等 settlement 檔"})
    assert paused.status_code == 201
    assert paused.json()["revenue_status"] == "paused"
    assert paused.json()["recognised_amount"] is None
    assert pls_api.get(LATEST).json()["revenue_status"] == "paused"
    assert RevenueDecision.objects.count() == 2


def test_partial_import_is_approved_for_its_unblocked_rows_only(
    client, api_as, louis, wade, data_request
):
    result = imported(
        data_request,
        wade,
        *ORDERS,
        order("D-5", "paid", 28000, customer="c5", ref="RF-0514-5"),  # paid with a refund ref
        order("D-6", "paid", 28000, customer="c6"),
        order("D-6", "paid", 26000, customer="c6"),  # the same order, another amount
    )
    assert result.status == ReconciliationImport.Status.PARTIAL
    html = page(client, louis)
    assert 'data-testid="held-back-note"' in html
    # Orders, not rows: D-5, and D-6 once (its repeat stays a duplicate row).
    assert html.count('data-testid="exception-row"') == 2
    assert "Huber" in html and "Wade" in html

    response = api_as(louis).post(DECISION, {"decision": "approve", "note": "先認列沒問題的"})
    assert response.status_code == 201
    body = response.json()
    assert float(body["recognised_amount"]) == 56000  # D-1 and D-2 only
    assert body["held_back_rows"] == 2  # D-5 and the first D-6 (the repeat is a duplicate)
    html = page(client, louis)
    assert 'data-status="recognised"' in html
    assert "保留 2 筆有例外的訂單" in html


def test_louis_decides_on_the_page_and_others_cannot(client, louis, wade, huber, data_request):
    imported(data_request, wade)
    html = page(client, wade)
    assert 'data-testid="decision-form"' not in html
    client.force_login(wade)
    assert client.post("/scorecard/decision/", {"decision": "approve"}).status_code == 403
    client.force_login(huber)
    assert client.post("/scorecard/decision/", {"decision": "approve"}).status_code == 403
    assert not RevenueDecision.objects.exists()

    html = page(client, louis)
    assert 'data-testid="decision-form"' in html
    client.force_login(louis)
    unconfirmed = client.post("/scorecard/decision/", {"decision": "approve"}, follow=True)
    assert "請勾選確認" in unconfirmed.content.decode()
    assert not RevenueDecision.objects.exists()
    response = client.post(
        "/scorecard/decision/", {"decision": "approve", "note": "ok", "confirm": "1"}, follow=True
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "已認列已驗證營收 NT$56,000" in text
    assert 'data-status="recognised"' in text
    assert RevenueDecision.objects.get().decided_by.user == louis


def test_exports_are_formula_safe_and_refused_before_verification(
    client, louis, wade, data_request
):
    client.force_login(louis)
    refused = client.get("/scorecard/export.csv", follow=True)
    assert "沒有可匯出的數字" in refused.content.decode()
    assert not MONEY.search(refused.content.decode())

    imported(
        data_request,
        wade,
        order("=HYPERLINK(1)", "paid", 28000, ref="RF-1", source="+LIVE", code="@X"),
    )
    csv_text = client.get("/scorecard/export.csv").content.decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in csv_text and "'+LIVE" in csv_text and "'@X" in csv_text
    assert not re.search(r"(^|,)[=+@]", csv_text, re.M)

    from io import BytesIO

    from openpyxl import load_workbook

    response = client.get("/scorecard/export.xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(BytesIO(response.content))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert "'=HYPERLINK(1)" in texts
    assert not any(c.data_type == "f" for c in cells)


def test_scorecard_shows_the_book_built_by_every_import(client, louis, wade, data_request):
    """The scorecard reads the book, not the newest file: both imports are
    listed with what each changed, and an import's scorecard_ref marks it."""
    first = imported(data_request, wade)
    other = new_request(louis, requested_dataset="2026-05-22..2026-05-31 export")
    second = imported(other, wade, order("N-1", "paid", 990))
    assert first.scorecard_ref.endswith(f"/scorecard/?import={first.pk}")
    html = page(client, louis)
    assert html.count('data-testid="book-import"') == 2
    assert 'data-testid="total-paid">NT$56,990<' in html  # both files' orders, once each
    html = page(client, louis, f"/scorecard/?import={first.pk}")
    assert f'id="import-{first.pk}" data-testid="book-import" class="current"' in html
    assert second.pk != first.pk
    # Unknown or malformed ids mark nothing and still show the book.
    html = page(client, louis, "/scorecard/?import=nope")
    assert 'data-testid="book-import" class="current"' not in html
    assert 'data-testid="total-paid">NT$56,990<' in html


def test_the_scorecard_costs_the_same_with_more_imports(client, louis, wade, data_request):
    """Each import is one row of the list: a third import adds no query, and
    no import's own copy of the totals and breakdowns is read."""
    imported(data_request, wade)
    imported(new_request(louis, requested_dataset="05-22 export"), wade, order("N-1", "paid", 990))

    client.force_login(louis)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/scorecard/").status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    two = queries()
    imported(new_request(louis, requested_dataset="05-23 export"), wade, order("N-2", "paid", 990))
    three = queries()
    assert len(three) == len(two)
    summary = ImportSummary._meta.db_table
    assert not [sql for sql in three if f'"{summary}"."totals"' in sql]
