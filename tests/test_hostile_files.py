"""Hostile files and bad input (issue: no crash, no 5xx, bounded memory and
disk, nothing kept that must not be). The corpus is generated here
(tests/hostile_files.py) and sent through the real endpoints: Wade's upload
API, Huber's tag-file page, and a real server in a child process whose peak
memory is read with getrusage (wait4) once it stops."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from reconciliation.api.auth import issue_token
from reconciliation.models import Upload
from reconciliation.services.uploads import purge_expired_uploads, validate_pending_upload
from tests import hostile_files as hostile
from tests import upload_samples as samples
from tests.test_qcluster import test_database_url

BASE_DIR = Path(settings.BASE_DIR)
PEAK_MEMORY_LIMIT_MB = 600


def new_request(pls_api) -> str:
    response = pls_api.post(
        "/api/kolable/data-requests", {"requested_dataset": f"hostile {uuid.uuid4().hex[:8]}"}
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def upload(pls_api, request_id, data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return pls_api.upload(
        f"/api/kolable/data-requests/{request_id}/upload",
        {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream")},
    )


def clear_message(body: dict) -> str:
    """The first problem's message: a file error, else a row error."""
    problems = body.get("file_errors") or body.get("row_errors") or []
    return problems[0]["message"] if problems else ""


@pytest.mark.parametrize("name", sorted(hostile.UPLOAD_CORPUS))
def test_every_hostile_upload_is_a_clear_4xx_and_the_server_answers_after(pls_api, name):
    build, filename = hostile.UPLOAD_CORPUS[name]
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, build(), filename)
    assert 400 <= response.status_code < 500, (name, response.status_code, response.content[:300])
    body = response.json()
    assert body["schema_status"] == "schema_failed"
    assert len(clear_message(body)) > 5, body
    assert len(body["original_name"]) <= 255
    after = pls_api.get(f"/api/kolable/data-requests/{request_id}")
    assert after.status_code == 200 and after.json()["status"] == "schema_failed"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("sparse_xfd1048576", "sheet_too_large"),
        ("sparse_xfd1500", "sheet_too_large"),
        ("declared_dimension", "sheet_too_large"),
        ("huge_cell_xlsx", "sheet_too_large"),
        ("repeated_ods", "sheet_too_large"),
        ("nul_csv", "nul_character"),
        ("extreme_dates", "bad_date"),
        ("huge_cell_csv", "too_long"),
    ],
)
def test_each_trick_gets_its_own_error_code(pls_api, name, code):
    build, filename = hostile.UPLOAD_CORPUS[name]
    body = upload(pls_api, new_request(pls_api), build(), filename).json()
    codes = {e["code"] for e in body["file_errors"]} | set(body["row_error_totals"])
    assert code in codes, body


def test_a_trick_the_cheap_checks_miss_costs_the_reader_child_not_the_server(pls_api, settings):
    """With the extent limits off, the XFD1048576 sheet reaches calamine,
    which aborts under the child's address-space limit: a typed 422."""
    settings.SHEET_MAX_COLUMNS = settings.SHEET_MAX_CELLS = 10**12
    settings.SHEET_READER_MEMORY_MB = 1024
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, hostile.sparse_xlsx(), "sparse.xlsx")
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["file_errors"]] == ["sheet_too_large"]
    assert pls_api.get(f"/api/kolable/data-requests/{request_id}").status_code == 200


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_refused_file_with_a_card_number_leaves_no_raw_bytes(pls_api):
    data = hostile.card_number_csv()
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, data, "card.csv")
    body = response.json()
    assert response.status_code == 422 and body["bytes_kept"] is False
    assert body["row_error_totals"] == {"card_number": 1}
    assert "4111 **** **** 1111" in body["row_errors"][0]["value"]
    kept = Upload.objects.get(pk=body["upload_id"])
    assert kept.storage_path == "" and kept.size == len(data) and len(kept.sha256) == 64
    for path in _files_under(Path(settings.DATA_DIR)):
        content = path.read_bytes()
        assert b"4111 1111 1111 1111" not in content and b"4111111111111111" not in content, path
    # Sending it again answers with the evidence, still without bytes.
    again = upload(pls_api, request_id, data, "card.csv")
    assert again.status_code == 200 and again.json()["duplicate_of"] == body["upload_id"]
    assert not any(p.name == kept.sha256 for p in _files_under(Path(settings.UPLOAD_DIR)))


