"""The reconciliation import: OrderRows + one ReconciliationImport per upload,
idempotent (also under concurrency), the API and its 409, and every count on
the scorecard equal to the database's."""

import re
import threading

import pytest
from django.db import connection, connections
from django.db.models import Count

from reconciliation import tasks
from reconciliation.models import (
    AuditEvent,
    ImportSummary,
    Notification,
    Order,
    OrderRow,
    ReconciliationImport,
    Upload,
)
from reconciliation.services.frames import kept_path, normalised_cache_path
from reconciliation.services.imports import import_frame, import_upload
from tests.imp_frames import accepted_upload, frame, new_request, order, upload_csv

URL = "/api/kolable/reconciliation/import"


SAMPLE_ORDERS = (
    order("K-1", "paid", 28000, code="EARLY"),
    order("K-2", "paid", 28000, customer="c2", source="LIVE-0513", when="2026-05-13 20:00"),
    order("K-3", "pending", 28000, customer="c3"),
    order("K-4", "refunded", 28000, customer="c4", ref="RF-4"),
    order("K-4b", "paid", 28000, customer="c4", when="2026-05-16 20:00"),
    order("K-2", "paid", 28000, customer="c2", source="LIVE-0513", when="2026-05-13 20:00"),
)


def sample_frame():
    return frame(*SAMPLE_ORDERS)


@pytest.fixture
def data_request(louis):
    return new_request(louis)


def test_import_writes_rows_counts_summary_audit_and_tells_louis(data_request, wade):
    upload = accepted_upload(data_request, wade)
    result = import_frame(upload=upload, frame=sample_frame(), actor=wade)

    assert result.status == ReconciliationImport.Status.ACCEPTED
    assert (result.row_count, result.paid_count, result.pending_count) == (6, 3, 1)
    assert (result.refunded_count, result.duplicate_count) == (1, 1)
    assert result.created_by.username == "wade"
    assert result.scorecard_ref.endswith(f"/scorecard/?import={result.pk}")

    rows = OrderRow.objects.filter(reconciliation_import=result)
    assert rows.count() == 6
    by_class = dict(rows.values_list("classification").annotate(n=Count("id")))
    assert by_class == {"paid": 3, "pending": 1, "refunded": 1, "duplicate": 1}
    rebuy = rows.get(order_id="K-4b")
    assert rebuy.rebuy_of == "K-4"
    assert str(rebuy.amount) == "28000.00"
    assert rebuy.created_at.isoformat() == "2026-05-16T12:00:00+00:00"
    assert list(rows.order_by("row_number").values_list("row_number", flat=True)) == list(
        range(2, 8)
    )

    summary = ImportSummary.objects.get(pk=result.pk)
    assert summary.effective_status == "accepted"
    assert summary.totals["paid_amount"] == 28000 * 3
    assert summary.totals["rebuy_orders"] == 1
    assert {d["key"] for d in summary.by_source_event} == {"LIVE-0512", "LIVE-0513"}

    event = AuditEvent.objects.get(verb=AuditEvent.Verb.IMPORT_DONE)
    assert event.data["import_id"] == str(result.pk) and event.data["paid_count"] == 3
    card = Notification.objects.get(
        kind=Notification.Kind.IMPORT_DONE, channel="inbox", recipient__user__username="louis"
    )
    assert "NT$84,000" in card.body and "/scorecard/" in card.body
    assert "新訂單 5" in card.body  # six rows, one repeat inside the file
    wade_card = Notification.objects.get(
        kind=Notification.Kind.IMPORT_DONE, channel="inbox", recipient__user__username="wade"
    )
    assert "新訂單 5" in wade_card.body


def test_import_is_idempotent_per_upload(data_request, wade):
    upload = accepted_upload(data_request, wade)
    first = import_frame(upload=upload, frame=sample_frame())
    again = import_frame(upload=upload, frame=sample_frame())
    assert again.pk == first.pk
    assert import_upload(upload_id=upload.pk).pk == first.pk
    assert ReconciliationImport.objects.count() == 1
    assert OrderRow.objects.count() == 6


def test_the_task_imports_and_returns_quietly_for_a_vanished_upload(data_request, wade):
    upload = accepted_upload(data_request, wade)
    import_frame(upload=upload, frame=sample_frame())
    assert tasks.import_upload(str(upload.pk)) == str(upload.reconciliation_import.pk)
    assert tasks.import_upload("00000000-0000-0000-0000-000000000000") is None


def test_an_upload_that_was_not_accepted_is_not_imported(data_request, wade):
    upload = accepted_upload(data_request, wade)
    Upload.objects.filter(pk=upload.pk).update(schema_status=Upload.SchemaStatus.SCHEMA_FAILED)
    assert "upload_not_accepted" in tasks.import_upload(str(upload.pk))
    assert not ReconciliationImport.objects.exists()


