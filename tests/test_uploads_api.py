"""Seed test C through the API: POST /api/kolable/data-requests/{id}/upload
answers 201 accepted or 422 schema_failed with the missing fields and the
row/file errors; every file's bytes are kept; the same bytes are recognised."""

import csv
import io
import threading
from datetime import timedelta

import pandas as pd
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from openpyxl import load_workbook

from reconciliation.bulk import TEXT_COLUMNS
from reconciliation.models import AuditEvent, DataRequest, Notification, Upload
from reconciliation.services.frames import kept_path, load_accepted_frame, normalised_cache_path
from reconciliation.services.requests import create_data_request
from reconciliation.services.uploads import receive_upload
from tests import upload_samples as samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_request(louis):
    return create_data_request(requested_by=louis)


def url(data_request):
    return f"/api/kolable/data-requests/{data_request.pk}/upload"


def send(client, data_request, data: bytes, name="orders.csv"):
    return client.upload(url(data_request), {"file": SimpleUploadedFile(name, data)})


def test_wade_uploads_a_good_csv_and_it_is_accepted(
    api_as, wade, data_request, settings, django_capture_on_commit_callbacks
):
    data = samples.csv_bytes(samples.good_rows(5))
    broker = get_broker()  # the ORM broker, or Redis in the PostgreSQL CI run
    queued_before = broker.queue_size()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = send(api_as(wade), data_request, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["schema_status"] == "accepted"
    assert body["row_count"] == 5
    assert body["missing_fields"] == [] and body["row_errors"] == []
    assert body["file_errors"] == [] and body["duplicate_of"] is None
    assert body["request_status"] == "accepted"
    assert body["detected_kind"] == "csv"
    assert body["error"] is None

    upload = Upload.objects.get(pk=body["upload_id"])
    assert upload.uploaded_by.username == "wade"
    assert kept_path(upload).read_bytes() == data
    assert kept_path(upload) == settings.UPLOAD_DIR / upload.sha256[:2] / upload.sha256
    assert not list((settings.UPLOAD_DIR / "tmp").iterdir())
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    assert data_request.artifact_ref == str(upload.pk)
    verbs = list(
        AuditEvent.objects.filter(data_request=data_request)
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs[-2:] == [AuditEvent.Verb.UPLOAD_RECEIVED, AuditEvent.Verb.UPLOAD_ACCEPTED]
    # The import is queued once the transaction commits (frame contract).
    assert len(callbacks) == 1
    assert broker.queue_size() == queued_before + 1
    if settings.REDIS_URL:
        broker.purge_queue()  # Redis outlives the test transaction; no worker should see it
    assert normalised_cache_path(upload.pk).exists()


def test_schema_failure_answers_422_with_missing_fields_and_row_errors(api_as, wade, data_request):
    rows = samples.good_rows(4)
    rows[1]["amount"] = "abc"
    rows[2]["created_at"] = "明天"
    columns = [c for c in samples.HEADERS if c not in ("payment_ref", "source_event")]
    response = send(api_as(wade), data_request, samples.csv_bytes(rows, columns=columns))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["schema_status"] == "schema_failed"
    assert body["error"] == "schema_failed"
    assert "payment_ref" in body["detail"] and "source_event" in body["detail"]
    assert body["missing_fields"] == ["payment_ref", "source_event"]
    assert {e["code"] for e in body["file_errors"]} == {"missing_column"}
    assert [(e["row"], e["column"], e["code"]) for e in body["row_errors"]] == [
        (3, "amount", "bad_amount"),
        (4, "created_at", "bad_date"),
    ]
    assert all(e["message"] and e["hint"] for e in body["row_errors"])
    assert body["report"]["xlsx"].endswith(f"/uploads/{body['upload_id']}/report.xlsx")

    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.SCHEMA_FAILED
    assert data_request.missing_fields == ["payment_ref", "source_event"]
    note = Notification.objects.get(
        kind=Notification.Kind.SCHEMA_FAILED, channel=Notification.Channel.INBOX
    )
    assert note.recipient.username == "wade"
    assert "payment_ref、source_event" in note.body
    assert "2 列資料有錯（從第 3、4 列起）" in note.body
    assert note.payload["missing_fields"] == ["payment_ref", "source_event"]
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.UPLOAD_FAILED).count() == 1
    # Nothing lost: the failing file is kept byte for byte.
    upload = Upload.objects.get(pk=body["upload_id"])
    assert kept_path(upload).exists() and upload.size == kept_path(upload).stat().st_size


def test_same_bytes_again_answer_200_with_the_earlier_result(api_as, wade, data_request):
    data = samples.csv_bytes(samples.good_rows(3), columns=samples.HEADERS[:-1])
    first = send(api_as(wade), data_request, data, "first.csv")
    again = send(api_as(wade), data_request, data, "renamed-copy.csv")
    assert first.status_code == 422
    assert again.status_code == 200
    body = again.json()
    assert body["duplicate_of"] == first.json()["upload_id"]
    assert body["upload_id"] == first.json()["upload_id"]
    assert body["original_name"] == "first.csv"
    assert body["missing_fields"] == ["owner_note"]
    assert Upload.objects.count() == 1
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.UPLOAD_RECEIVED).count() == 1
    kept = [p for p in kept_path(Upload.objects.get()).parent.iterdir()]
    assert len(kept) == 1


