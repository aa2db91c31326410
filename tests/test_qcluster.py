"""A real `python manage.py qcluster` against the test database escalates an
overdue request through the schedules `setup_schedules` declares — with the
ORM broker on SQLite, and with Redis when REDIS_URL is set (the PostgreSQL CI
run)."""

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Success

from reconciliation.models import AuditEvent, DataRequest, Notification
from reconciliation.services.requests import create_data_request

BASE_DIR = Path(settings.BASE_DIR)
# django-q2's scheduler runs every 30 s; startup and the task itself fit well
# inside the rest.
DEADLINE_SECONDS = 60


def test_database_url() -> str:
    """The test database as a DATABASE_URL for the subprocess."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def test_setup_schedules_is_idempotent(db):
    call_command("setup_schedules", stdout=io.StringIO())
    first = {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()}
    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    assert "updated kolable-escalation-sweep" in out.getvalue()
    assert {s.name: (s.pk, s.next_run) for s in Schedule.objects.all()} == first
    sweep = Schedule.objects.get(name="kolable-escalation-sweep")
    assert sweep.func == "reconciliation.tasks.escalate_overdue_requests"
    assert (sweep.schedule_type, sweep.minutes, sweep.repeats) == (Schedule.MINUTES, 1, -1)
    assert sweep.next_run is not None and sweep.cluster is None
    delivery = Schedule.objects.get(name="kolable-deliver-notifications")
    assert delivery.func == "reconciliation.tasks.deliver_notifications"
    assert set(first) == {
        "kolable-escalation-sweep",
        "kolable-deliver-notifications",
        "kolable-import-stalled",
        "kolable-validate-stalled",
        "kolable-purge-uploads",
        "kolable-sync-due",
        "kolable-live-figures",
        "heartbeat",
    }
    purge = Schedule.objects.get(name="kolable-purge-uploads")
    assert purge.func == "reconciliation.tasks.purge_expired_uploads"
    # The cluster settings the schedules rely on.
    assert settings.Q_CLUSTER["catch_up"] is False
    assert settings.Q_CLUSTER["retry"] > settings.Q_CLUSTER["timeout"]


def test_setup_schedules_heals_a_duplicate_name(db):
    Schedule.objects.create(
        name="kolable-escalation-sweep", func="old.path", schedule_type="I", minutes=5
    )
    Schedule.objects.create(
        name="kolable-escalation-sweep", func="old.path", schedule_type="I", minutes=5
    )
    call_command("setup_schedules", stdout=io.StringIO())
    (sweep,) = Schedule.objects.filter(name="kolable-escalation-sweep")
    assert sweep.func == "reconciliation.tasks.escalate_overdue_requests" and sweep.minutes == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_qcluster_escalates_an_overdue_request(louis, tmp_path):
    call_command("setup_schedules", stdout=io.StringIO())
    request = create_data_request(requested_by=louis)
    DataRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(minutes=5))

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.qcluster_settings",
        "QCLUSTER_TEST_NAME": f"kolable-test-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": test_database_url(),
        "DATA_DIR": str(tmp_path),
        "QCLUSTER_WORKERS": "1",
        "EMAIL_URL": "dummymail://",
        "NOTIFY_WEBHOOK_URL": "",
        "LINE_CHANNEL_TOKEN": "",
    }
    log_path = tmp_path / "qcluster.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to stop it and its workers
        )
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline:
                assert worker.poll() is None, log_path.read_text()[-3000:]
                status = DataRequest.objects.values_list("status", flat=True).get(pk=request.pk)
                ran = Success.objects.filter(
                    func="reconciliation.tasks.escalate_overdue_requests"
                ).exists()
                if status == DataRequest.Status.ESCALATED and ran:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(
                    f"not escalated within {DEADLINE_SECONDS} s:\n{log_path.read_text()[-3000:]}"
                )
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
            connection.close()

    request.refresh_from_db()
    assert request.escalated_at is not None
    assert (
        AuditEvent.objects.filter(
            data_request=request, verb=AuditEvent.Verb.REQUEST_ESCALATED
        ).count()
        == 1
    )
    inbox = Notification.objects.filter(channel=Notification.Channel.INBOX, data_request=request)
    assert (
        inbox.filter(recipient__user__username="louis", kind=Notification.Kind.BLOCKER_CARD).count()
        == 1
    )
    assert (
        inbox.filter(
            recipient__user__username="wade", kind=Notification.Kind.OVERDUE_REMINDER
        ).count()
        == 1
    )
    assert worker.returncode is not None
