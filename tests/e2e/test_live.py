"""The live dashboard in Chromium at 1280 and 390 px: Louis sees every
stream's figures, opens a stream, records a failed compliance check and
sees its revenue flagged on /live/ and on the scorecard."""

import pytest
from playwright.sync_api import expect

from reconciliation.services.imports import import_frame
from tests.imp_frames import accepted_upload, frame, new_request
from tests.services.test_live import BOOK

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_louis_reads_the_streams_and_flags_one(page_for, louis, wade, shot, width):
    import_frame(upload=accepted_upload(new_request(louis), wade), frame=frame(*BOOK))
    page = page_for(louis, width=width, height=900 if width > 600 else 844)
    page.goto("/live/")
    expect(page.get_by_test_id("live-totals")).to_contain_text("NT$195,980")
    row = page.locator('[data-testid="live-row"][data-stream="LIVE-A"]')
    expect(row.get_by_test_id("live-gmv")).to_have_text("NT$84,990")
    expect(row).to_contain_text("25.0%")  # 1 refund of 4 orders
    expect(row).to_contain_text("NT$21,248")  # AOV 84,990 / 4
    expect(page.get_by_test_id("live-settled-missing")).to_be_visible()
    expect(page.get_by_test_id("live-viewers-missing")).to_be_visible()
    shot(page, f"live-dashboard-{width}")

    page.locator('[data-testid="live-row"][data-stream="LIVE-B"]').get_by_test_id(
        "live-stream-link"
    ).click()
    expect(page.get_by_test_id("hour-chart")).to_be_visible()
    expect(page.locator('[data-testid="hour-chart"] g[data-hour="20"]')).to_have_attribute(
        "data-orders", "2"
    )
    expect(page.get_by_test_id("compare-gmv")).to_contain_text("NT$82,000")
    form = page.get_by_test_id("compliance-form")
    form.get_by_label("宣稱內容已審閱").check()
    form.locator("select[name=status]").select_option("fail")
    form.locator("input[name=evidence_ref]").fill("VOD-0515 00:42:10")
    form.get_by_test_id("compliance-submit").click()
    expect(page.get_by_test_id("stream-compliance-status")).to_have_text("未通過")
    expect(page.get_by_test_id("compliance-entry")).to_have_count(1)
    expect(page.get_by_test_id("stream-flag")).to_be_visible()
    shot(page, f"live-stream-{width}")

    page.goto("/live/")
    b = page.locator('[data-testid="live-row"][data-stream="LIVE-B"]')
    expect(b.get_by_test_id("live-flag")).to_be_visible()
    expect(b.get_by_test_id("live-compliance")).to_have_text("未通過")
    page.goto("/scorecard/")
    expect(page.get_by_test_id("sources-flag-note")).to_be_visible()