def test_a_tag_file_with_a_card_number_is_not_kept(pls_api, client, huber):
    accepted_import(pls_api)
    client.force_login(huber)
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = b"order_id,tag,payment_ref\nKOL-20260512-000001,paid,4111 1111 1111 1111\n"
    page = client.post(reverse("evidence-import"), {"file": SimpleUploadedFile("tags.csv", data)})
    assert page.status_code == 200 and "4111 **** **** 1111" in page.content.decode()
    for path in _files_under(Path(settings.DATA_DIR)):
        assert b"4111 1111 1111 1111" not in path.read_bytes(), path


def accepted_import(pls_api) -> str:
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, samples.csv_bytes(samples.good_rows(5)), "ok.csv")
    assert response.status_code == 201, response.content
    made = pls_api.post("/api/kolable/reconciliation/import", {"data_request_id": request_id})
    assert made.status_code == 201, made.content
    return made.json()["id"]


@pytest.mark.parametrize("name", sorted(hostile.UPLOAD_CORPUS))
def test_hostile_tag_files_are_a_clear_refusal(pls_api, client, huber, name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    accepted_import(pls_api)
    client.force_login(huber)
    build, filename = hostile.UPLOAD_CORPUS[name]
    page = client.post(reverse("evidence-import"), {"file": SimpleUploadedFile(filename, build())})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="tag-file-report"' in html and "未套用" in html, name
    assert 'data-testid="file-errors"' in html or 'data-testid="row-errors"' in html, name
    assert client.get(reverse("evidence")).status_code == 200


def test_the_tag_file_page_refuses_an_oversized_body_before_reading_it(client, huber, settings):
    settings.MAX_UPLOAD_MB = 1
    client.force_login(huber)
    response = client.post(
        reverse("evidence-import"),
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(5 * 1_048_576),
    )
    assert response.status_code == 413


# --- Large files: the worker, the cap, the retention ---------------------------------


def test_a_large_upload_is_pending_at_once_and_validated_by_the_worker(pls_api, settings):
    settings.UPLOAD_SYNC_MAX_MB = 0.05
    settings.ROW_ERRORS_REPORTED = 100
    data = hostile.every_row_bad_csv(2000)
    assert len(data) > settings.UPLOAD_SYNC_MAX_MB * 1_048_576
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, data, "bad.csv")
    assert response.status_code == 202, response.content[:300]
    body = response.json()
    assert body["schema_status"] == "pending"
    # What the queued task runs.
    validate_pending_upload(upload_id=body["upload_id"])
    result = pls_api.get(f"/api/kolable/uploads/{body['upload_id']}").json()
    assert result["schema_status"] == "schema_failed"
    assert result["row_error_totals"] == {
        "bad_amount": 2000,
        "bad_date": 2000,
        "unknown_payment_status": 2000,
    }
    assert result["row_error_count"] == 6000 and result["row_errors_truncated"] is True
    csv_report = pls_api.get(f"/api/kolable/uploads/{body['upload_id']}/report.csv")
    lines = b"".join(csv_report.streaming_content).decode("utf-8-sig").splitlines()
    # The first 100 errors, then one total line per code (plus the header).
    assert 100 < len(lines) < 120
    assert any("6,000" in line or "2,000" in line for line in lines[-3:])


def test_reports_and_refused_files_are_purged_after_the_retention(pls_api, settings):
    request_id = new_request(pls_api)
    refused = upload(pls_api, request_id, hostile.extreme_dates_csv(), "dates.csv").json()
    good_request = new_request(pls_api)
    accepted = upload(
        pls_api, good_request, samples.csv_bytes(samples.good_rows(4)), "ok.csv"
    ).json()
    kept_refused = Upload.objects.get(pk=refused["upload_id"])
    kept_accepted = Upload.objects.get(pk=accepted["upload_id"])
    refused_path = Path(settings.UPLOAD_DIR) / kept_refused.storage_path
    assert refused_path.exists() and kept_refused.report_path
    assert purge_expired_uploads() == {"reports": 0, "refused_files": 0, "temporary_files": 0}
    later = timezone.now() + timedelta(days=settings.UPLOAD_RETENTION_DAYS + 1)
    purged = purge_expired_uploads(now=later)
    assert purged["refused_files"] == 1 and purged["reports"] >= 1
    kept_refused.refresh_from_db()
    kept_accepted.refresh_from_db()
    assert not refused_path.exists() and kept_refused.storage_path == ""
    assert kept_refused.report_path == "" and kept_refused.sha256 == refused["sha256"]
    assert (Path(settings.UPLOAD_DIR) / kept_accepted.storage_path).exists()
    report = pls_api.get(f"/api/kolable/uploads/{refused['upload_id']}/report.csv")
    assert report.status_code == 404
    # A second run finds nothing more to do.
    assert purge_expired_uploads(now=later)["refused_files"] == 0


