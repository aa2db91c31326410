"""Louis signs in, creates the P0 request, sees it on the board with its
countdown. Screenshots at laptop and phone width."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_louis_creates_request_and_sees_countdown(page_for, louis, shot):
    page = page_for(None)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("帳號").fill("louis")
    page.get_by_label("密碼").fill(DEMO_PASSWORD)
    shot(page, "login")
    page.get_by_role("button", name="登入").click()

    expect(page.get_by_test_id("board-empty")).to_contain_text("營收維持未驗證")
    shot(page, "board-empty")
    page.get_by_test_id("board-empty").get_by_role("link", name="建立 P0 資料請求").click()
    expect(page.get_by_label("資料負責人")).to_have_value("wade")
    page.get_by_test_id("create-request").click()

    expect(page.get_by_test_id("request-status")).to_have_text("待交檔")
    expect(page.get_by_test_id("timeline")).to_contain_text("建立資料請求")
    expect(page.get_by_test_id("people-sync")).to_contain_text("Wade：請在 24 小時內")
    shot(page, "request-detail")

    page.get_by_role("link", name="請求看板").click()
    countdown = page.get_by_test_id("countdown").first
    expect(countdown).to_have_text(re.compile(r"剩 (23 小時 5\d|1 天 0) 分|剩 23 小時"))
    expect(page.get_by_test_id("overdue")).to_have_count(0)
    shot(page, "board-laptop")

    phone = page_for(louis, width=390, height=844)
    phone.goto("/")
    expect(phone.get_by_test_id("countdown").first).to_contain_text("剩")
    shot(phone, "board-phone")
