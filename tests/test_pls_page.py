"""The PLS page (/pls/) and the inbox after an escalation."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from reconciliation.models import ArtifactClaim, DataRequest, Notification
from reconciliation.services.dispatch import dispatch_next_job
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.requests import create_data_request
from tests.http_stub import Answer, StubServer


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def repo_site(settings):
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["github.com", "127.0.0.1"]
    with StubServer() as server:
        server.routes["/kolable/platform"] = Answer(200)
        server.routes["/gone"] = Answer(404)
        yield server


def test_louis_sees_the_next_job_the_log_and_the_forms(louis, pls, project):
    dispatch_next_job(project=project, requested_by=pls)
    response = client_for(louis).get("/pls/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="nav-pls"' in html
    assert 'data-testid="context-form"' in html and 'data-testid="claim-form"' in html
    assert 'data-testid="dispatches"' in html
    assert "project_runner" in html  # nothing recorded yet: the one case it is allowed
    assert "沒有任何 PR、部署或 repo 連結" in html
    assert "js/pls.js" in html


def test_wade_may_look_but_not_record(wade):
    html = client_for(wade).get("/pls/").content.decode()
    assert 'data-testid="context-form"' not in html and 'data-testid="claim-form"' not in html
    assert 'data-testid="nav-pls"' not in html
    assert client_for(wade).post("/pls/context/", {"previous_pack_ref": "x"}).status_code == 403
    assert (
        client_for(wade).post("/pls/claims/", {"kind": "deployment", "url": "x"}).status_code == 403
    )


def test_outsider_is_refused(outsider):
    assert client_for(outsider).get("/pls/").status_code == 403


def test_louis_records_the_pack_and_a_verified_repo(louis, project, repo_site):
    client = client_for(louis)
    response = client.post(
        "/pls/context/",
        {
            "previous_pack_ref": "對帳工具箱 v1",
            "target_repo_url": repo_site.url("/kolable/platform"),
        },
        follow=True,
    )
    html = response.content.decode()
    assert "已驗證並登記目標 repo/API" in html and "已登記上一輪成果" in html
    project.refresh_from_db()
    assert project.previous_pack_ref == "對帳工具箱 v1"
    assert 'data-testid="target-repo"' in html
    assert "repo_change" in html


def test_refused_claim_is_shown_as_not_done(louis, repo_site):
    response = client_for(louis).post(
        "/pls/claims/", {"kind": "deployment", "url": repo_site.url("/gone")}, follow=True
    )
    html = response.content.decode()
    assert "未通過驗證，已記為拒絕、不算完成" in html
    assert "不算完成" in html and "HTTP 404" in html
    claim = ArtifactClaim.objects.get()
    assert claim.status == ArtifactClaim.Status.REFUSED
    # A refused URL is not a link on the page.
    assert f'href="{repo_site.url("/gone")}"' not in html


def test_pls_user_may_record_claims_but_not_the_context(pls, repo_site):
    client = client_for(pls)
    assert client.post("/pls/context/", {"previous_pack_ref": "x"}).status_code == 403
    response = client.post(
        "/pls/claims/", {"kind": "deployment", "url": repo_site.url("/kolable/platform")}
    )
    assert response.status_code == 302
    assert ArtifactClaim.objects.get().status == ArtifactClaim.Status.VERIFIED


def test_inbox_shows_the_blocker_card_unread_and_marks_it_read(louis):
    request = create_data_request(requested_by=louis)
    DataRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(hours=1))
    escalate_overdue_requests()
    client = client_for(louis)
    html = client.get("/inbox/").content.decode()
    assert "[阻塞] 「2026-05-12 至 2026-05-21 訂單付款匯出檔」逾期未交" in html
    assert "kind-blocker_card" in html and "unread" in html
    unread = Notification.objects.filter(
        recipient__user=louis, channel=Notification.Channel.INBOX, read_at__isnull=True
    )
    assert unread.count() == 2  # the request summary and the blocker card
    assert f'data-testid="unread-count">{unread.count()}<' in html
    card = unread.get(kind=Notification.Kind.BLOCKER_CARD)
    client.post(f"/inbox/{card.pk}/read/")
    card.refresh_from_db()
    assert card.read_at is not None
    html = client.get("/inbox/").content.decode()
    assert 'data-testid="unread-count">1<' in html
