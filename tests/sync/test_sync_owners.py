"""What the owners hear and what PLS is told after a run; the schedule."""

import io
from datetime import datetime, timedelta

import time_machine
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from reconciliation.models import Notification, Order, SyncRun, Upload
from reconciliation.selectors.dispatch import JobType, Rule, next_job
from reconciliation.services.revenue.decision import record_revenue_decision
from reconciliation.services.sync import execute_run, request_sync, sync_due_sources
from tests.sync.conftest import Sleeps


def _run(source, **kwargs):
    run, _created = request_sync(source=source)
    return execute_run(run_id=run.pk, **kwargs)


def _digest(run, who):
    return Notification.objects.filter(
        kind=Notification.Kind.SYNC_DIGEST,
        channel=Notification.Channel.INBOX,
        recipient__user__username=who,
        payload__run_id=str(run.pk),
    )


def test_rows_the_validator_refuses_fail_the_run_and_tell_wade(stub, make_source, project):
    stub.data.bad_orders = 4
    source = make_source(stub)
    run = _run(source)
    assert (run.status, run.error_code) == (SyncRun.Status.FAILED, "invalid_data")
    assert run.upload.schema_status == Upload.SchemaStatus.SCHEMA_FAILED
    assert run.upload.row_error_totals == {"negative_amount": 4}
    assert run.reconciliation_import_id is None
    assert Order.objects.filter(project=project).count() == 0
    source.refresh_from_db()
    assert source.cursor is None
    (wade,) = _digest(run, "wade")
    assert wade.params["data_errors_text"] == "4"
    assert "4 筆資料沒有通過欄位驗證" in wade.body
    assert not _digest(run, "huber").exists()
    # The source is fixed: the whole window comes in on the next run.
    stub.data.bad_orders = 0
    again = _run(source)
    assert (again.status, again.new_orders) == (SyncRun.Status.SUCCEEDED, 300)


def test_louis_hears_of_changes_after_his_decision(stub, make_source, louis):
    source = make_source(stub)
    _run(source)
    record_revenue_decision(project=source.project, decided_by=louis, decision="approve", note="ok")
    stub.data.advance(4)
    run = _run(source)
    assert run.changed_orders == 4
    (digest,) = _digest(run, "louis")
    assert digest.params["has_decision"] is True
    assert "認列後數字有變" in digest.subject
    # The digest is Louis's one message for the run, not a second beside it.
    assert not Notification.objects.filter(
        kind=Notification.Kind.BOOK_CHANGED, recipient__user__username="louis"
    ).exists()


def test_dispatch_follows_the_source(stub, make_source, project):
    source = make_source(stub)
    _run(source)
    # The orders come by themselves (no data request for them); what is
    # still owed is the payment provider's settlement file.
    job = next_job(project)
    assert (job.job_type, job.rule) == (JobType.DATA_REQUEST, Rule.NO_SETTLEMENT)
    assert job.evidence["request_kind"] == "settlement"
    stub.faults.fail_auth = True
    failed = _run(source, sleep=Sleeps())
    job = next_job(project)
    assert (job.job_type, job.rule) == (JobType.PEOPLE_SYNC, Rule.HAS_SOURCE)
    assert job.evidence["kind"] == "blocker"
    assert job.evidence["blocker"] == failed.error
    assert job.evidence["people_sync"]["blocker_card_to"] == "louis"


def test_the_schedule_starts_one_run_a_day_at_the_sources_time(stub, make_source):
    make_source(stub)  # 06:00 Taipei
    before = timezone.make_aware(datetime(2026, 12, 3, 5, 59))
    with time_machine.travel(before, tick=False):
        assert sync_due_sources()["started"] == []
    after = timezone.make_aware(datetime(2026, 12, 3, 6, 0, 30))
    with time_machine.travel(after, tick=False):
        (run_id,) = sync_due_sources()["started"]
        assert sync_due_sources()["started"] == []  # the run is there
    run = SyncRun.objects.get(pk=run_id)
    assert (run.trigger, run.status) == (SyncRun.Trigger.SCHEDULE, SyncRun.Status.QUEUED)
    execute_run(run_id=run_id)
    with time_machine.travel(after + timedelta(hours=3), tick=False):
        assert sync_due_sources()["started"] == []  # done for today
    with time_machine.travel(after + timedelta(days=1), tick=False):
        assert len(sync_due_sources()["started"]) == 1


def test_a_run_lost_with_its_worker_is_marked_and_replaced(stub, make_source, settings):
    source = make_source(stub)
    lost, _ = request_sync(source=source)
    SyncRun.objects.filter(pk=lost.pk).update(
        status=SyncRun.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=11)
    )
    run, created = request_sync(source=source)
    assert created and run.pk != lost.pk
    lost.refresh_from_db()
    assert (lost.status, lost.error_code) == (SyncRun.Status.FAILED, "abandoned")


def test_setup_schedules_declares_the_sync_sweep(db):
    call_command("setup_schedules", stdout=io.StringIO())
    call_command("setup_schedules", stdout=io.StringIO())
    (sweep,) = Schedule.objects.filter(name="kolable-sync-due")
    assert sweep.func == "reconciliation.tasks.sync_due_sources"
    assert (sweep.schedule_type, sweep.minutes) == (Schedule.MINUTES, 1)


def test_the_standing_request_of_a_source_is_never_escalated(stub, make_source):
    from reconciliation.models import DataRequest
    from reconciliation.services.escalation import escalate_overdue_requests

    source = make_source(stub)
    DataRequest.objects.filter(pk=source.data_request_id).update(
        due_at=timezone.now() - timedelta(hours=3)
    )
    assert escalate_overdue_requests().escalated == []
    source.data_request.refresh_from_db()
    assert source.data_request.status == DataRequest.Status.OPEN
