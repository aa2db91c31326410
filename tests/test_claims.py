"""Seed test E through the API: a PR or deployment is recorded as verified
only after a GET answered 200 from an allowed, public host; everything else is
refused with the reason, kept, and never shown as done."""

import pytest

from reconciliation.models import ArtifactClaim, AuditEvent, Project
from reconciliation.selectors.claims import verified_claims
from reconciliation.services.claims import address_refusal, host_allowed
from tests.http_stub import Answer, StubServer

URL = "/api/kolable/artifact-claims"
CONTEXT_URL = "/api/kolable/project-context"


@pytest.fixture
def site(settings):
    """A local 'deployment' on 127.0.0.1. The test opts in to private
    addresses and lists 127.0.0.1 as allowed, as a deployment would list its
    own hosts; the defaults refuse both."""
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["github.com", "127.0.0.1"]
    settings.CLAIM_TIMEOUT_SECONDS = 0.5
    with StubServer() as server:
        server.routes.update(
            {
                "/ok": Answer(200, b"<html>deployed</html>"),
                "/acme/kolable/pull/7": Answer(200, b"<html>PR #7</html>"),
                "/acme/kolable": Answer(200, b"<html>repo</html>"),
                "/gone": Answer(404),
                "/moved": Answer(302, headers={"Location": "/ok"}),
                "/away": Answer(302, headers={"Location": server.url("/ok", host="localhost")}),
                "/loop": Answer(302, headers={"Location": "/loop"}),
                "/slow": Answer(200, delay=2.0),
            }
        )
        yield server


def claim(api, url, kind="deployment"):
    return api.post(URL, {"kind": kind, "url": url})


def test_200_is_verified(pls_api, site):
    response = claim(pls_api, site.url("/ok"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "verified" and body["verified"] is True
    assert body["http_status"] == 200 and body["kind"] == "deployment"
    assert body["checked_at"].endswith("+08:00")
    assert body["claimed_by"] == "pls"
    assert [h.method for h in site.hits("/ok")] == ["GET"]
    stored = ArtifactClaim.objects.get(pk=body["id"])
    assert stored.status == ArtifactClaim.Status.VERIFIED
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.CLAIM_VERIFIED).count() == 1


def test_github_pr_verified_by_its_pull_url(api_as, louis, site):
    response = claim(api_as(louis), site.url("/acme/kolable/pull/7"), kind="github_pr")
    assert response.status_code == 201, response.content
    assert response.json()["claimed_by"] == "louis"


def test_same_host_redirect_is_followed(pls_api, site):
    response = claim(pls_api, site.url("/moved"))
    assert response.status_code == 201
    assert len(site.hits("/ok")) == 1


def refused(response, code):
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"] == "claim_refused"
    detail = body["detail"]
    assert detail["reason_code"] == code, detail
    assert detail["claim"]["status"] == "refused" and detail["claim"]["verified"] is False
    stored = ArtifactClaim.objects.get(pk=detail["claim"]["id"])
    assert stored.status == ArtifactClaim.Status.REFUSED
    assert stored.reason == detail["reason"] and stored.reason
    return detail


def test_404_is_refused_and_kept(pls_api, site):
    detail = refused(claim(pls_api, site.url("/gone")), "http_status")
    assert detail["claim"]["http_status"] == 404
    assert "404" in detail["reason"]
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.CLAIM_REFUSED).count() == 1


def test_redirect_to_another_host_is_not_followed(pls_api, site):
    detail = refused(claim(pls_api, site.url("/away")), "redirect_other_host")
    assert "localhost" in detail["reason"]
    assert site.hits("/ok") == []  # never fetched from the other host


def test_redirect_loop_stops(pls_api, site):
    refused(claim(pls_api, site.url("/loop")), "too_many_redirects")
    assert len(site.hits("/loop")) == 4  # the first GET and three redirects


def test_timeout_is_refused(pls_api, site):
    detail = refused(claim(pls_api, site.url("/slow")), "timeout")
    assert "0.5" in detail["reason"]


def test_private_address_refused_when_not_allowed(pls_api, site, settings):
    settings.CLAIM_ALLOW_PRIVATE = False
    detail = refused(claim(pls_api, site.url("/ok")), "private_address")
    assert "127.0.0.1" in detail["reason"] and "迴環" in detail["reason"]
    assert site.received == []  # no connection was made at all


def test_host_not_on_the_allow_list(pls_api, site):
    detail = refused(claim(pls_api, "https://kolable-deploy.example.net/"), "host_not_allowed")
    assert "kolable-deploy.example.net" in detail["reason"]
    # The default list refuses the local site too.
    refused(claim(pls_api, site.url("/ok", host="localhost")), "host_not_allowed")


def test_pr_claim_must_point_at_a_pull_request(pls_api, site):
    refused(claim(pls_api, site.url("/acme/kolable"), kind="github_pr"), "not_a_pull_request")
    assert site.received == []


def test_urls_with_credentials_or_other_schemes_are_refused(pls_api, site):
    refused(claim(pls_api, f"http://user:secret@127.0.0.1:{site.port}/ok"), "credentials_in_url")
    refused(claim(pls_api, "file:///etc/passwd"), "bad_url")
    refused(claim(pls_api, "not a url"), "bad_url")
    assert site.received == []


def test_bad_input_is_422_not_500(pls_api):
    assert pls_api.post(URL, {"kind": "deployment"}).status_code == 422
    assert pls_api.post(URL, {"kind": "essay", "url": "https://github.com/x"}).status_code == 422
    assert pls_api.post(URL, {"kind": "deployment", "url": ""}).status_code == 422
    assert pls_api.post(URL, {"kind": "deployment", "url": "x" * 1001}).status_code == 422
    assert not ArtifactClaim.objects.exists()