def test_an_upload_left_pending_is_finished_when_sent_again(api_as, wade, data_request):
    """The process died after keeping the bytes and writing the row: the same
    file sent again finishes the validation instead of answering 'pending'."""
    data = samples.csv_bytes(samples.good_rows(2))
    first = send(api_as(wade), data_request, data).json()
    Upload.objects.filter(pk=first["upload_id"]).update(
        schema_status=Upload.SchemaStatus.PENDING,
        created_at=timezone.now() - timedelta(hours=1),
    )
    DataRequest.objects.filter(pk=data_request.pk).update(status=DataRequest.Status.UPLOADED)
    again = send(api_as(wade), data_request, data)
    assert again.status_code == 200
    assert again.json()["schema_status"] == "accepted"
    assert again.json()["request_status"] == "accepted"
    assert Upload.objects.count() == 1


def test_a_fixed_file_after_a_failure_is_accepted(api_as, wade, data_request):
    bad = samples.good_rows(3)
    bad[0]["payment_status"] = "shipped"
    assert send(api_as(wade), data_request, samples.csv_bytes(bad)).status_code == 422
    good = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(3)))
    assert good.status_code == 201
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    assert data_request.missing_fields == []
    # Accepted: a corrected or top-up file is still welcome (a new import
    # into the order book); the accepted bytes again are recognised.
    other = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(2, start=50)))
    assert other.status_code == 201 and other.json()["schema_status"] == "accepted"
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    same = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(3)))
    assert same.status_code == 200 and same.json()["schema_status"] == "accepted"


def test_an_overdue_escalated_request_still_takes_the_file(api_as, wade, louis):
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        data_request = create_data_request(requested_by=louis)
    DataRequest.objects.filter(pk=data_request.pk).update(status=DataRequest.Status.ESCALATED)
    response = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(2)))
    assert response.status_code == 201
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.ACCEPTED
    # The escalation stays in the history; the upload events follow it.
    assert AuditEvent.objects.filter(
        data_request=data_request, verb=AuditEvent.Verb.UPLOAD_ACCEPTED
    ).exists()