def test_orders_of_an_earlier_import_are_versions_not_duplicates(data_request, wade):
    """Only a repeat inside one file is a duplicate: a later file's row for a
    known order is the same order, unchanged or changed."""
    first = import_frame(upload=accepted_upload(data_request, wade), frame=sample_frame())
    second = import_frame(
        upload=accepted_upload(data_request, wade, name="orders-v2.csv", mode="incremental"),
        frame=frame(
            SAMPLE_ORDERS[0],  # K-1 as in the first file
            order("K-9", "paid", 28000, customer="c9"),
            {**SAMPLE_ORDERS[1], "amount": 27000},  # K-2 again, another amount
        ),
    )
    assert first.duplicate_count == 1
    assert (second.duplicate_count, second.paid_count) == (0, 3)
    assert second.status == ReconciliationImport.Status.ACCEPTED
    book = second.summary.book
    assert (book["new_orders"], book["changed_orders"], book["unchanged_orders"]) == (1, 1, 1)
    assert book["changes"] == {"amount": 1}


def test_an_import_of_another_request_is_independent(louis, wade, data_request):
    import_frame(upload=accepted_upload(data_request, wade), frame=sample_frame())
    other = new_request(louis, requested_dataset="2026-05-22..2026-05-31 export")
    second = import_frame(upload=accepted_upload(other, wade), frame=sample_frame())
    assert second.duplicate_count == 1  # only its own in-file repeat


# --- API ---------------------------------------------------------------------------


def test_api_409_without_an_accepted_upload(api_as, pls_api, louis, wade, data_request):
    response = pls_api.post(URL, {"data_request_id": str(data_request.pk)})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "no_accepted_upload"
    assert "還沒有任何上傳檔案" in body["detail"]["message"]

    failed = accepted_upload(data_request, wade, name="bad.csv")
    Upload.objects.filter(pk=failed.pk).update(
        schema_status=Upload.SchemaStatus.SCHEMA_FAILED, missing_fields=["payment_status"]
    )
    response = api_as(louis).post(URL, {"data_request_id": str(data_request.pk)})
    assert response.status_code == 409
    assert "payment_status" in response.json()["detail"]["message"]
    assert not ReconciliationImport.objects.exists()


def test_api_404_and_422(pls_api):
    missing = pls_api.post(URL, {"data_request_id": "00000000-0000-0000-0000-000000000000"})
    assert missing.status_code == 404
    assert pls_api.post(URL, {"data_request_id": "nope"}).status_code == 422


@pytest.mark.parametrize(
    "who,status", [("pls", 201), ("louis", 201), ("wade", 201), ("huber", 403), ("outsider", 403)]
)
def test_api_roles(request, api_as, pls_api, data_request, who, status):
    upload_csv(pls_api, data_request, SAMPLE_ORDERS)
    user = "pls" if who == "pls" else request.getfixturevalue(who)
    response = api_as(user).post(URL, {"data_request_id": str(data_request.pk)})
    assert response.status_code == status, response.content
    assert ReconciliationImport.objects.exists() == (status == 201)


def test_api_import_twice_answers_with_the_first_import(api_as, pls_api, wade, data_request):
    upload = upload_csv(api_as(wade), data_request, SAMPLE_ORDERS)
    first = pls_api.post(URL, {"data_request_id": str(data_request.pk)})
    second = pls_api.post(URL, {"data_request_id": str(data_request.pk)})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    body = first.json()
    assert body["upload_id"] == str(upload.pk)
    assert {k: body[k] for k in ("row_count", "paid_count", "pending_count")} == {
        "row_count": 6,
        "paid_count": 3,
        "pending_count": 1,
    }
    assert (body["refunded_count"], body["duplicate_count"], body["status"]) == (1, 1, "accepted")
    assert body["scorecard_ref"].endswith(f"/scorecard/?import={body['id']}")
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.IMPORT_DONE).count() == 1
    rows = OrderRow.objects.filter(reconciliation_import_id=body["id"])
    assert rows.get(order_id="K-4b").rebuy_of == "K-4"


# --- Concurrency ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_imports_of_one_upload_make_one_import(louis, wade):
    data_request = new_request(louis)
    upload = accepted_upload(data_request, wade)
    big = frame(*(order(f"C-{i}", "paid", 1000 + i, customer=f"c{i}") for i in range(3000)))
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            results.append(import_frame(upload=upload, frame=big).pk)
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert ReconciliationImport.objects.count() == 1
    assert OrderRow.objects.count() == 3000
    assert AuditEvent.objects.filter(verb=AuditEvent.Verb.IMPORT_DONE).count() == 1
    assert connection.vendor in ("sqlite", "postgresql")


# --- The page shows the database's counts ------------------------------------------


def _number(html, testid):
    match = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert match, testid
    return int(re.sub(r"[^\d]", "", match.group(1)))


