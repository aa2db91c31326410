"""Bad input through every door answers a clear 4xx, never a 500: NUL,
text longer than its column, dates outside 1970-2100, URLs that do not
parse, ids that are not UUIDs; and the claim check's deadline and redirect
rules against real servers on loopback."""

import logging
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from reconciliation.models import DataRequest, ReconciliationImport, Upload
from reconciliation.services.frames import kept_path, normalised_cache_path
from reconciliation.services.imports import import_stalled_uploads
from reconciliation.services.uploads import STALE_PENDING, validate_stalled_uploads
from tests import upload_samples as samples
from tests.http_stub import Answer, StubServer
from tests.test_hostile_files import new_request, upload

REQUESTS = "/api/kolable/data-requests"


@pytest.mark.parametrize(
    "payload",
    [
        {"requested_dataset": "orders\x00"},
        {"requested_dataset": "x" * 301},
        {"audit_note": "note \x00"},
        {"data_owner": "wade\x00"},
        {"due_at": "9999-12-31T00:00:00+08:00"},
        {"period_start": "0001-01-01"},
        {"period_end": "9999-12-31"},
    ],
)
def test_request_fields_are_422_not_500(pls_api, payload):
    response = pls_api.post(REQUESTS, payload)
    assert response.status_code == 422, response.content
    assert response.json()["error"] == "invalid_input"
    assert not DataRequest.objects.exists()


def test_a_nul_names_the_field_with_a_clear_message(pls_api):
    body = pls_api.post(REQUESTS, {"requested_dataset": "a\x00b"}).json()
    assert body["detail"]["field"] == "body"
    assert "NUL" in body["detail"]["message"]


def test_over_long_text_is_refused_by_the_schema_with_the_column_limit(pls_api):
    body = pls_api.post(REQUESTS, {"requested_dataset": "x" * 301}).json()
    assert body["detail"][0]["loc"][-1] == "requested_dataset"
    assert "300" in body["detail"][0]["msg"]


def test_extend_to_year_9999_is_422(api_as, louis, pls_api):
    request_id = new_request(pls_api)
    response = api_as(louis).post(
        f"{REQUESTS}/{request_id}/extend", {"due_at": "9999-12-31T00:00:00+08:00"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "9999-12-31"},
        {"date_to": "0001-01-01"},
        {"q": "KOL\x00"},
        {"payment_status": "paid\x00"},
        {"q": "x" * 201},
    ],
)
def test_order_filters_are_422(pls_api, query):
    response = pls_api.get("/api/kolable/orders", query)
    assert response.status_code == 422, response.content


def test_status_filter_with_a_nul_is_422(pls_api):
    assert pls_api.get(REQUESTS, {"status": "open\x00"}).status_code == 422


def test_evidence_note_with_a_nul_is_422(api_as, huber):
    response = api_as(huber).post(
        "/api/kolable/evidence", {"order_ids": ["A"], "tag": "unresolved", "note": "x\x00"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com:99999/acme/kolable/pull/1",
        "https://github.com:abc/acme/kolable/pull/1",
        "https://[::1/acme/kolable/pull/1",
    ],
)
def test_claim_urls_that_do_not_parse_are_refused(pls_api, url):
    response = pls_api.post("/api/kolable/artifact-claims", {"kind": "github_pr", "url": url})
    assert response.status_code == 422, response.content
    assert response.json()["detail"]["reason_code"] == "bad_url"


def test_non_uuid_ids_are_404(pls_api, client, huber):
    assert pls_api.get("/api/kolable/uploads/not-a-uuid").status_code == 404
    assert pls_api.get(f"{REQUESTS}/123").status_code == 404
    client.force_login(huber)
    # The page says so (as for an unknown id) instead of failing.
    page = client.get(reverse("evidence"), {"import_id": "abc"}, follow=True)
    assert page.status_code in (200, 404) and "找不到" in page.content.decode()


def test_evidence_page_dates_outside_the_range_are_a_message_not_a_500(pls_api, client, huber):
    from tests.test_hostile_files import accepted_import

    accepted_import(pls_api)
    client.force_login(huber)
    page = client.get(reverse("evidence"), {"date_from": "9999-12-31"})
    assert page.status_code in (200, 302, 422)
    export = client.get(reverse("evidence-export", args=["csv"]), {"date_to": "0001-01-01"})
    assert export.status_code < 500


def test_pages_refuse_a_nul_with_422(client, louis):
    client.force_login(louis)
    response = client.post(
        reverse("request-create"), {"requested_dataset": "a\x00", "due_in_hours": 24}
    )
    assert response.status_code == 422
    assert "NUL" in response.content.decode()
    assert client.get("/", {"status": "\x00"}).status_code == 422