def test_closed_request_refuses_uploads(api_as, wade, louis, data_request):
    DataRequest.objects.filter(pk=data_request.pk).update(status=DataRequest.Status.CLOSED)
    response = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(1)))
    assert response.status_code == 409
    assert response.json()["detail"]["request_status"] == "closed"
    assert Upload.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "name", "code", "status"),
    [
        (b"", "empty.csv", "empty_file", 422),
        (b"\xef\xbb\xbf\r\n \r\n", "blank.csv", "empty_file", 422),
        (samples.csv_bytes([]), "header.csv", "header_only", 422),
        (samples.PDF, "orders.csv", "unsupported_type", 422),
        (samples.PNG, "orders.xlsx", "unsupported_type", 422),
        (samples.zip_bytes({"a.txt": b"hi"}), "orders.xlsx", "unsupported_type", 422),
        (samples.zip_bomb_xlsx(), "orders.xlsx", "zip_bomb", 422),
        (samples.encrypted_xlsx(), "orders.xlsx", "encrypted_xlsx", 422),
        (samples.legacy_garbage_xls(), "orders.xls", "encrypted_xlsx", 422),
    ],
)
def test_file_level_problems_are_kept_and_answered_4xx(
    api_as, wade, data_request, data, name, code, status
):
    response = send(api_as(wade), data_request, data, name)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["schema_status"] == "schema_failed"
    assert code in [e["code"] for e in body["file_errors"]]
    assert all(e["message"] and e["hint"] for e in body["file_errors"])
    upload = Upload.objects.get(pk=body["upload_id"])
    assert kept_path(upload).read_bytes() == data


def test_truncated_xlsx_is_unreadable(api_as, wade, data_request):
    data = samples.xlsx_bytes(samples.good_rows(50))
    response = send(api_as(wade), data_request, data[: len(data) // 2], "cut.xlsx")
    assert response.status_code == 422
    assert response.json()["file_errors"][0]["code"] == "unreadable_file"


def test_too_many_rows(api_as, wade, data_request, settings):
    settings.MAX_ROWS = 5
    response = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(6)))
    assert response.status_code == 422
    assert response.json()["file_errors"][0]["code"] == "too_many_rows"
    xlsx = send(api_as(wade), data_request, samples.xlsx_bytes(samples.good_rows(7)), "a.xlsx")
    assert xlsx.json()["file_errors"][0]["code"] == "too_many_rows"


def test_oversize_is_413_before_anything_is_kept(api_as, wade, data_request, settings):
    settings.MAX_UPLOAD_MB = 1
    data = b"order_id\n" + b"x" * (3 * 1_048_576)
    response = send(api_as(wade), data_request, data)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert Upload.objects.count() == 0
    assert not (settings.UPLOAD_DIR).exists() or not any(
        p.is_file() for p in settings.UPLOAD_DIR.rglob("*")
    )


def test_oversize_counted_while_streaming_when_the_length_is_not_declared(
    wade, data_request, settings
):
    """The service counts the bytes it receives, whatever a header said."""
    settings.MAX_UPLOAD_MB = 1

    class Stream:
        name = "big.csv"
        size = None

        def __init__(self):
            self.left = 3

        def chunks(self, size):
            while self.left:
                self.left -= 1
                yield b"y" * 1_048_576

    from reconciliation.errors import DomainError

    with pytest.raises(DomainError) as caught:
        receive_upload(
            data_request=data_request, uploaded_by=wade, file=Stream(), original_name="big.csv"
        )
    assert caught.value.status == 413
    assert not any(p.is_file() for p in settings.UPLOAD_DIR.rglob("*"))


