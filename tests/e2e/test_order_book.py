"""The two-file story: Wade's first export is imported, Huber tags
orders, Louis approves; then a corrected export arrives. Huber's tags
survive, every order counts once, the scorecard lists both imports with
what each changed and tells Louis his approval predates the change."""

import re

import pytest
from playwright.sync_api import expect

from reconciliation.models import Order, OrderTag, Upload
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from tests.imp_frames import csv_bytes, order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = [
    order("KB-1", "paid", 28000, customer="c1"),
    order("KB-2", "paid", 28000, customer="c2"),
    order("KB-3", "pending", 28000, customer="c3", ref="PEND-3"),
    order("KB-4", "paid", 990, customer="c4", program="BOOK-990"),
]
CORRECTED = [
    FIRST[0],
    {**FIRST[1], "payment_status": "refunded", "payment_ref": "RF-2"},
    {**FIRST[2], "payment_status": "paid", "payment_ref": "PAY-3"},
    FIRST[3],
    order("KB-5", "paid", 28000, customer="c5"),
]


def _upload(page, data_request, path, shot_name, shot):
    """Wade uploads through his page; the worker's import runs (the task's
    own service, called here in place of a django-q2 worker)."""
    page.goto(f"/requests/{data_request.pk}/upload/")
    page.get_by_label("訂單付款檔（CSV 或 XLSX）").set_input_files(str(path))
    page.get_by_test_id("upload-submit").click()
    expect(page.get_by_test_id("result-status")).to_have_text("已通過")
    upload = Upload.objects.filter(data_request=data_request).order_by("-created_at").first()
    import_upload(upload_id=upload.pk)
    # The page asks for the import by itself and shows the book's counts.
    expect(page.get_by_test_id("import-result")).to_contain_text("新訂單")
    shot(page, shot_name)
    return upload


def test_two_files_keep_tags_count_orders_once_and_tell_louis(
    page_for, louis, wade, huber, shot, tmp_path
):
    data_request = create_data_request(requested_by=louis)
    wade_page = page_for(wade)
    first = tmp_path / "orders.csv"
    first.write_bytes(csv_bytes(*FIRST))
    _upload(wade_page, data_request, first, "book-wade-first", shot)
    expect(wade_page.locator("[data-book=new_orders]")).to_have_text("4")

    # Huber tags KB-1 and KB-2 as paid from the queue.
    huber_page = page_for(huber)
    huber_page.goto("/evidence/?program_id=*&tag=all")
    for order_id, ref in (("KB-1", "BANK-1"), ("KB-2", "BANK-2")):
        row = huber_page.locator(f"tr[data-order-id='{order_id}']")
        row.locator("[data-inline-tag] select").select_option("paid")
        row.locator("[data-inline-tag] input[type=text]").fill(ref)
        if order_id == "KB-1":
            row.get_by_role("button", name="標記").click()
        else:  # Enter in the reference tags its own row
            row.locator("[data-inline-tag] input[type=text]").press("Enter")
        expect(row.locator("[data-tag-cell]")).to_contain_text("已付款")

    # Louis approves, seeing what he approves.
    louis_page = page_for(louis)
    louis_page.goto("/scorecard/")
    expect(louis_page.get_by_test_id("approve-summary")).to_contain_text("NT$56,990")
    louis_page.get_by_test_id("confirm-approve").check()
    louis_page.get_by_test_id("approve").click()
    expect(louis_page.get_by_test_id("revenue-status")).to_have_text("已認列")

    # The corrected export, to the same (accepted) request.
    corrected = tmp_path / "orders-corrected.csv"
    corrected.write_bytes(csv_bytes(*CORRECTED))
    _upload(wade_page, data_request, corrected, "book-wade-corrected", shot)
    expect(wade_page.locator("[data-book=new_orders]")).to_have_text("1")
    expect(wade_page.locator("[data-book=changed_orders]")).to_have_text("2")
    expect(wade_page.locator("[data-book=unchanged_orders]")).to_have_text("2")

    # Every order once; Huber's tags kept, KB-2's marked for another look.
    assert Order.objects.count() == 5
    assert OrderTag.objects.count() == 2
    assert OrderTag.objects.get(order__order_id="KB-2").stale

    louis_page.goto("/scorecard/")
    expect(louis_page.get_by_test_id("book-import")).to_have_count(2)
    expect(louis_page.get_by_test_id("revenue-status")).to_have_text("已認列")
    expect(louis_page.get_by_test_id("decision-outdated")).to_be_visible()
    expect(louis_page.get_by_test_id("total-paid")).to_have_text("NT$84,990")
    expect(louis_page.get_by_test_id("approve")).to_contain_text("重新確認")
    shot(louis_page, "book-scorecard-changed")
    phone = page_for(louis, width=390, height=844)
    phone.goto("/scorecard/")
    expect(phone.get_by_test_id("decision-outdated")).to_be_visible()
    shot(phone, "book-scorecard-changed-phone")
    louis_page.goto("/inbox/")
    expect(louis_page.locator("body")).to_contain_text("認列後數字有變")

    huber_page.goto("/evidence/?program_id=*&tag=all")
    expect(huber_page.get_by_test_id("stale-tags")).to_be_visible()
    expect(huber_page.locator("tr[data-order-id='KB-2'] [data-stale-tag]")).to_be_visible()
    expect(huber_page.locator("tr[data-order-id='KB-1'] [data-tag-cell]")).to_contain_text("已付款")
    shot(huber_page, "book-evidence-stale")

    # The order page shows both versions and the tag on the older one.
    huber_page.locator("tr[data-order-id='KB-2'] a").first.click()
    expect(huber_page.get_by_test_id("order-version")).to_have_count(2)
    expect(huber_page.get_by_test_id("order-stale")).to_be_visible()
    expect(huber_page.get_by_test_id("order-evidence")).to_contain_text("較舊的版本")
    shot(huber_page, "book-order-page")
    phone = page_for(huber, width=390, height=844)
    phone.goto(re.sub(r"^https?://[^/]+", "", huber_page.url))
    shot(phone, "book-order-page-phone")
