"""Louis switches the UI to English and back with the header button; the
board and the scorecard follow. Screenshots at laptop and phone width."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_louis_switches_to_english_and_back(page_for, louis, shot):
    page = page_for(louis)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(page.get_by_role("heading", level=2).first).to_have_text("資料請求看板")

    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=2).first).to_have_text("Data request board")
    expect(page.get_by_test_id("board-empty")).to_contain_text("revenue stays unverified")
    expect(page.get_by_role("link", name="Request board")).to_be_visible()
    expect(page.get_by_test_id("lang-switch")).to_have_text("繁體中文")
    shot(page, "i18n-board-en")

    page.get_by_role("link", name="Scorecard").click()
    expect(page).to_have_url(f"{page.url.split('/scorecard')[0]}/scorecard/")
    expect(page.locator("main")).to_contain_text("Revenue unverified.")
    expect(page.locator("main")).not_to_contain_text("營收未驗證")
    shot(page, "i18n-scorecard-en")

    # The choice is a cookie, so a phone-width page in the same browser
    # context keeps English.
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto("/scorecard/")
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    shot(phone, "i18n-scorecard-en-phone")
    phone.goto("/")
    expect(phone.get_by_role("heading", level=2).first).to_have_text("Data request board")
    shot(phone, "i18n-board-en-phone")
    phone.close()

    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(page).to_have_url(f"{page.url.split('/scorecard')[0]}/scorecard/")
    expect(page.locator("main")).to_contain_text("營收未驗證")
    expect(page.get_by_test_id("lang-switch")).to_have_text("English")
