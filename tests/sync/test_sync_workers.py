"""Runs and workers: two workers asked to pull the same source at once make
one run; a worker killed mid-run loses nothing and doubles nothing."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from reconciliation.kolable_stub import KolableApiStub
from reconciliation.models import Order, OrderRow, SyncRun
from reconciliation.services.sync import execute_run, request_sync
from tests.sync.conftest import TOKEN
from tests.test_qcluster import test_database_url

BASE_DIR = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_asked_at_once_make_one_run(stub, make_source, project):
    source = make_source(stub)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            run, created = request_sync(source=source)
            results.append((run.pk, created, execute_run(run_id=run.pk).status))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len({run_id for run_id, _created, _status in results}) == 1
    assert sorted(created for _id, created, _status in results) == [False, True]
    assert SyncRun.objects.count() == 1
    (run,) = SyncRun.objects.all()
    assert (run.status, run.new_orders) == (SyncRun.Status.SUCCEEDED, 300)
    assert stub.stats["pages"] == 3  # pulled once
    assert Order.objects.filter(project=project).count() == 300


def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(make_source, project, tmp_path):
    stub = KolableApiStub(orders=3000, seed=11, token=TOKEN).start()
    try:
        stub.faults.page_delay = 0.2
        source = make_source(stub)  # pages of 100: 30 pages, 6 s at least
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "DATA_DIR": str(tmp_path),
            "SYNC_ALLOWED_HOSTS": "127.0.0.1",
            "EMAIL_URL": "dummymail://",
            "NOTIFY_WEBHOOK_URL": "",
            "LINE_CHANNEL_TOKEN": "",
        }
        log_path = tmp_path / "sync.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "sync_source", str(source.pk)],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    assert worker.poll() is None, log_path.read_text()[-3000:]
                    pages = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).values_list(
                        "pages", flat=True
                    )
                    if pages and pages[0] >= 3:
                        break
                    time.sleep(0.1)
                else:
                    pytest.fail(f"the run never got going:\n{log_path.read_text()[-3000:]}")
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(timeout=10)
        (killed,) = SyncRun.objects.all()
        assert killed.status == SyncRun.Status.RUNNING and 3 <= killed.pages < 30
        source.refresh_from_db()
        assert source.cursor is None  # nothing committed, nothing claimed
        assert Order.objects.filter(project=project).count() == 0
        # While the dead run's heartbeat is fresh, asking again answers it.
        same, created = request_sync(source=source)
        assert (same.pk, created) == (killed.pk, False)
        # Once it is stale, it is marked abandoned and a new run pulls the window.
        stub.faults.page_delay = 0.0
        later = timezone.now() + timedelta(minutes=settings.SYNC_STALE_MINUTES + 1)
        run, created = request_sync(source=source, now=later)
        assert created
        run = execute_run(run_id=run.pk)
        killed.refresh_from_db()
        assert (killed.status, killed.error_code) == (SyncRun.Status.FAILED, "abandoned")
        assert (run.status, run.rows, run.new_orders) == (SyncRun.Status.SUCCEEDED, 3000, 3000)
        assert Order.objects.filter(project=project).count() == 3000
        assert (
            OrderRow.objects.filter(reconciliation_import__data_request=source.data_request).count()
            == 3000
        )
    finally:
        stub.stop()
        connection.close()