def test_roles(api_as, wade, huber, outsider, site):
    for user in (wade, huber, outsider):
        response = claim(api_as(user), site.url("/ok"))
        assert response.status_code == 403, user
    assert claim(api_as(None), site.url("/ok")).status_code == 401
    assert site.received == []


def test_list_shows_both_and_only_verified_counts_as_done(pls_api, api_as, wade, site, project):
    claim(pls_api, site.url("/ok"))
    claim(pls_api, site.url("/gone"))
    listed = api_as(wade).get(URL)
    assert listed.status_code == 200
    assert sorted((c["status"], c["verified"]) for c in listed.json()) == [
        ("refused", False),
        ("verified", True),
    ]
    only_verified = api_as(wade).get(URL, {"status": "verified"}).json()
    assert [c["url"] for c in only_verified] == [site.url("/ok")]
    # The scorecard's selector shows the verified one only.
    assert [c.url for c in verified_claims(project)] == [site.url("/ok")]


def test_scorecard_claims_block_shows_only_verified_with_check_time(pls_api, site, project):
    from django.template.loader import render_to_string

    empty = render_to_string(
        "reconciliation/_scorecard_claims.html", {"claims": verified_claims(project)}
    )
    assert "不宣稱任何 PR 或部署已完成" in empty
    claim(pls_api, site.url("/gone"))
    claim(pls_api, site.url("/ok"))
    html = render_to_string(
        "reconciliation/_scorecard_claims.html", {"claims": verified_claims(project)}
    )
    assert site.url("/ok") in html and site.url("/gone") not in html
    stored = ArtifactClaim.objects.get(status="verified")
    from django.utils import timezone

    assert timezone.localtime(stored.checked_at).strftime("%Y-%m-%d %H:%M") in html


# --- Louis's project context ----------------------------------------------------


def test_louis_records_the_previous_pack(api_as, louis, project):
    ref = "https://gist.github.com/esz135888/f780d15b8d22a76cb950e4da189075ee"
    response = api_as(louis).post(CONTEXT_URL, {"previous_pack_ref": ref})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["previous_pack_ref"] == ref and body["previous_pack_recorded_at"]
    assert body["target_repo"] is None
    project.refresh_from_db()
    assert project.previous_pack_ref == ref
    event = AuditEvent.objects.get(verb=AuditEvent.Verb.PROJECT_CONTEXT)
    assert event.actor.username == "louis" and event.project_id == project.pk
    assert api_as(louis).get(CONTEXT_URL).json()["previous_pack_ref"] == ref


def test_louis_records_a_verified_target_repository(api_as, louis, site):
    response = api_as(louis).post(CONTEXT_URL, {"target_repo_url": site.url("/acme/kolable")})
    assert response.status_code == 200, response.content
    repo = response.json()["target_repo"]
    assert repo["kind"] == "repository" and repo["verified"] is True
    assert repo["url"] == site.url("/acme/kolable")


def test_refused_target_repository_changes_nothing_else(api_as, louis, site, project):
    response = api_as(louis).post(
        CONTEXT_URL, {"target_repo_url": site.url("/gone"), "previous_pack_ref": "pack v1"}
    )
    refused(response, "http_status")
    assert Project.objects.get(pk=project.pk).previous_pack_ref == ""
    assert api_as(louis).get(CONTEXT_URL).json()["target_repo"] is None


def test_project_context_is_louis_only(api_as, pls_api, wade, project):
    assert pls_api.post(CONTEXT_URL, {"previous_pack_ref": "x"}).status_code == 403
    assert api_as(wade).post(CONTEXT_URL, {"previous_pack_ref": "x"}).status_code == 403
    assert api_as(None).post(CONTEXT_URL, {"previous_pack_ref": "x"}).status_code == 401
    project.refresh_from_db()
    assert project.previous_pack_ref == ""


def test_project_context_needs_something_to_record(api_as, louis):
    response = api_as(louis).post(CONTEXT_URL, {})
    assert response.status_code == 422
    assert response.json()["error"] == "nothing_to_record"
    assert api_as(louis).post(CONTEXT_URL, {"previous_pack_ref": "  "}).status_code == 422


# --- the address and host rules ------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused_as"),
    [
        ("127.0.0.1", "迴環"),
        ("::1", "迴環"),
        ("::ffff:127.0.0.1", "迴環"),
        ("169.254.169.254", "鏈路本地"),
        ("fe80::1", "鏈路本地"),
        ("10.0.0.8", "私有"),
        ("192.168.1.1", "私有"),
        ("172.16.5.4", "私有"),
        ("fd00::1", "私有"),
        ("100.64.0.1", "非公開"),
        ("0.0.0.0", "保留"),  # noqa: S104 - an address under test, not a bind
        ("240.0.0.1", "保留"),
        ("224.0.0.1", "保留"),
    ],
)
def test_non_public_addresses_are_refused(address, refused_as):
    assert refused_as in address_refusal(address)


@pytest.mark.parametrize("address", ["140.82.112.3", "76.76.21.21", "2606:50c0:8000::153"])
def test_public_addresses_pass(address):
    assert address_refusal(address) is None


def test_allowed_hosts_match_the_registered_domain_only(settings):
    settings.CLAIM_ALLOWED_HOSTS = ["github.com", "vercel.app", ".netlify.app"]
    assert host_allowed("github.com")
    assert host_allowed("www.GitHub.com")
    assert host_allowed("kolable.vercel.app")
    assert host_allowed("kolable.netlify.app")
    assert not host_allowed("evilgithub.com")
    assert not host_allowed("github.com.evil.example")
    assert not host_allowed("vercel.app.example.com")
