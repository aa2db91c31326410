"""Huber in Chromium: the queue of the NT$28,000 training orders, untagged
first; one order tagged inline without a reload; a filtered selection tagged
at once; a tag file rejected, then applied for its valid rows; the counts and
the scorecard's verified revenue follow. Screenshots at 1280 and 390 px."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from reconciliation.management.commands._orders_data import (
    TRAINING_PROGRAM,
    frame_from_rows,
    import_from_frame,
)
from reconciliation.models import AuditEvent, BookSummary, OrderTag
from reconciliation.templatetags.scorecard_tags import ntd

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 5, 12, 12, 0, tzinfo=UTC)


def training_orders():
    """12 paid and 2 pending training orders, and 3 of another programme."""
    rows = []
    for i in range(1, 15):
        rows.append(
            {
                "order_id": f"KOL-0512-{i:03d}",
                "payment_status": "paid" if i <= 12 else "pending",
                "payment_ref": f"PAY-{i:03d}" if i <= 12 else f"PEND-{i:03d}",
                "created_at": T0 + timedelta(hours=5 * i),
                "source_event": f"LIVE-05{12 + i % 5}",
                "discount_code": "LIVE512" if i % 3 == 0 else "",
            }
        )
    for i in range(1, 4):
        rows.append(
            {"order_id": f"BOOK-{i}", "program_id": "BOOK-980", "amount": 980, "created_at": T0}
        )
    return rows


def paid_total(reconciliation_import) -> str:
    """The order book's verified paid revenue (what the scorecard shows)."""
    book = BookSummary.objects.get(pk=reconciliation_import.data_request.project_id)
    return ntd(book.totals["paid_amount"])


