"""The scorecard in Chromium: before any data it says unverified and shows
no figure; after an import the numbers and the daily chart; Louis approves.
Screenshots at 1280 px and 390 px."""

import re

import pytest
from playwright.sync_api import expect

from reconciliation.models import Order
from reconciliation.services.imports import import_frame
from tests.imp_frames import accepted_upload, frame, new_request, order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MONEY = re.compile(r"NT\$\s*[\d,]+")


def demo_orders():
    orders = []
    for day in range(12, 22):
        for n in range(3):
            i = day * 10 + n
            orders.append(
                order(
                    f"KO-{i}",
                    "paid" if n < 2 else ("pending" if day % 2 else "refunded"),
                    28000 if n == 0 else 1990,
                    when=f"2026-05-{day} 2{n}:00",
                    customer=f"c{i}",
                    program="TRAIN-28000" if n == 0 else "BOOK-1",
                    code="LIVE50" if n == 1 else "",
                    source=f"LIVE-05{day}",
                    ref="RF-X" if i == 171 else None,
                )
            )
    # The same order again with another amount: a data error for Wade.
    orders.append(order("KO-120", "paid", 26000, when="2026-05-12 20:00", customer="c120"))
    return orders


def test_scorecard_before_and_after_an_import_and_louis_approves(page_for, louis, wade, shot):
    data_request = new_request(louis)
    page = page_for(louis)
    page.goto("/scorecard/")
    expect(page.get_by_test_id("revenue-status")).to_have_text("未驗證")
    expect(page.get_by_test_id("unverified")).to_contain_text("營收未驗證")
    expect(page.get_by_test_id("card-data")).to_contain_text("未回收")
    expect(page.get_by_test_id("step-D1")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("rule-current")).to_contain_text("無 CSV/XLSX")
    assert not MONEY.search(page.content())
    expect(page.get_by_test_id("daily-chart")).to_have_count(0)
    shot(page, "scorecard-unverified")
    phone = page_for(louis, width=390, height=844)
    phone.goto("/scorecard/")
    expect(phone.get_by_test_id("revenue-status")).to_have_text("未驗證")
    shot(phone, "scorecard-unverified-phone")

    imported = import_frame(upload=accepted_upload(data_request, wade), frame=frame(*demo_orders()))
    assert imported.status == "partial"
    page.goto("/scorecard/")
    expect(page.get_by_test_id("revenue-status")).to_have_text("已驗證，待認列")
    expect(page.get_by_test_id("book-import")).to_have_count(1)
    expect(page.get_by_test_id("import-new")).to_have_text(str(Order.objects.count()))
    expect(page.get_by_test_id("total-paid")).to_have_text(re.compile(r"NT\$\d"))
    expect(page.get_by_test_id("daily-chart")).to_be_visible()
    expect(page.locator("[data-testid=daily-chart] g[data-day]")).to_have_count(10)
    expect(page.get_by_test_id("held-back-note")).to_be_visible()
    # Orders, not rows: the repeated order's duplicate row is not a second exception.
    expect(page.get_by_test_id("exception-row")).to_have_count(2)
    expect(page.get_by_test_id("rule-current")).to_contain_text("有 paid/refunded/pending")
    shot(page, "scorecard-verified")
    phone.goto("/scorecard/")
    expect(phone.get_by_test_id("daily-chart")).to_be_visible()
    shot(phone, "scorecard-verified-phone")

    page.get_by_label("備註").fill("先認列無例外的訂單，KO-171 等 Huber 佐證")
    expect(page.get_by_test_id("approve-summary")).to_contain_text("筆訂單")
    page.get_by_test_id("confirm-approve").check()
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("revenue-status")).to_have_text("已認列")
    expect(page.get_by_test_id("decision-current")).to_contain_text("認列 NT$")
    expect(page.get_by_test_id("card-signal")).to_contain_text("已認列")
    expect(page.get_by_role("status").first).to_contain_text("保留 2 筆")
    shot(page, "scorecard-recognised")


def test_wade_sees_the_numbers_but_no_decision_form(page_for, louis, wade):
    data_request = new_request(louis)
    import_frame(upload=accepted_upload(data_request, wade), frame=frame(*demo_orders()))
    page = page_for(wade, width=390, height=844)
    page.goto("/")
    page.get_by_test_id("nav-scorecard").click()
    expect(page.get_by_test_id("revenue-status")).to_have_text("已驗證，待認列")
    expect(page.get_by_test_id("decision-form")).to_have_count(0)
    expect(page.get_by_test_id("decision")).to_contain_text("只有 Louis 能認列或暫停營收")
