"""Wade uploads ECPay's settlement file through his page; Louis sees 實收,
the settled/unsettled split of what he recognises and the settlement
exceptions with their owners; Huber matches the orphan line by hand."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from reconciliation.models import DataRequest, Upload
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from tests.test_settlement import ECPAY_FIRST, _book

ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_wade_uploads_ecpay_louis_sees_collected_huber_matches_an_orphan(
    page_for, louis, wade, huber, shot, tmp_path
):
    _book(louis)
    louis_page = page_for(louis)
    louis_page.goto("/scorecard/")
    expect(louis_page.get_by_test_id("settlement-missing")).to_be_visible()
    expect(louis_page.get_by_test_id("collected")).to_have_count(0)

    data_request = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
    wade_page = page_for(wade)
    wade_page.goto(f"/requests/{data_request.pk}/upload/")
    expect(wade_page.get_by_role("heading", name="上傳金流撥款檔")).to_be_visible()
    expect(wade_page.get_by_test_id("template-csv")).to_have_attribute(
        "href", "/template.csv?kind=settlement"
    )
    path = tmp_path / "ecpay-funding.csv"
    path.write_bytes(ECPAY_FIRST)
    wade_page.locator("input[type=file]").set_input_files(str(path))
    wade_page.get_by_test_id("upload-submit").click()
    expect(wade_page.get_by_test_id("result-status")).to_have_text("已通過")
    expect(wade_page.get_by_test_id("layout-recognised")).to_contain_text("綠界 ECPay")
    upload = Upload.objects.get(data_request=data_request)
    import_upload(upload_id=upload.pk)  # the worker's task, in place of a worker
    wade_page.goto(f"/requests/{data_request.pk}/upload/?result={upload.pk}")
    result = wade_page.get_by_test_id("settlement-import-result")
    expect(result.locator("[data-settlement=matched_count]")).to_have_text("7")
    expect(result.locator("[data-settlement=orphan_count]")).to_have_text("1")
    expect(result.locator("[data-settlement=duplicate_line_count]")).to_have_text("1")
    shot(wade_page, "settlement-wade-upload")

    louis_page.goto("/scorecard/")
    expect(louis_page.get_by_test_id("collected")).to_have_text("NT$71,187")
    rows = louis_page.get_by_test_id("settlement-exception-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Wade")
    expect(rows.nth(1)).to_contain_text("Wade")
    expect(rows.nth(2)).to_contain_text("Louis")
    louis_page.get_by_test_id("confirm-approve").check()
    louis_page.get_by_test_id("approve").click()
    expect(louis_page.get_by_test_id("decision-settled")).to_contain_text("NT$40,000")
    expect(louis_page.get_by_test_id("decision-settled")).to_contain_text("NT$39,380")
    shot(louis_page, "settlement-louis-scorecard")
    phone = page_for(louis, width=390, height=844)
    phone.goto("/scorecard/")
    phone.get_by_test_id("settlement").screenshot(path=str(ARTIFACTS / "settlement-ladder-390.png"))

    huber_page = page_for(huber)
    huber_page.goto("/settlement/orphans/")
    line = huber_page.get_by_test_id("orphan-line")
    expect(line).to_have_count(1)
    expect(line.get_by_test_id("suggestion")).to_have_text("F")
    expect(line.get_by_test_id("match-order")).to_have_value("F")
    line.get_by_test_id("match-note").fill("ECPay 訂單編號打錯，客服確認是 F")
    line.get_by_test_id("match-submit").click()
    expect(huber_page.get_by_test_id("no-orphans")).to_be_visible()
    expect(huber_page.get_by_test_id("manual-match")).to_contain_text("F")
    shot(huber_page, "settlement-huber-matched")

    louis_page.goto("/scorecard/")
    expect(louis_page.get_by_test_id("collected")).to_have_text("NT$77,800")
    expect(louis_page.get_by_test_id("decision-outdated")).to_be_visible()


def test_louis_accepts_a_short_settlement_on_the_order_page(page_for, louis, wade, shot):
    from tests.test_settlement import _send

    _book(louis)
    data_request = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
    _send(data_request, wade, "ecpay.csv", ECPAY_FIRST)
    page = page_for(louis)
    page.goto("/orders/B/")
    expect(page.get_by_test_id("order-settlement-state")).to_have_text("撥款金額不符")
    form = page.get_by_test_id("accept-form")
    expect(form).to_be_visible()
    shot(page, "settlement-accept-form")
    page.get_by_test_id("accept-submit").click()
    # The note is required: the browser keeps the form until it is written.
    expect(page.get_by_test_id("order-settlement-accepted")).to_have_count(0)
    page.get_by_test_id("accept-note").fill("綠界少撥 NT$2,000，客服確認是折價券")
    page.get_by_test_id("accept-submit").click()
    expect(page.get_by_test_id("order-settlement-state")).to_have_text("已撥款")
    expect(page.get_by_test_id("order-settlement-difference-accepted")).to_be_visible()
    expect(page.get_by_test_id("order-settlement-reason")).to_contain_text("NT$26,000")
    expect(page.get_by_test_id("order-settlement-accepted")).to_contain_text("折價券")
    shot(page, "settlement-accepted-1280")
    phone = page_for(louis, width=390, height=844)
    phone.goto("/orders/B/")
    expect(phone.get_by_test_id("unaccept-form")).to_be_visible()
    phone.get_by_test_id("order-settlement").screenshot(
        path=str(ARTIFACTS / "settlement-accepted-390.png")
    )
    phone.get_by_test_id("unaccept-submit").click()
    expect(phone.get_by_test_id("order-settlement-state")).to_have_text("撥款金額不符")
    expect(phone.get_by_test_id("accept-form")).to_be_visible()