def test_every_count_on_the_page_equals_the_database(client, louis, wade, data_request):
    upload = accepted_upload(data_request, wade)
    imported = import_frame(
        upload=upload,
        frame=sample_frame()._append(
            frame(order("K-7", "paid", 28000, customer="c7", ref="RF-7"), first_row=8)
        ),
    )
    client.force_login(louis)
    html = client.get("/scorecard/").content.decode()
    rows = OrderRow.objects.filter(reconciliation_import=imported)
    db = dict(rows.values_list("classification").annotate(n=Count("id")))
    assert _number(html, "import-new") == Order.objects.count() == 6
    assert _number(html, "total-duplicates") == db["duplicate"] == 1
    assert _number(html, "total-rebuys") == rows.exclude(rebuy_of="").count() == 1
    flagged = rows.exclude(exception_code="")
    assert html.count('data-testid="exception-row"') == flagged.count() == 1
    paid_sum = sum(r.amount for r in rows.filter(classification="paid", exception_code=""))
    assert _number(html, "total-paid") == paid_sum == 84000
    gmv = sum(r.amount for r in rows.exclude(classification="duplicate"))
    assert _number(html, "total-gmv") == gmv


def test_rows_survive_the_bulk_insert_byte_for_byte(data_request, wade, monkeypatch):
    """Several batches, and text COPY would misread (tab, newline, backslash,
    quotes, Chinese) — on both databases the stored row is the exported one."""
    from reconciliation import bulk

    monkeypatch.setattr(bulk, "INSERT_BATCH", 2)  # five batches for five rows
    odd = 'a\tb\\c\nd "引號" ,; \\N'
    orders = [
        order(f"B-{i}", "paid", 100 + i, customer=f"c{i}", when=f"2026-05-1{i + 2} 0{i}:30")
        for i in range(4)
    ]
    orders.append({**order("B-odd", "pending", 1.5, customer="odd"), "owner_note": odd})
    result = import_frame(upload=accepted_upload(data_request, wade), frame=frame(*orders))
    rows = {r.order_id: r for r in OrderRow.objects.filter(reconciliation_import=result)}
    assert len(rows) == 5
    assert rows["B-odd"].owner_note == odd
    assert str(rows["B-odd"].amount) == "1.50"
    assert rows["B-3"].created_at.isoformat() == "2026-05-14T19:30:00+00:00"  # 03:30 Taipei, 5/15
    assert [rows[f"B-{i}"].row_number for i in range(4)] == [2, 3, 4, 5]


# --- The automatic import: a real django-q2 worker ------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cached_frame_goes_once_its_import_committed_and_the_bytes_stay(louis, wade, api_as):
    data_request = new_request(louis)
    upload = upload_csv(api_as(wade), data_request, SAMPLE_ORDERS)
    cache = normalised_cache_path(upload.pk)
    assert cache.exists()
    imported = import_upload(upload_id=upload.pk)
    assert not cache.exists()
    assert kept_path(upload).exists()
    # Asked again (a late task, the sweep): the same import, nothing re-read.
    assert import_upload(upload_id=upload.pk).pk == imported.pk
    assert ReconciliationImport.objects.filter(upload=upload).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_accepted_upload_is_imported_by_the_worker_on_its_own(
    louis, wade, api_as, tmp_path, monkeypatch
):
    """Wade's upload commits → queue_import (on commit) → a real `qcluster`
    subprocess runs tasks.import_upload → the import exists; nobody called
    the import API."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from django.conf import settings
    from django_q.conf import Conf

    from tests.test_qcluster import BASE_DIR, test_database_url

    # This process enqueues under the worker's own cluster name, so a shared
    # Redis (the PostgreSQL CI run) never hands the task to another run.
    name = f"kolable-imp-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(Conf, "PREFIX", name)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.qcluster_settings",
        "QCLUSTER_TEST_NAME": name,
        "DATABASE_URL": test_database_url(),
        "DATA_DIR": str(settings.DATA_DIR),
        "QCLUSTER_WORKERS": "1",
        "EMAIL_URL": "dummymail://",
        "NOTIFY_WEBHOOK_URL": "",
        "LINE_CHANNEL_TOKEN": "",
    }
    data_request = new_request(louis)
    log_path = tmp_path / "qcluster.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            upload = upload_csv(api_as(wade), data_request, SAMPLE_ORDERS)
            deadline = time.monotonic() + 60
            while not ReconciliationImport.objects.filter(upload=upload).exists():
                assert worker.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.3)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
            connection.close()
    imported = ReconciliationImport.objects.get(upload=upload)
    assert imported.created_by is None  # the worker, not a person
    assert (imported.row_count, imported.paid_count, imported.duplicate_count) == (6, 3, 1)
    assert OrderRow.objects.filter(reconciliation_import=imported).count() == 6
    assert imported.summary.totals["paid_amount"] == 84000
