"""The sources API: Louis configures, Louis and PLS sync, everyone on the
team reads; the token is kept sealed and only ever shown masked."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from reconciliation.models import AuditEvent, SyncRun, SyncSource
from reconciliation.services.sync import execute_run, request_sync
from tests.sync.conftest import TOKEN, Sleeps


def as_user(api_as, name):
    return api_as("pls" if name == "pls" else get_user_model().objects.get(username=name))


BODY = {
    "kind": "kolable_api",
    "token": TOKEN,
    "schedule_time": "06:00",
    "overlap_minutes": 60,
    "page_size": 100,
}


def test_louis_configures_a_source_and_the_token_never_comes_back(stub, api_as, louis, pls_api):
    answer = api_as(louis).post("/api/kolable/sources", {**BODY, "base_url": stub.base_url})
    assert answer.status_code == 201
    body = answer.json()
    assert body["token"] == "••••5678"
    assert body["schedule_time"] == "06:00" and body["page_size"] == 100
    assert body["cursor"] is None and body["last_run"] is None
    listed = pls_api.get("/api/kolable/sources")
    assert listed.status_code == 200
    for text in (answer.content, listed.content):
        assert TOKEN.encode() not in text
    source = SyncSource.objects.get()
    assert TOKEN not in source.token_encrypted
    assert source.data_request.sync_source == source
    # The standing request is owed its data an hour after the first scheduled run.
    due = timezone.localtime(source.data_request.due_at)
    assert (due.hour, due.minute) == (7, 0)
    assert timezone.now() < source.data_request.due_at <= timezone.now() + timedelta(hours=25)
    event = AuditEvent.objects.get(verb=AuditEvent.Verb.SOURCE_CONFIGURED)
    assert TOKEN not in event.message + json.dumps(event.data)
    # One source per project.
    again = api_as(louis).post("/api/kolable/sources", {**BODY, "base_url": stub.base_url})
    assert (again.status_code, again.json()["error"]) == (409, "source_exists")


@pytest.mark.parametrize("who", ["wade", "huber", "pls"])
def test_only_louis_configures(stub, api_as, who, seeded):
    answer = as_user(api_as, who).post("/api/kolable/sources", {**BODY, "base_url": stub.base_url})
    assert answer.status_code == 403


def test_louis_and_pls_sync_now_others_may_not(stub, make_source, api_as, louis):
    source = make_source(stub)
    for who in ("wade", "huber"):
        assert (
            as_user(api_as, who).post(f"/api/kolable/sources/{source.pk}/sync").status_code == 403
        )
    first = api_as(louis).post(f"/api/kolable/sources/{source.pk}/sync")
    assert first.status_code == 202
    assert first.json()["created"] is True
    # While it is queued, asking again answers the same run.
    second = api_as("pls").post(f"/api/kolable/sources/{source.pk}/sync")
    assert second.status_code == 202
    assert second.json()["run_id"] == first.json()["run_id"]
    assert second.json()["created"] is False
    assert SyncRun.objects.count() == 1
    runs = as_user(api_as, "huber").get(f"/api/kolable/sources/{source.pk}/runs")
    assert runs.status_code == 200
    (run,) = runs.json()
    assert run["id"] == first.json()["run_id"] and run["status"] == "queued"
    assert api_as(None).get(f"/api/kolable/sources/{source.pk}/runs").status_code == 401


def test_unknown_source_is_404(api_as, louis):
    missing = "00000000-0000-0000-0000-000000000000"
    assert api_as(louis).post(f"/api/kolable/sources/{missing}/sync").status_code == 404
    assert api_as(louis).get(f"/api/kolable/sources/{missing}/runs").status_code == 404
    assert api_as(louis).get("/api/kolable/sources/not-a-uuid/runs").status_code == 404


@pytest.mark.parametrize(
    "base_url",
    [
        "http://10.0.0.7:8080",
        "http://169.254.169.254",
        "http://localhost:18139",
        "ftp://127.0.0.1/",
        "http://user:pw@127.0.0.1/",
        "http://127.0.0.1:18139/?x=1",
    ],
)
def test_private_or_odd_base_urls_are_refused(api_as, louis, base_url):
    answer = api_as(louis).post("/api/kolable/sources", {**BODY, "base_url": base_url})
    assert answer.status_code == 422
    assert answer.json()["error"] == "base_url_refused"
    assert SyncSource.objects.count() == 0


def test_loopback_only_when_listed(api_as, louis, settings):
    settings.SYNC_ALLOWED_HOSTS = []
    answer = api_as(louis).post(
        "/api/kolable/sources", {**BODY, "base_url": "http://127.0.0.1:18139"}
    )
    assert answer.status_code == 422
    assert "127.0.0.1" in answer.json()["detail"]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"token": "has space"}, "invalid_token"),
        ({"token": "nul\x00"}, "invalid_input"),
        ({"schedule_time": "25:00"}, "invalid_schedule_time"),
        ({"schedule_time": "six"}, "invalid_schedule_time"),
        ({"page_size": 0}, "invalid_input"),
        ({"overlap_minutes": -1}, "invalid_input"),
        ({"kind": "shopify"}, "invalid_input"),
        ({"base_url": "http://127.0.0.1/" + "a" * 400}, "invalid_input"),
    ],
)
def test_bad_input_is_a_clear_422_and_writes_nothing(stub, api_as, louis, change, code):
    answer = api_as(louis).post(
        "/api/kolable/sources", {**BODY, "base_url": stub.base_url, **change}
    )
    assert answer.status_code == 422, answer.content
    assert answer.json()["error"] == code
    assert SyncSource.objects.count() == 0


def test_louis_replaces_a_refused_token_and_the_next_run_continues(
    stub, make_source, api_as, louis
):
    source = make_source(stub)
    run, _ = request_sync(source=source)
    execute_run(run_id=run.pk)
    source.refresh_from_db()
    cursor = source.cursor
    stub.token = "rotated-token-9999"
    run, _ = request_sync(source=source)
    assert execute_run(run_id=run.pk, sleep=Sleeps()).error_code == "auth"
    pls = api_as("pls")
    refused = pls.client.patch(
        f"/api/kolable/sources/{source.pk}",
        json.dumps({"token": "rotated-token-9999"}),
        content_type="application/json",
        **pls.headers,
    )
    assert refused.status_code == 403
    changed = api_as(louis).client.patch(
        f"/api/kolable/sources/{source.pk}",
        json.dumps({"token": "rotated-token-9999"}),
        content_type="application/json",
    )
    assert changed.status_code == 200
    assert changed.json()["token"] == "••••9999"
    assert b"rotated-token-9999" not in changed.content
    stub.data.advance(2)
    run, _ = request_sync(source=source)
    again = execute_run(run_id=run.pk)
    assert (again.status, again.changed_orders) == (SyncRun.Status.SUCCEEDED, 2)
    assert again.updated_since == cursor - timedelta(minutes=60)
