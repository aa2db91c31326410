"""Louis's side of the escalation in the browser: the blocker card in his
inbox (unread, then read), and the PLS page where he records the target
repository and sees dispatches and claims. Laptop and phone widths."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reconciliation.models import DataRequest
from reconciliation.services.claims import record_claim, record_previous_pack
from reconciliation.services.dispatch import dispatch_next_job
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.requests import create_data_request
from tests.http_stub import Answer, StubServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(settings):
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["github.com", "127.0.0.1"]
    with StubServer() as server:
        server.routes["/kolable/platform"] = Answer(200)
        server.routes["/kolable/platform/pull/3"] = Answer(404)
        server.routes["/deploy"] = Answer(200)
        yield server


@pytest.fixture
def escalated(louis, pls, project):
    request = create_data_request(requested_by=pls)
    DataRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(hours=3))
    escalate_overdue_requests()
    return request


def test_louis_reads_the_blocker_card(page_for, shot, louis, escalated):
    page = page_for(louis)
    page.goto("/inbox/")
    expect(page.get_by_test_id("unread-count")).to_have_text("2")
    card = page.locator("li.kind-blocker_card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("[阻塞] 「2026-05-12 至 2026-05-21 訂單付款匯出檔」逾期未交")
    expect(card).to_contain_text("誰負責：Wade")
    expect(card).to_contain_text("暫停 Kolable 營收認列，或延長交檔期限")
    shot(page, "esc-inbox-blocker-laptop")

    phone = page_for(louis, width=390, height=844)
    phone.goto("/inbox/")
    expect(phone.locator("li.kind-blocker_card")).to_contain_text("已逾期 3 小時。")
    shot(phone, "esc-inbox-blocker-phone")

    card.get_by_role("button", name="標為已讀").click()
    expect(page.get_by_test_id("unread-count")).to_have_text("1")
    expect(page.locator("li.kind-blocker_card.unread")).to_have_count(0)


def test_louis_records_the_repo_and_sees_dispatches_and_claims(
    page_for, shot, louis, pls, project, escalated, site
):
    record_previous_pack(
        project=project,
        ref="https://gist.github.com/esz135888/f780d15b8d22a76cb950e4da189075ee",
        recorded_by=louis,
    )
    dispatch_next_job(project=project, requested_by=pls)
    record_claim(project=project, kind="deployment", url=site.url("/deploy"), claimed_by=pls)
    record_claim(
        project=project, kind="github_pr", url=site.url("/kolable/platform/pull/3"), claimed_by=pls
    )

    page = page_for(louis)
    page.goto("/")
    page.get_by_test_id("nav-pls").click()
    expect(page.get_by_test_id("next-job-type")).to_have_text("people_sync")
    expect(page.get_by_test_id("previous-pack")).to_contain_text("gist.github.com")
    expect(page.get_by_test_id("dispatches")).to_contain_text("blocker card")
    claims = page.get_by_test_id("claims-log")
    expect(claims).to_contain_text("已驗證")
    expect(claims).to_contain_text("不算完成")
    expect(claims).to_contain_text("HTTP 404")
    shot(page, "esc-pls-laptop")

    form = page.get_by_test_id("context-form")
    form.get_by_label("目標 repo / API 網址").fill(site.url("/kolable/platform"))
    form.get_by_role("button", name="登記").click()
    expect(page.get_by_role("status").first).to_contain_text("已驗證並登記目標 repo/API")
    expect(page.get_by_test_id("next-job-type")).to_have_text("repo_change")
    expect(page.get_by_test_id("target-repo")).to_contain_text("/kolable/platform")
    shot(page, "esc-pls-repo-laptop")

    phone = page_for(louis, width=390, height=844)
    phone.goto("/pls/")
    expect(phone.get_by_test_id("next-job-type")).to_have_text("repo_change")
    shot(phone, "esc-pls-phone")