def test_an_unexpected_api_error_is_json_500_and_a_log_line(caplog):
    from reconciliation.api import on_unexpected_error

    request = RequestFactory().get("/api/kolable/anything")
    with caplog.at_level(logging.ERROR, logger="reconciliation.api"):
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            response = on_unexpected_error(request, exc)
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert b'"error": "server_error"' in response.content or b'"server_error"' in response.content
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_one_broken_upload_never_blocks_the_import_sweep(pls_api, settings):
    first = new_request(pls_api)
    second = new_request(pls_api)
    broken = upload(pls_api, first, samples.csv_bytes(samples.good_rows(3)), "a.csv").json()
    fine = upload(pls_api, second, samples.csv_bytes(samples.good_rows(4, start=50)), "b.csv")
    fine = fine.json()
    assert broken["schema_status"] == fine["schema_status"] == "accepted"
    # The first upload's bytes and cache are lost.
    lost = Upload.objects.get(pk=broken["upload_id"])
    kept_path(lost).unlink()
    normalised_cache_path(lost.pk).unlink()
    later = timezone.now() + timedelta(minutes=settings.IMPORT_STALL_MINUTES + 1)
    done = import_stalled_uploads(now=later)
    assert fine["upload_id"] in done
    assert ReconciliationImport.objects.filter(upload_id=fine["upload_id"]).exists()


def test_one_unreadable_pending_upload_never_blocks_the_validation_sweep(pls_api, settings):
    settings.UPLOAD_SYNC_MAX_MB = 0.0001
    first = upload(
        pls_api, new_request(pls_api), samples.csv_bytes(samples.good_rows(3)), "a.csv"
    ).json()
    second = upload(
        pls_api, new_request(pls_api), samples.csv_bytes(samples.good_rows(4, start=50)), "b.csv"
    ).json()
    assert first["schema_status"] == second["schema_status"] == "pending"
    # The first one's bytes vanish before its (lost) task ran.
    kept_path(Upload.objects.get(pk=first["upload_id"])).unlink()
    later = timezone.now() + STALE_PENDING + timedelta(minutes=1)
    validate_stalled_uploads(now=later)
    refused = Upload.objects.get(pk=first["upload_id"])
    assert refused.schema_status == "schema_failed"
    assert [e["code"] for e in refused.file_errors] == ["unreadable_file"]
    assert Upload.objects.get(pk=second["upload_id"]).schema_status == "accepted"
    # Nothing left for the next run.
    assert validate_stalled_uploads(now=later) == []


# --- Claim checks against real servers ---------------------------------------------


@pytest.fixture
def claim_site(settings):
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CLAIM_TIMEOUT_SECONDS = 0.5
    with StubServer() as first, StubServer() as second:
        second.routes["/ok"] = Answer(200)
        first.routes["/ok"] = Answer(200)
        first.routes["/other-port"] = Answer(302, headers={"Location": second.url("/ok")})
        first.routes["/to-http"] = Answer(
            302, headers={"Location": first.url("/ok").replace("http://", "https://")}
        )
        first.routes["/bad-location"] = Answer(302, headers={"Location": "http://[::1/x"})
        yield first


def test_a_redirect_to_another_port_of_the_same_host_is_refused(pls_api, claim_site):
    response = pls_api.post(
        "/api/kolable/artifact-claims", {"kind": "deployment", "url": claim_site.url("/other-port")}
    )
    assert response.status_code == 422
    assert response.json()["detail"]["reason_code"] == "redirect_other_host"


def test_a_redirect_that_changes_the_scheme_is_refused(pls_api, claim_site):
    response = pls_api.post(
        "/api/kolable/artifact-claims", {"kind": "deployment", "url": claim_site.url("/to-http")}
    )
    assert response.json()["detail"]["reason_code"] == "redirect_other_host"


def test_a_redirect_that_does_not_parse_is_refused(pls_api, claim_site):
    response = pls_api.post(
        "/api/kolable/artifact-claims",
        {"kind": "deployment", "url": claim_site.url("/bad-location")},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["reason_code"] == "bad_redirect"


@pytest.fixture
def trickling_server():
    """Answers one header byte every 0.1 s, forever: each read is quick, the
    whole answer never comes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _address = listener.accept()
            except OSError:
                continue
            try:
                conn.recv(4096)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if stop.is_set():
                        break
                    conn.sendall(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_the_claim_check_has_one_total_deadline(pls_api, settings, trickling_server):
    settings.CLAIM_ALLOW_PRIVATE = True
    settings.CLAIM_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.CLAIM_TIMEOUT_SECONDS = 0.5
    response = pls_api.post(
        "/api/kolable/artifact-claims",
        {"kind": "deployment", "url": f"http://127.0.0.1:{trickling_server}/"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["reason_code"] == "timeout"


def test_healthz_is_exempt_from_the_ssl_redirect():
    import subprocess
    import sys

    from django.conf import settings as django_settings

    # The production settings, read in a fresh process (DEBUG is fixed at import).
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='kolable.settings'; django.setup();"
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(django_settings.BASE_DIR),
        env={"DEBUG": "false", "SECRET_KEY": "x" * 60, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "True ['^healthz$']"