def test_huber_tags_inline_by_selection_and_by_file_and_revenue_follows(
    page_for, huber, louis, project, shot, tmp_path
):
    imported = import_from_frame(frame_from_rows(training_orders()), project=project)
    assert paid_total(imported) == ntd(12 * 28000 + 3 * 980)

    page = page_for(huber)
    page.goto("/scorecard/")
    expect(page.get_by_test_id("total-paid")).to_have_text(paid_total(imported))

    page.get_by_test_id("nav-evidence").click()
    expect(page.get_by_test_id("progress-text")).to_contain_text("已標記 0 / 14 筆（0%）")
    expect(page.locator('[data-count="untagged"]')).to_have_text("14")
    expect(page.get_by_test_id("order-row")).to_have_count(14)
    expect(page.get_by_test_id("queue")).not_to_contain_text("BOOK-1")
    shot(page, "evidence-queue")

    # One order inline: refunded, without a page load.
    page.evaluate("window.__samePage = true")
    row = page.locator('tr[data-order-id="KOL-0512-001"]')
    row.locator("[data-inline-tag] select").select_option("refunded")
    row.locator("[data-inline-tag] input[type=text]").fill("RF-0001")
    row.get_by_role("button", name="標記").click()
    expect(row.locator("[data-tag-cell]")).to_contain_text("已退款")
    expect(row.locator(".ev-inline-msg")).to_have_text("已標記")
    expect(page.locator('[data-count="refunded"]')).to_have_text("1")
    expect(page.locator('[data-count="untagged"]')).to_have_text("13")
    expect(page.get_by_test_id("progress-text")).to_contain_text("已標記 1 / 14 筆（7%）")
    assert page.evaluate("window.__samePage") is True
    assert OrderTag.objects.get(order__order_id="KOL-0512-001").evidence.refund_ref == "RF-0001"

    # Filter the untagged paid orders, tick them all, tag them paid.
    page.get_by_label("付款狀態").select_option("paid")
    page.get_by_test_id("apply-filter").click()
    expect(page.get_by_test_id("matching")).to_contain_text("符合篩選：11 筆")
    page.get_by_test_id("select-all").check()
    expect(page.get_by_test_id("selected-count")).to_have_text("11")
    page.get_by_test_id("bulk-tag").select_option("paid")
    page.get_by_test_id("bulk-payment-ref").fill("BANK-STATEMENT-0521")
    page.get_by_test_id("tag-selected").click()
    expect(page.locator(".msg.success")).to_contain_text("已將 11 筆訂單標為「已付款」")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.locator('[data-count="paid"]')).to_have_text("11")
    expect(page.get_by_test_id("progress-text")).to_contain_text("已標記 12 / 14 筆（85%）")
    bulk = AuditEvent.objects.filter(verb=AuditEvent.Verb.EVIDENCE_TAGGED).order_by("id").last()
    assert bulk.data["count"] == 11

    # A tag file: one unknown order refuses it; then its valid rows only.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["order_id", "tag", "payment_ref", "refund_ref", "evidence_ref", "note"])
    writer.writerow(["KOL-0512-013", "unresolved", "", "", "", "待付款未入帳"])
    writer.writerow(["KOL-0512-014", "unresolved", "", "", "", "待付款未入帳"])
    writer.writerow(["KOL-0512-002", "unresolved", "", "", "", "金流查無這筆"])
    writer.writerow(["KOL-9999-999", "paid", "PAY-X", "", "", ""])
    tag_file = tmp_path / "huber-tags.csv"
    tag_file.write_text(buffer.getvalue(), encoding="utf-8")

    page.get_by_test_id("import-link").click()
    expect(page.get_by_test_id("template-xlsx")).to_be_visible()
    page.get_by_test_id("tag-file").set_input_files(str(tag_file))
    page.get_by_test_id("upload-tags").click()
    expect(page.get_by_test_id("report-status")).to_have_text("未套用")
    expect(page.get_by_test_id("unknown-ids")).to_contain_text("KOL-9999-999")
    expect(page.get_by_test_id("row-errors")).to_contain_text("5")  # the row as Excel shows it
    assert not OrderTag.objects.filter(tag="unresolved").exists()
    shot(page, "evidence-import-rejected")
    page.get_by_test_id("tag-file").set_input_files(str(tag_file))
    page.get_by_test_id("apply-valid-only").check()
    page.get_by_test_id("upload-tags").click()
    expect(page.get_by_test_id("report-status")).to_have_text("已套用有效列")
    expect(page.get_by_test_id("report-applied")).to_have_text("3")
    shot(page, "evidence-import-applied")

    # Counts: everything tagged; KOL-0512-002 went from paid to unresolved.
    page.goto("/evidence/?tag=all")
    expect(page.get_by_test_id("progress-text")).to_contain_text("已標記 14 / 14 筆（100%）")
    expect(page.get_by_test_id("progress-text")).to_contain_text("全部已標記")
    expect(page.locator('[data-count="unresolved"]')).to_have_text("3")
    expect(page.locator('[data-count="paid"]')).to_have_text("10")
    shot(page, "evidence-all-tagged")

    # The scorecard follows at once: one refund and one held order fewer.
    expected = ntd(10 * 28000 + 3 * 980)
    assert paid_total(imported) == expected
    page.goto("/scorecard/")
    expect(page.get_by_test_id("total-paid")).to_have_text(expected)
    expect(page.get_by_test_id("import-status")).to_have_text("部分保留")

    phone = page_for(huber, width=390, height=844)
    phone.goto(f"/evidence/?program_id={TRAINING_PROGRAM}&tag=all")
    expect(phone.get_by_test_id("tag-counts")).to_be_visible()
    shot(phone, "evidence-queue-phone")
    phone.goto("/evidence/import/")
    expect(phone.get_by_test_id("tag-file-form")).to_be_visible()
    shot(phone, "evidence-import-phone")

    # Louis reads the same queue: tags and references, no tagging controls.
    reader = page_for(louis, width=390, height=844)
    reader.goto("/evidence/?tag=all")
    expect(reader.locator('tr[data-order-id="KOL-0512-002"]')).to_contain_text("金流查無這筆")
    expect(reader.get_by_test_id("bulk-form")).to_have_count(0)
    expect(reader.locator("[data-inline-tag]")).to_have_count(0)
    shot(reader, "evidence-louis-phone")
