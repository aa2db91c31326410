"""/live/, the stream page, the compliance form and the viewer upload, and
the live-streams API: who may do what, the figures as the pages and the API
show them, bad input answered with 4xx, the exports formula-safe."""

import csv
import io
from urllib.parse import quote

import pytest
from openpyxl import load_workbook

from reconciliation.models import ComplianceRecord
from reconciliation.services.imports import import_frame
from tests.imp_frames import accepted_upload, frame, new_request, order
from tests.services.test_live import ALL_CHECKS, BOOK, VIEWERS

ODD = '=HYPERLINK("x")/場次?#%'


@pytest.fixture
def book(louis, wade, project):
    data_request = new_request(louis)
    orders = (*BOOK, order("Z1", "paid", 1000, customer="c9", when="2026-05-20 21:00", source=ODD))
    import_frame(upload=accepted_upload(data_request, wade), frame=frame(*orders))
    return project


@pytest.mark.parametrize(
    "who, status", [("louis", 200), ("huber", 200), ("pls", 200), ("wade", 403), ("outsider", 403)]
)
def test_who_reads_the_dashboard(book, client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/live/").status_code == status
    assert client.get("/live/streams/LIVE-A/").status_code == status
    assert client.get("/live/export.csv").status_code == (200 if status == 200 else 403)


@pytest.mark.parametrize(
    "who, status", [("louis", 200), ("huber", 200), ("wade", 403), ("outsider", 403)]
)
def test_who_reads_the_api(book, api_as, request, who, status):
    assert (
        api_as(request.getfixturevalue(who)).get("/api/kolable/live-streams").status_code == status
    )


def test_the_api_answers_every_stream_with_totals_and_queue_links(book, api_as, louis):
    body = api_as(louis).get("/api/kolable/live-streams", {"sort": "gmv"}).json()
    assert body["settlement"] and body["totals"]["orders"] == 10
    a = next(s for s in body["streams"] if s["source_event"] == "LIVE-A")
    assert (a["gmv"], a["orders"], a["paid_amount"], a["refund_count"], a["rebuys"]) == (
        84990,
        4,
        56990,
        1,
        1,
    )
    assert (a["average_order_value"], a["discount_share"], a["settled_net"], a["conversion"]) == (
        21247.5,
        0.5,
        None,
        None,
    )
    assert a["flagged"] is True and a["compliance_status"] == "pending"
    assert (
        "source_event=LIVE-A" in a["links"]["orders"]
        and "payment_status=refunded" in a["links"]["refunds"]
    )
    assert [s["source_event"] for s in body["streams"]][:2] == ["LIVE-A", "LIVE-B"]
    ascending = (
        api_as(louis).get("/api/kolable/live-streams", {"sort": "orders", "order": "asc"}).json()
    )
    assert ascending["streams"][0]["orders"] == 1
    assert api_as(louis).get("/api/kolable/live-streams", {"sort": "nope"}).status_code == 422


def test_the_queue_link_of_discount_orders_lists_exactly_them(book, client, louis):
    client.force_login(louis)
    body = client.get("/api/kolable/live-streams").json()
    a = next(s for s in body["streams"] if s["source_event"] == "LIVE-A")
    link = a["links"]["discount"].split("/evidence/", 1)[1]
    orders = client.get("/api/kolable/orders" + link).json()
    assert sorted(o["order_id"] for o in orders["results"]) == ["A1", "A3"]


def test_compliance_through_the_api_with_any_characters_in_the_name(book, api_as, louis, huber):
    path = f"/api/kolable/live-streams/{quote(ODD, safe='')}/compliance"
    payload = {
        "checks": {**ALL_CHECKS, "sponsorship_disclosed": False},
        "status": "fail",
        "evidence_ref": "VOD 12:00",
    }
    assert api_as(huber).post(path, payload).status_code == 403
    made = api_as(louis).post(path, payload)
    assert made.status_code == 201 and made.json()["source_event"] == ODD
    assert made.json()["recorded_by"] == "louis"
    assert (
        api_as(louis).post(path, {**payload, "status": "pass"}).status_code == 422
    )  # a check is open
    assert api_as(louis).post(path, {**payload, "status": "maybe"}).status_code == 422
    assert api_as(louis).post(path, {**payload, "note": "a\x00b"}).status_code == 422
    assert api_as(louis).post(path, {**payload, "evidence_ref": "x" * 501}).status_code == 422
    assert (
        api_as(louis).post("/api/kolable/live-streams/NO-SUCH/compliance", payload).status_code
        == 404
    )
    long_name = quote("x" * 201)
    assert (
        api_as(louis).post(f"/api/kolable/live-streams/{long_name}/compliance", payload).status_code
        == 422
    )
    assert api_as(louis).post(
        "/api/kolable/live-streams/a%00b/compliance", payload
    ).status_code in (404, 422)
    detail = api_as(huber).get(f"/api/kolable/live-streams/{quote(ODD, safe='')}").json()
    assert detail["compliance"]["status"] == "fail" and detail["stream"]["flagged"] is True
    assert len(detail["compliance_history"]) == 1 and sum(detail["orders_by_hour"]) == 1
    history = (
        api_as(huber).get(f"/api/kolable/live-streams/{quote(ODD, safe='')}/compliance").json()
    )
    assert [h["status"] for h in history] == ["fail"]
    assert ComplianceRecord.objects.count() == 1


def test_louis_records_a_failed_check_on_the_page_and_sees_the_flag(book, client, louis):
    client.force_login(louis)
    page = client.get("/live/streams/LIVE-B/")
    assert page.status_code == 200 and 'data-testid="compliance-form"' in page.content.decode()
    answer = client.post(
        "/live/compliance/",
        {
            "source_event": "LIVE-B",
            "status": "fail",
            "claims_reviewed": "on",
            "evidence_ref": "VOD-0515",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/live/streams/LIVE-B/"
    text = client.get("/live/streams/LIVE-B/").content.decode()
    assert 'data-testid="stream-flag"' in text and "VOD-0515" in text
    board = client.get("/live/").content.decode()
    # Every stream not `pass` is flagged: A, B, C (84,990 + 82,000 + 28,000) and the odd one (1,000).
    assert 'data-testid="live-flagged"' in board and "NT$195,990" in board
    # Nothing recorded from a bad form: pass with checks open.
    client.post("/live/compliance/", {"source_event": "LIVE-B", "status": "pass"})
    assert ComplianceRecord.objects.filter(source_event="LIVE-B").count() == 1


def test_only_louis_records_compliance_on_the_page(book, client, huber):
    client.force_login(huber)
    assert (
        client.post("/live/compliance/", {"source_event": "LIVE-B", "status": "fail"}).status_code
        == 403
    )
    assert (
        'data-testid="compliance-form"' not in client.get("/live/streams/LIVE-B/").content.decode()
    )


def test_the_viewer_file_through_the_page_and_the_api(book, client, api_as, louis, wade, huber):
    client.force_login(louis)
    upload = io.BytesIO(VIEWERS.encode())
    upload.name = "viewers.csv"
    assert client.post("/live/viewers/", {"file": upload}).status_code == 302
    text = client.get("/live/").content.decode()
    assert "0.2%" in text  # LIVE-A: 4 orders / 2,000 viewers
    bad = io.BytesIO(b"source_event,viewers\nLIVE-A,-1\n")
    bad.name = "bad.csv"
    answer = api_as(wade).upload("/api/kolable/live-viewers", {"file": bad})
    assert answer.status_code == 422 and answer.json()["error"] == "invalid_rows"
    nul = io.BytesIO(b"source_event,viewers\nLIVE\x00A,1\n")
    nul.name = "nul.csv"
    assert api_as(wade).upload("/api/kolable/live-viewers", {"file": nul}).status_code == 422
    again = io.BytesIO(VIEWERS.encode())
    again.name = "v.csv"
    assert api_as(huber).upload("/api/kolable/live-viewers", {"file": again}).status_code == 403
    assert api_as(wade).upload("/api/kolable/live-viewers", {}).status_code == 422


def test_the_exports_are_formula_safe_and_say_what_is_missing(book, client, louis):
    client.force_login(louis)
    rows = list(csv.reader(io.StringIO(client.get("/live/export.csv").content.decode("utf-8-sig"))))
    names = [r[0] for r in rows[1:]]
    assert "'" + ODD in names and ODD not in names
    a = next(r for r in rows if r[0] == "LIVE-A")
    assert a[1] == "84990.0" and a[5] == "缺資料" and a[-1] == "合規未通過"
    assert rows[-1][0] == "合計" and rows[-1][1] == "196980.0"
    sheet = load_workbook(io.BytesIO(client.get("/live/export.xlsx").content)).active
    cells = [row[0] for row in sheet.iter_rows(values_only=True)]
    assert "'" + ODD in cells


def test_an_empty_book_says_so(client, louis, seeded):
    client.force_login(louis)
    assert 'data-testid="live-empty"' in client.get("/live/").content.decode()
    assert client.get("/live/streams/LIVE-A/").status_code == 404
    body = client.get("/api/kolable/live-streams").json()
    assert body["totals"] is None and body["streams"] == []


def test_the_scorecard_flags_revenue_of_streams_not_passed(book, client, louis, wade):
    from reconciliation.services.live_records import record_compliance

    record_compliance(
        actor=louis, project=book, source_event="LIVE-A", checks=ALL_CHECKS, status="pass"
    )
    client.force_login(louis)
    text = client.get("/scorecard/").content.decode()
    assert 'data-testid="sources-flag-note"' in text
    # LIVE-B, LIVE-C and the odd stream are flagged; LIVE-A passed; no-stream orders are no stream.
    assert text.count('data-testid="source-flagged"') == 3
    assert 'href="/live/"' in text
    client.force_login(wade)
    assert 'data-testid="scorecard-live-link"' not in client.get("/scorecard/").content.decode()


def test_a_stream_name_with_a_newline_is_reachable(louis, wade, project, client, api_as):
    name = "LIVE\n0512/第二段"
    import_frame(
        upload=accepted_upload(new_request(louis), wade),
        frame=frame(order("NL-1", "paid", 990, customer="c1", source=name)),
    )
    path = f"/api/kolable/live-streams/{quote(name, safe='')}"
    assert api_as(louis).get(path).json()["stream"]["source_event"] == name
    checks = {"checks": ALL_CHECKS, "status": "pass"}
    assert api_as(louis).post(path + "/compliance", checks).status_code == 201
    client.force_login(louis)
    assert client.get(f"/live/streams/{quote(name, safe='')}/").status_code == 200
    assert f'href="/live/streams/{quote(name)}/"' in client.get("/live/").content.decode()