def test_missing_file_field(api_as, wade, data_request):
    response = api_as(wade).upload(url(data_request), {}, data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["error"] == "file_required"


def test_unknown_request_is_404(api_as, wade):
    response = api_as(wade).upload(
        "/api/kolable/data-requests/00000000-0000-0000-0000-000000000000/upload",
        {"file": SimpleUploadedFile("a.csv", b"x")},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["louis", "huber", "outsider"])
def test_roles_without_upload_get_403(api_as, request, data_request, who):
    user = request.getfixturevalue(who)
    response = send(api_as(user), data_request, samples.csv_bytes(samples.good_rows(1)))
    assert response.status_code == 403
    assert Upload.objects.count() == 0


def test_anonymous_gets_401(api_as, data_request):
    response = send(api_as(None), data_request, samples.csv_bytes(samples.good_rows(1)))
    assert response.status_code == 401


def test_pls_uploads_with_its_token(pls_api, data_request):
    response = send(pls_api, data_request, samples.csv_bytes(samples.good_rows(2)))
    assert response.status_code == 201
    assert Upload.objects.get().uploaded_by.username == "pls"


def test_first_200_row_errors_kept_the_rest_in_the_report(api_as, wade, data_request, louis):
    rows = samples.good_rows(250)
    for row in rows:
        row["amount"] = "-5"
    response = send(api_as(wade), data_request, samples.csv_bytes(rows))
    body = response.json()
    assert body["row_error_count"] == 250
    assert len(body["row_errors"]) == 200
    assert body["row_errors_truncated"] is True
    upload = Upload.objects.get()
    assert len(upload.row_errors) == 200 and upload.row_error_count == 250

    client = api_as(louis)  # may view reports, not upload
    report = client.get(f"/api/kolable/uploads/{upload.pk}/report.csv")
    assert report.status_code == 200
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    row_lines = [line for line in lines[1:] if line[3] == "negative_amount"]
    assert len(row_lines) == 250
    assert row_lines[0][1] == "2" and row_lines[-1][1] == "251"
    # "-5" is a number to Excel, not a formula: the report shows it as it was.
    assert row_lines[0][4] == "-5"

    xlsx = client.get(f"/api/kolable/uploads/{upload.pk}/report.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    data_rows = [v for v in values if len(v) > 3 and v[3] == "negative_amount"]
    assert len(data_rows) == 250
    assert data_rows[0][4] == "-5"


def test_get_one_upload(api_as, wade, louis, data_request):
    created = send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(2))).json()
    got = api_as(louis).get(f"/api/kolable/uploads/{created['upload_id']}")
    assert got.status_code == 200
    assert got.json()["sha256"] == created["sha256"]
    assert got.json()["report"] is None
    missing = api_as(louis).get(f"/api/kolable/uploads/{created['upload_id']}/report.csv")
    assert missing.status_code == 404


def test_request_detail_api_lists_the_upload(api_as, wade, louis, data_request):
    send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(2)))
    detail = api_as(louis).get(f"/api/kolable/data-requests/{data_request.pk}").json()
    assert [u["schema_status"] for u in detail["uploads"]] == ["accepted"]


def test_load_accepted_frame_follows_the_contract(api_as, wade, data_request):
    rows = samples.good_rows(3)
    rows[0]["customer_key"] = "Buyer@Example.com"
    rows[1]["payment_status"] = "已退款"
    rows[2]["amount"] = "NT$1,234.567"
    send(api_as(wade), data_request, samples.csv_bytes(rows))
    upload = Upload.objects.get()
    frame = load_accepted_frame(upload)
    assert list(frame.columns) == [
        "row_number",
        "order_id",
        "created_at",
        "customer_key",
        "program_id",
        "amount",
        "payment_status",
        "payment_ref",
        "discount_code",
        "source_event",
        "owner_note",
    ]
    assert str(frame["row_number"].dtype) == "int64"
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["amount"].dtype) == "float64"
    assert frame["row_number"].tolist() == [2, 3, 4]
    assert frame["payment_status"].tolist() == ["pending", "refunded", "paid"]
    assert frame["amount"].tolist() == [28000.0, 28000.0, 1234.57]
    assert all(isinstance(v, str) and len(v) == 64 for v in frame["customer_key"])
    assert "Buyer@Example.com" not in frame["customer_key"].tolist()
    # 2026-05-13 20:01 Taipei is 12:01 UTC.
    assert frame["created_at"][0].isoformat() == "2026-05-13T12:01:00+00:00"
    assert frame["discount_code"].tolist() == ["LIVE512", "", "LIVE512"]
    # The import's Arrow-backed form holds the same values.
    arrow = load_accepted_frame(upload, arrow_text=True)
    assert str(arrow["order_id"].dtype) == "string[pyarrow]"
    assert arrow.astype({c: object for c in TEXT_COLUMNS}).equals(frame)
    # Without the cache the kept bytes are read again, same frame.
    normalised_cache_path(upload.pk).unlink()
    again = load_accepted_frame(upload)
    assert again.equals(frame)
    assert load_accepted_frame(upload, arrow_text=True).equals(arrow)


