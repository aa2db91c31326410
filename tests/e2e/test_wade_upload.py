"""Wade uploads a bad file, sees the row errors by Excel row and column,
downloads the error report, uploads the fixed file and sees it accepted —
through the progress-bar path (upload.js) and the plain form post."""

import io

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from reconciliation.models import DataRequest, Upload
from reconciliation.services.requests import create_data_request
from tests import upload_samples as samples

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def bad_xlsx() -> bytes:
    rows = samples.good_rows(6)
    rows[1]["amount"] = "二萬八"
    rows[3]["payment_status"] = "shipped"
    rows[4]["payment_ref"] = "4111 1111 1111 1111"
    columns = [c for c in samples.HEADERS if c != "source_event"]
    return samples.xlsx_bytes(
        rows,
        headers=[samples.ZH_HEADERS[samples.HEADERS.index(c)] for c in columns],
        columns=columns,
        title_rows=(("Kolable 訂單付款匯出",), ("期間 2026-05-12 ~ 2026-05-21",)),
    )


def test_wade_fixes_a_bad_file_and_it_is_accepted(page_for, wade, louis, shot, tmp_path):
    data_request = create_data_request(requested_by=louis)
    page = page_for(wade)
    page.goto(f"/requests/{data_request.pk}/")
    page.get_by_test_id("upload-link").click()
    expect(page.get_by_role("heading", name="上傳訂單付款檔")).to_be_visible()
    expect(page.get_by_test_id("template-xlsx")).to_have_attribute("href", "/template.xlsx")

    bad = tmp_path / "kolable-0512-0521.xlsx"
    bad.write_bytes(bad_xlsx())
    # A marker that survives only if the page is not reloaded: upload.js
    # sends the file with XMLHttpRequest and swaps the answer in place.
    page.evaluate("window.__stillHere = true")
    page.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(bad))
    page.get_by_test_id("upload-submit").click()

    result = page.get_by_test_id("upload-result")
    expect(result.get_by_test_id("result-status")).to_have_text("欄位不符")
    expect(result.get_by_test_id("missing-fields")).to_contain_text("source_event")
    errors = result.get_by_test_id("row-errors")
    # Two title rows and the header above the data: the first data row is 4.
    expect(errors.locator("tbody tr")).to_have_count(3)
    expect(errors.locator("tbody tr").nth(0)).to_contain_text("5")
    expect(errors.locator("tbody tr").nth(0)).to_contain_text("amount「二萬八」不是數字")
    expect(errors).to_contain_text("payment_status「shipped」")
    expect(errors).to_contain_text("4111 **** **** 1111")
    expect(errors).not_to_contain_text("4111 1111 1111 1111")
    expect(page.get_by_test_id("request-status")).to_have_text("欄位不符")
    assert "result=" in page.url  # the answer has its own address
    assert page.evaluate("window.__stillHere") is True
    shot(page, "upl-upload-failed")

    with page.expect_download() as download_info:
        result.get_by_test_id("report-xlsx").click()
    report = download_info.value
    assert report.suggested_filename == "kolable-0512-0521-errors.xlsx"
    sheet = load_workbook(io.BytesIO(open(report.path(), "rb").read())).active
    codes = [row[3] for row in sheet.iter_rows(values_only=True) if len(row) > 3]
    assert {"missing_column", "bad_amount", "unknown_payment_status", "card_number"} <= set(codes)

    good = tmp_path / "kolable-0512-0521-fixed.csv"
    good.write_bytes(samples.csv_bytes(samples.good_rows(6), encoding="utf-8", bom=True))
    page.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(good))
    page.get_by_test_id("upload-submit").click()
    expect(result.get_by_test_id("result-status")).to_have_text("已通過")
    expect(result.get_by_test_id("accepted-notice")).to_contain_text("6 列已收下")
    expect(page.get_by_test_id("request-status")).to_have_text("已驗收")
    expect(page.get_by_test_id("upload-history").locator("tbody tr")).to_have_count(2)
    # An accepted file keeps the form open for a corrected or top-up file.
    expect(page.get_by_test_id("correction-note")).to_be_visible()
    expect(page.get_by_test_id("upload-form")).to_be_visible()
    shot(page, "upl-upload-accepted")

    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    assert Upload.objects.count() == 2

    # Louis sees both results and the report on the request page.
    louis_page = page_for(louis)
    louis_page.goto(f"/requests/{data_request.pk}/")
    reports = louis_page.get_by_test_id("upload-reports")
    expect(reports.locator("li")).to_have_count(2)
    expect(reports).to_contain_text("缺少 source_event")
    expect(louis_page.get_by_test_id("upload-link")).to_have_count(0)
    shot(louis_page, "upl-request-detail")


def test_phone_width_and_no_javascript(page_for, browser, live_server, wade, louis, shot, tmp_path):
    data_request = create_data_request(requested_by=louis)
    bad = tmp_path / "orders.xlsx"
    bad.write_bytes(bad_xlsx())

    phone = page_for(wade, width=390, height=844)
    phone.goto(f"/requests/{data_request.pk}/upload/")
    shot(phone, "upl-upload-phone-empty")
    phone.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(bad))
    phone.get_by_test_id("upload-submit").click()
    expect(phone.get_by_test_id("row-errors")).to_contain_text("shipped")
    shot(phone, "upl-upload-phone-failed")

    # Without JavaScript the form is a plain post and the result page loads.
    from django.test import Client

    client = Client()
    client.force_login(wade)
    context = browser.new_context(
        java_script_enabled=False, base_url=live_server.url, locale="zh-TW"
    )
    try:
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.goto(f"/requests/{data_request.pk}/upload/")
        good = tmp_path / "good.csv"
        good.write_bytes(samples.csv_bytes(samples.good_rows(2)))
        page.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(good))
        page.get_by_test_id("upload-submit").click()
        expect(page.get_by_test_id("accepted-notice")).to_be_visible()
        assert "result=" in page.url
    finally:
        context.close()


def test_too_large_is_refused_before_sending(page_for, wade, louis, settings, tmp_path):
    settings.MAX_UPLOAD_MB = 1
    data_request = create_data_request(requested_by=louis)
    big = tmp_path / "big.csv"
    big.write_bytes(b"order_id\n" + b"1\n" * 700_000)
    page = page_for(wade)
    page.goto(f"/requests/{data_request.pk}/upload/")
    page.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(big))
    page.get_by_test_id("upload-submit").click()
    expect(page.locator("[data-upload-progress-label]")).to_contain_text("檔案超過上限 1 MB")
    assert Upload.objects.count() == 0