# --- The web process's memory, measured on a real server ---------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method, url, *, token, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback
    request.add_header("Authorization", f"Token {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def _stop(server, seconds: float = 30):
    """SIGTERM the server (SIGINT may be ignored: a shell's background jobs
    inherit it ignored) and reap it with its rusage; SIGKILL after `seconds`."""
    server.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _status, usage = os.wait4(server.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            return usage
        time.sleep(0.1)
    server.kill()
    return os.wait4(server.pid, 0)[2]


@pytest.mark.django_db(transaction=True)
def test_a_real_server_survives_the_corpus_with_bounded_memory(seeded, tmp_path):
    """`manage.py runserver` in a child process against the test database:
    every hostile file answers 4xx, the server still answers afterwards, and
    its peak RSS (getrusage through wait4, so the spreadsheet reader's
    children count too) stays under 600 MB."""
    from django.contrib.auth import get_user_model

    token = issue_token(get_user_model().objects.get(username="pls"))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DATA_DIR": str(tmp_path / "server"),
        "DEBUG": "true",
        "PYTHONUNBUFFERED": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _attempt in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        statuses = {}
        for name, (build, filename) in sorted(hostile.UPLOAD_CORPUS.items()):
            status, created = _http(
                "POST",
                f"{base}/api/kolable/data-requests",
                token=token,
                body=f'{{"requested_dataset": "server {name}"}}'.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert status == 201, created[:300]
            request_id = __import__("json").loads(created)["id"]
            body, content_type = _multipart(filename, build())
            statuses[name], _answer = _http(
                "POST",
                f"{base}/api/kolable/data-requests/{request_id}/upload",
                token=token,
                body=body,
                headers={"Content-Type": content_type},
            )
        assert all(400 <= s < 500 for s in statuses.values()), statuses
        status, _listing = _http("GET", f"{base}/api/kolable/data-requests", token=token)
        assert status == 200
        assert server.poll() is None, "the server died"
        own_peak_kb = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
        )
    finally:
        usage = _stop(server)
    assert own_peak_kb / 1024 < PEAK_MEMORY_LIMIT_MB
    assert usage is not None
    # ru_maxrss is in KiB on Linux; it includes the reader children it waited for.
    assert usage.ru_maxrss / 1024 < PEAK_MEMORY_LIMIT_MB, usage.ru_maxrss
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


@pytest.mark.parametrize("amount", ["1000000000000", "1e21", "-99999999999999999"])
def test_an_amount_the_book_cannot_store_is_a_row_error_not_a_failed_import(pls_api, amount):
    """The book keeps amounts to 14 digits with cents (PostgreSQL refuses
    more; SQLite would round them silently): a bigger one is the row's error."""
    rows = samples.good_rows(3)
    rows[1]["amount"] = amount
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, samples.csv_bytes(rows), "huge.csv")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["row_error_totals"]["amount_too_large"] == 1, body
    [error] = [e for e in body["row_errors"] if e["code"] == "amount_too_large"]
    assert error["row"] == 3 and error["column"] == "amount", error
    assert "1,000,000,000,000" in error["message"], error


def test_the_largest_amount_the_book_stores_is_accepted_and_kept_to_the_cent(pls_api):
    rows = samples.good_rows(2)
    rows[0]["amount"] = "999999999999.99"
    request_id = new_request(pls_api)
    response = upload(pls_api, request_id, samples.csv_bytes(rows), "big.csv")
    assert response.status_code == 201, response.content
    made = pls_api.post("/api/kolable/reconciliation/import", {"data_request_id": request_id})
    assert made.status_code == 201, made.content
    from reconciliation.models import Order

    assert str(Order.objects.get(order_id=rows[0]["order_id"]).amount) == "999999999999.99"
