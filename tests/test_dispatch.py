"""Seed test B through the API: `POST /api/kolable/dispatch` answers each row
of the PLS decision table from the recorded state, logs the decision, carries
evidence every time, and never sends PLS to build another pack when one
exists."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from reconciliation.models import (
    AuditEvent,
    DataRequest,
    DispatchDecision,
    ReconciliationImport,
    Upload,
)
from reconciliation.services.escalation import escalate_overdue_requests
from tests.http_stub import Answer, StubServer

URL = "/api/kolable/dispatch"
NOW = datetime(2026, 5, 24, 5, 45, tzinfo=ZoneInfo("Asia/Taipei"))
PREVIOUS_PACK = "https://gist.github.com/esz135888/f780d15b8d22a76cb950e4da189075ee"


def has_evidence(evidence: dict) -> bool:
    """Seed test B's expected evidence: uploaded data, a verified
    target_repo_url, or an explicit blocker."""
    uploaded = bool(evidence.get("upload_id") and evidence.get("sha256"))
    repo = bool(evidence.get("target_repo_url"))
    blocker = evidence.get("kind") == "blocker" and bool(
        evidence.get("data_request_id") or evidence.get("blocker")
    )
    return uploaded or repo or blocker


def dispatch(api, payload=None):
    response = api.post(URL, payload or {})
    assert response.status_code == 201, response.content
    body = response.json()
    assert has_evidence(body["evidence"]), body
    decision = DispatchDecision.objects.get(pk=body["id"])
    assert decision.job_type == body["job_type"] and decision.evidence == body["evidence"]
    return body


@pytest.fixture
def with_pack(api_as, louis):
    response = api_as(louis).post(
        "/api/kolable/project-context", {"previous_pack_ref": PREVIOUS_PACK}
    )
    assert response.status_code == 200


@pytest.fixture
def open_request(pls_api, with_pack):
    with time_machine.travel(NOW, tick=False):
        response = pls_api.post("/api/kolable/data-requests", {})
    assert response.status_code == 201
    return DataRequest.objects.get(pk=response.json()["id"])


def add_upload(request, status, *, missing=(), rows=0, name="export.csv"):
    return Upload.objects.create(
        data_request=request,
        uploaded_by=request.data_owner_profile,
        original_name=name,
        size=1234,
        sha256=(name.encode().hex() + "ab" * 32)[:64],
        storage_path=f"uploads/{name}",
        schema_status=status,
        missing_fields=list(missing),
        row_count=rows,
    )


def test_nothing_recorded_at_all_is_the_only_project_runner(pls_api):
    body = dispatch(pls_api)
    assert body["job_type"] == "project_runner"
    assert body["rule"] == "no_pack"
    assert body["evidence"]["kind"] == "blocker"


@time_machine.travel(NOW, tick=False)
def test_seed_case_b_previous_pack_and_no_new_file(pls_api, with_pack):
    """Given a previous reconciliation pack and no new data file, PLS is routed
    to a data request, not to another generic project_runner pack."""
    body = dispatch(pls_api)
    assert body["job_type"] == "data_request"
    assert body["job_type"] != "project_runner"
    assert body["rule"] == "no_file"
    assert body["evidence"]["kind"] == "blocker"
    assert body["evidence"]["previous_pack_ref"] == PREVIOUS_PACK
    assert "generic strategy pack" in body["reason"]

    # PLS does what it was told; the next answer chases Wade, still no pack.
    pls_api.post("/api/kolable/data-requests", {})
    for _ in range(3):
        body = dispatch(pls_api)
        assert body["job_type"] == "people_sync"
    evidence = body["evidence"]
    request = DataRequest.objects.get()
    assert body["data_request_id"] == str(request.pk)
    assert evidence["data_request_id"] == str(request.pk)
    assert evidence["status"] == "open" and evidence["owner"] == "wade"
    assert evidence["overdue_by_seconds"] == 0
    assert evidence["people_sync"] == {"remind": "wade", "blocker_card_to": None}
    assert not DispatchDecision.objects.filter(job_type="project_runner").exists()
    assert DispatchDecision.objects.count() == 4
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.DISPATCHED).count() == 4
    last = AuditEvent.objects.filter(verb=AuditEvent.Verb.DISPATCHED).first()
    assert last.actor.username == "pls" and last.data_request_id == request.pk


def test_escalated_request_asks_for_a_blocker_card(pls_api, open_request):
    later = NOW + timedelta(hours=26)
    with time_machine.travel(later, tick=False):
        escalate_overdue_requests()
        body = dispatch(pls_api)
    assert body["job_type"] == "people_sync"
    evidence = body["evidence"]
    assert evidence["status"] == "escalated"
    assert evidence["overdue_by_seconds"] == 2 * 3600
    assert evidence["people_sync"] == {"remind": "wade", "blocker_card_to": "louis"}
    assert "blocker card" in body["reason"]


def test_schema_errors_go_back_to_wade_with_the_missing_fields(pls_api, open_request):
    add_upload(open_request, Upload.SchemaStatus.SCHEMA_FAILED, missing=["payment_ref"])
    DataRequest.objects.filter(pk=open_request.pk).update(
        status=DataRequest.Status.SCHEMA_FAILED, missing_fields=["payment_ref"]
    )
    body = dispatch(pls_api)
    assert body["job_type"] == "people_sync"
    assert body["rule"] == "schema_errors"
    assert body["evidence"]["missing_fields"] == ["payment_ref"]
    assert body["evidence"]["upload"]["schema_status"] == "schema_failed"
    assert body["evidence"]["people_sync"]["remind"] == "wade"


def test_accepted_file_not_yet_imported_runs_the_import(pls_api, open_request):
    upload = add_upload(open_request, Upload.SchemaStatus.ACCEPTED, rows=28000)
    DataRequest.objects.filter(pk=open_request.pk).update(status=DataRequest.Status.ACCEPTED)
    body = dispatch(pls_api)
    assert body["job_type"] == "reconciliation_import"
    assert body["rule"] == "has_data"
    assert body["evidence"]["upload_id"] == str(upload.pk)
    assert body["evidence"]["sha256"] == upload.sha256
    assert body["evidence"]["row_count"] == 28000


def test_imported_orders_ask_for_the_settlement_file(pls_api, open_request):
    upload = add_upload(open_request, Upload.SchemaStatus.ACCEPTED, rows=3)
    DataRequest.objects.filter(pk=open_request.pk).update(status=DataRequest.Status.ACCEPTED)
    imported = ReconciliationImport.objects.create(
        data_request=open_request, upload=upload, row_count=3, status="accepted"
    )
    body = dispatch(pls_api)
    assert (body["job_type"], body["rule"]) == ("data_request", "no_settlement")
    assert body["evidence"]["import_id"] == str(imported.pk)
    assert body["evidence"]["request_kind"] == "settlement"


@pytest.fixture
def repo_site(settings):
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["github.com", "127.0.0.1"]
    with StubServer() as server:
        server.routes["/kolable/platform"] = Answer(200)
        server.routes["/kolable/platform/pull/12"] = Answer(200)
        server.routes["/private/repo"] = Answer(404)
        yield server


def test_verified_target_repository_dispatches_repo_change(
    pls_api, api_as, louis, open_request, repo_site
):
    refused = api_as(louis).post(
        "/api/kolable/project-context", {"target_repo_url": repo_site.url("/private/repo")}
    )
    assert refused.status_code == 422
    # A refused repository is no repository: still chasing the data.
    assert dispatch(pls_api)["job_type"] == "people_sync"

    recorded = api_as(louis).post(
        "/api/kolable/project-context", {"target_repo_url": repo_site.url("/kolable/platform")}
    )
    assert recorded.status_code == 200
    body = dispatch(pls_api)
    assert body["job_type"] == "repo_change"
    assert body["rule"] == "has_repo"
    assert body["evidence"]["target_repo_url"] == repo_site.url("/kolable/platform")
    assert body["evidence"]["http_status"] == 200

    # Once the repo_change has a verified PR, PLS is not sent to do it again.
    pr = pls_api.post(
        "/api/kolable/artifact-claims",
        {"kind": "github_pr", "url": repo_site.url("/kolable/platform/pull/12")},
    )
    assert pr.status_code == 201
    assert dispatch(pls_api)["job_type"] == "people_sync"


def test_roles_and_unknown_project(api_as, louis, wade, huber, outsider, pls_api):
    for user in (louis, wade, huber, outsider):
        assert api_as(user).post(URL, {}).status_code == 403, user
    assert api_as(None).post(URL, {}).status_code == 401
    missing = pls_api.post(URL, {"project_id": "00000000-0000-0000-0000-000000000000"})
    assert missing.status_code == 404
    assert pls_api.post(URL, {"project_id": "not-a-uuid"}).status_code == 422
    assert not DispatchDecision.objects.exists()