def test_a_cache_written_as_parquet_before_the_arrow_cache_is_still_read(
    api_as, wade, data_request
):
    """Uploads accepted by the release that cached Parquet and not imported
    yet: their cache is read, not the file validated again."""
    send(api_as(wade), data_request, samples.csv_bytes(samples.good_rows(3)))
    upload = Upload.objects.get()
    frame = load_accepted_frame(upload)
    cache = normalised_cache_path(upload.pk)
    # What that release wrote: the validated frame, by pandas, as Parquet.
    pd.read_feather(cache).to_parquet(cache.with_suffix(".parquet"), index=False)
    cache.unlink()
    kept_path(upload).unlink()  # so the frame can only come from the Parquet cache
    assert load_accepted_frame(upload).equals(frame)


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_uploads_make_one_row(wade, louis, settings):
    data_request = create_data_request(requested_by=louis)
    data = samples.csv_bytes(samples.good_rows(20))
    outcomes, failures = [], []
    barrier = threading.Barrier(3)

    def upload_once():
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                receive_upload(
                    data_request=DataRequest.objects.get(pk=data_request.pk),
                    uploaded_by=wade,
                    file=SimpleUploadedFile("same.csv", data),
                    original_name="same.csv",
                )
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert Upload.objects.count() == 1
    assert len({o.upload.pk for o in outcomes}) == 1
    assert sum(not o.is_duplicate for o in outcomes) == 1
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.UPLOAD_RECEIVED).count() == 1
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.UPLOAD_ACCEPTED).count() == 1


def test_report_survives_markup_and_control_characters(api_as, wade, louis, data_request):
    rows = samples.good_rows(2)
    rows[0]["amount"] = "<b>&\x01\x1f"
    rows[1]["payment_status"] = "@SUM(1)"
    response = send(api_as(wade), data_request, samples.csv_bytes(rows))
    upload_id = response.json()["upload_id"]
    xlsx = api_as(louis).get(f"/api/kolable/uploads/{upload_id}/report.xlsx")
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    lines = {row[3]: row for row in sheet.iter_rows(min_row=4, values_only=True)}
    assert lines["bad_amount"][1] == 2 and lines["bad_amount"][4] == "<b>&"
    assert lines["unknown_payment_status"][4] == "'@SUM(1)"
    assert lines["unknown_payment_status"][5].startswith("payment_status「@SUM(1)」")


def test_an_accepted_upload_imports_through_the_frame_contract(api_as, wade, data_request):
    """The import (issue imp) reads what the upload kept, end to end."""
    from reconciliation.models import OrderRow
    from reconciliation.services.imports import import_upload

    rows = samples.good_rows(6)
    rows[0]["customer_key"] = "buyer@example.com"
    rows[5]["created_at"] = "2026/5/20 下午 09:30:00"
    response = send(api_as(wade), data_request, samples.csv_bytes(rows, encoding="cp950"))
    assert response.status_code == 201
    result = import_upload(upload_id=response.json()["upload_id"])
    assert result.row_count == 6
    assert result.paid_count + result.pending_count + result.refunded_count == 6
    stored = OrderRow.objects.filter(reconciliation_import=result).order_by("row_number")
    assert [r.row_number for r in stored] == [2, 3, 4, 5, 6, 7]
    assert "buyer@example.com" not in {r.customer_key for r in stored}
    assert stored[5].created_at.isoformat() == "2026-05-20T13:30:00+00:00"
