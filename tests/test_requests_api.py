"""Seed test A through the API: a data request with Wade as owner, due in
24 h, the ten-column schema, and people-sync evidence."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reconciliation import schema
from reconciliation.models import AuditEvent, DataRequest, Notification

URL = "/api/kolable/data-requests"
NOW = timezone.datetime(2026, 5, 23, 9, 0, tzinfo=timezone.get_fixed_timezone(8 * 60))


@time_machine.travel(NOW, tick=False)
def test_seed_test_a_pls_creates_request_with_defaults(pls_api, wade):
    response = pls_api.post(URL, {})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["data_owner"]["username"] == "wade"
    assert body["data_owner"]["profile_id"] == str(wade.profile.pk)
    assert body["requested_by"]["username"] == "pls"
    assert timezone.datetime.fromisoformat(body["due_at"]) == NOW + timedelta(hours=24)
    assert body["due_at"].endswith("+08:00")
    assert [c["name"] for c in body["required_schema"]] == list(schema.COLUMN_NAMES)
    assert all(c["required"] for c in body["required_schema"])
    assert body["period_start"] == "2026-05-12" and body["period_end"] == "2026-05-21"

    to_wade = [p for p in body["people_sync"] if p["recipient"] == "wade"]
    assert {p["channel"] for p in to_wade} == {"inbox", "email"}
    message = to_wade[0]["message"]
    assert "2026-05-24 09:00" in message  # due time, Asia/Taipei
    for column in schema.COLUMN_NAMES:
        assert column in message
    assert "/template.xlsx" in message
    assert {p["recipient"] for p in body["people_sync"]} == {"wade", "louis", "huber"}
    assert any("28,000" in p["message"] for p in body["people_sync"] if p["recipient"] == "huber")

    request = DataRequest.objects.get(pk=body["id"])
    assert request.required_schema == schema.as_api()
    event = AuditEvent.objects.get(data_request=request)
    assert event.verb == AuditEvent.Verb.REQUEST_CREATED
    assert event.actor.username == "pls"


def test_get_list_and_one(pls_api, louis, api_as):
    created = pls_api.post(URL, {}).json()
    listed = api_as(louis).get(URL)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [created["id"]]
    one = api_as(louis).get(f"{URL}/{created['id']}")
    assert one.status_code == 200
    assert one.json()["people_sync"] == created["people_sync"]
    assert one.json()["uploads"] == [] and one.json()["imports"] == []
    filtered = api_as(louis).get(URL, {"status": "closed"})
    assert filtered.json() == []


def test_second_open_request_for_same_dataset_conflicts(pls_api):
    first = pls_api.post(URL, {})
    second = pls_api.post(URL, {})
    assert second.status_code == 409
    assert second.json()["error"] == "request_exists"
    assert second.json()["detail"]["data_request_id"] == first.json()["id"]
    assert DataRequest.objects.count() == 1


def test_louis_closes_then_a_new_request_may_open(pls_api, api_as, louis):
    first = pls_api.post(URL, {}).json()
    closed = api_as(louis).post(f"{URL}/{first['id']}/close", {"note": "Wade 改走 API"})
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    again = api_as(louis).post(f"{URL}/{first['id']}/close", {})
    assert again.status_code == 409
    assert pls_api.post(URL, {}).status_code == 201
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.REQUEST_CLOSED).count() == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"data_owner": "nobody"}, 422, "unknown_data_owner"),
        ({"data_owner": "huber"}, 422, "unknown_data_owner"),  # may not upload
        ({"due_at": "2020-01-01T00:00:00+08:00"}, 422, "due_in_past"),
        ({"period_start": "2026-05-21", "period_end": "2026-05-12"}, 422, "invalid_period"),
        ({"period_start": "not a date"}, 422, "invalid_input"),
        ({"due_at": "tomorrow"}, 422, "invalid_input"),
        ({"project_id": "00000000-0000-0000-0000-000000000000"}, 404, "not_found"),
    ],
)
def test_bad_input_is_a_clear_4xx(pls_api, payload, status, code):
    response = pls_api.post(URL, payload)
    assert response.status_code == status, response.content
    assert response.json()["error"] == code
    assert response.json()["detail"]
    assert not DataRequest.objects.exists()
    assert not Notification.objects.exists()


def test_malformed_json_is_400(pls_api):
    response = pls_api.post_raw(URL, "{not json")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_unknown_request_is_404(pls_api):
    response = pls_api.get(f"{URL}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "找不到這筆資料。"}


def test_no_credentials_is_401_and_bad_token_is_401(api_as):
    anonymous = api_as(None).post(URL, {})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"
    client = api_as(None)
    client.headers["HTTP_AUTHORIZATION"] = "Token kol_wrong"
    assert client.get(URL).status_code == 401


def test_openapi_document_lists_the_contract(api_as, louis):
    response = api_as(louis).get("/api/schema/")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/kolable/data-requests" in paths
    assert "post" in paths["/api/kolable/data-requests"]
