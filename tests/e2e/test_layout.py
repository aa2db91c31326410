"""Every page at a laptop (1280 px) and a phone (390 px) width: the page body
is never wider than the viewport (tables scroll inside their own box or
become cards), no section spills out of its card, and amounts never break
inside a number. Each page's two screenshots land in tests/e2e/artifacts/
as layout-<page>-<width>.png."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from reconciliation.models import DataRequest
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from reconciliation.services.uploads import receive_upload
from tests.imp_frames import csv_bytes, order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 390)

# Everything the page body, and each section, is wider than it should be.
MEASURE = """() => {
  const vw = document.documentElement.clientWidth;
  const spilled = [...document.querySelectorAll("main section, main .card, main .step, main form")]
    .filter(el => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === "visible")
    .map(el => (el.dataset.testid || el.className || el.tagName) + ":" + el.scrollWidth + ">" + el.clientWidth);
  const broken = [...document.querySelectorAll(".num, .amount, .status")]
    .filter(el => el.getClientRects().length > 1 && el.offsetParent !== null)
    .map(el => el.textContent.trim());
  return {vw, doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
          spilled, broken};
}"""


def export_rows():
    rows = []
    for day in range(12, 22):
        for n in range(3):
            i = day * 10 + n
            rows.append(
                order(
                    f"KO-{i}",
                    "paid" if n < 2 else ("pending" if day % 2 else "refunded"),
                    28000 if n == 0 else 1990,
                    when=f"2026-05-{day} 2{n}:00",
                    customer=f"c{i}",
                    program="TRAIN-28000" if n == 0 else "BOOK-1",
                    code="LIVE50" if n == 1 else "",
                    source=f"LIVE-05{day}",
                )
            )
    rows.append(order("KO-120", "paid", 26000, customer="c120"))  # a repeat, other amount
    rows.append(order("KO-121", "paid", 1990, customer="c121"))  # a plain repeat
    return rows


SETTLEMENT_FILE = (
    "訂單編號,授權單號,交易日期,請款日期,交易金額,手續費,撥款金額\r\n"
    '="PAY-KO-130",="T130",2026/05/13 20:00:00,20260516,28000,770,27230\r\n'
    '="PAY-KO-121",="T121",2026/05/12 21:00:00,20260515,1990,55,1935\r\n'
    '="PAY-KO-140",="T140",2026/05/14 20:00:00,20260517,26000,715,25285\r\n'
    '="PAY-KO-999",="T999",2026/05/14 21:00:00,20260517,1990,55,1935\r\n'
).encode("cp950")


def upload(data_request, wade, content: bytes, name: str):
    return receive_upload(
        data_request=data_request,
        uploaded_by=wade,
        file=SimpleUploadedFile(name, content, content_type="text/csv"),
        original_name=name,
    ).upload


@pytest.fixture
def walk(louis, wade, huber):
    """The state of the issue's walk: one request with a failed and an
    accepted file (imported), one for another dataset that went overdue."""
    accepted = create_data_request(requested_by=louis)
    failed = upload(accepted, wade, b"order_id,amount\nKO-1,-28000\n", "missing-columns.csv")
    good = upload(accepted, wade, csv_bytes(*export_rows()), "kolable-orders-0512-0521.csv")
    import_upload(upload_id=good.pk, actor=wade)
    overdue = create_data_request(requested_by=louis, requested_dataset="2026-05 退款明細")
    DataRequest.objects.filter(pk=overdue.pk).update(due_at=timezone.now() - timedelta(hours=3))
    escalate_overdue_requests()
    settlement = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
    settled = upload(settlement, wade, SETTLEMENT_FILE, "ecpay-funding-0515.csv")
    import_upload(upload_id=settled.pk, actor=wade)
    return {
        "accepted": accepted,
        "overdue": overdue,
        "failed": failed,
        "settlement": settlement,
        "settled": settled,
    }


def pages(walk):
    accepted, overdue, failed = walk["accepted"], walk["overdue"], walk["failed"]
    return [
        ("login", None, "/accounts/login/"),
        ("board", "louis", "/"),
        ("request-form", "louis", "/requests/new/"),
        ("request-accepted", "louis", f"/requests/{accepted.pk}/"),
        ("request-overdue", "louis", f"/requests/{overdue.pk}/"),
        ("request-wade", "wade", f"/requests/{overdue.pk}/"),
        ("upload-failed", "wade", f"/requests/{accepted.pk}/upload/?result={failed.pk}"),
        ("upload-empty", "wade", f"/requests/{overdue.pk}/upload/"),
        ("inbox-louis", "louis", "/inbox/"),
        ("inbox-wade", "wade", "/inbox/"),
        ("inbox-huber", "huber", "/inbox/"),
        ("scorecard", "louis", "/scorecard/"),
        ("evidence", "huber", "/evidence/"),
        ("evidence-import", "huber", "/evidence/import/"),
        ("order", "huber", "/orders/KO-120/"),
        ("pls", "louis", "/pls/"),
        ("sources-empty", "louis", "/sources/"),
        ("live", "louis", "/live/"),
        ("live-stream", "louis", "/live/streams/LIVE-0512/"),
        (
            "settlement-upload",
            "wade",
            f"/requests/{walk['settlement'].pk}/upload/?result={walk['settled'].pk}",
        ),
        ("settlement-orphans", "huber", "/settlement/orphans/"),
        ("order-settled", "huber", "/orders/KO-140/"),
    ]


def test_every_page_holds_at_1280_and_390(page_for, shot, walk, louis, wade, huber):
    people = {"louis": louis, "wade": wade, "huber": huber, None: None}
    problems = []
    visited = 0
    for width in WIDTHS:
        tabs = {}
        for name, who, path in pages(walk):
            if who not in tabs:
                tabs[who] = page_for(people[who], width=width, height=844 if width < 600 else 900)
            page = tabs[who]
            response = page.goto(path)
            assert response.status == 200, (name, response.status)
            page.wait_for_load_state("load")
            shot(page, f"layout-{name}-{width}")
            measured = page.evaluate(MEASURE)
            visited += 1
            if measured["doc"] > measured["vw"] or measured["body"] > measured["vw"]:
                problems.append(f"{name}@{width}: page {measured['doc']} px > {measured['vw']} px")
            if measured["spilled"]:
                problems.append(f"{name}@{width}: spills {measured['spilled']}")
            if measured["broken"]:
                problems.append(f"{name}@{width}: numbers broken across lines {measured['broken']}")
    assert visited == len(WIDTHS) * len(pages(walk))
    assert problems == []
