"""The escalation sweep (the "no file by due date" rule):
due-time boundaries in Asia/Taipei, one escalation / blocker card / reminder
per day however often and however concurrently the schedule runs, and the
upload-vs-escalation race."""

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.db.models import F

from reconciliation import schema, tasks
from reconciliation.models import AuditEvent, DataRequest, Notification, Upload
from reconciliation.services.audit import record_audit
from reconciliation.services.escalation import (
    escalate_overdue_requests,
    escalate_request,
    overdue_text,
)
from reconciliation.services.requests import create_data_request

TAIPEI = ZoneInfo("Asia/Taipei")


def tpe(*args) -> datetime:
    return datetime(*args, tzinfo=TAIPEI)


CREATED = tpe(2026, 5, 23, 9, 0)
DUE = tpe(2026, 5, 24, 0, 0)  # midnight Taipei = 2026-05-23 16:00 UTC


def make_request(louis, *, due_at=DUE, dataset=None, created=CREATED) -> DataRequest:
    with time_machine.travel(created, tick=False):
        return create_data_request(requested_by=louis, due_at=due_at, requested_dataset=dataset)


def sweep_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        return escalate_overdue_requests()


def inbox(username: str, kind: Notification.Kind):
    return Notification.objects.filter(
        recipient__user__username=username, channel=Notification.Channel.INBOX, kind=kind
    )


def escalations(request: DataRequest):
    return AuditEvent.objects.filter(data_request=request, verb=AuditEvent.Verb.REQUEST_ESCALATED)


def test_due_boundary_2359_vs_0000_taipei(louis):
    request = make_request(louis)

    assert sweep_at(tpe(2026, 5, 23, 23, 59, 59)).escalated == []
    # At the due instant itself the file is still on time.
    assert sweep_at(DUE).escalated == []
    request.refresh_from_db()
    assert request.status == DataRequest.Status.OPEN

    result = sweep_at(tpe(2026, 5, 24, 0, 0, 1))
    assert result.escalated == [request.pk]
    request.refresh_from_db()
    assert request.status == DataRequest.Status.ESCALATED
    assert request.escalated_at == tpe(2026, 5, 24, 0, 0, 1)
    # The escalation's reminder is the reminder of Taipei day 05-24 (a UTC
    # day would still be 05-23 here).
    assert request.last_reminder_on.isoformat() == "2026-05-24"
    assert escalations(request).count() == 1
    assert inbox("louis", Notification.Kind.BLOCKER_CARD).count() == 1
    assert inbox("wade", Notification.Kind.OVERDUE_REMINDER).count() == 1


def test_blocker_card_says_what_since_when_who_and_the_decision(louis, wade):
    request = make_request(louis)
    sweep_at(tpe(2026, 5, 24, 2, 30))
    card = inbox("louis", Notification.Kind.BLOCKER_CARD).get()
    assert card.data_request_id == request.pk
    assert card.recipient.username == "louis"
    body = card.body
    assert body.startswith("Louis：")
    assert "缺什麼" in body and "order_id" in body and "owner_note" in body
    assert "2026-05-24 00:00" in body and "已逾期 2 小時 30 分" in body
    assert "誰負責：Wade" in body
    assert "暫停 Kolable 營收認列，或延長交檔期限" in body
    assert f"/requests/{request.pk}/" in body
    assert card.payload["decision_options"] == ["pause_revenue_recognition", "extend_due_at"]
    assert card.payload["data_owner"] == "wade"
    assert card.payload["overdue_by_seconds"] == 2.5 * 3600
    # Louis has an address: the card also goes out by e-mail, queued.
    email = Notification.objects.get(
        dedupe_key=f"escalated:{request.pk}:{int(request.due_at.timestamp())}:blocker:email",
        channel=Notification.Channel.EMAIL,
    )
    assert email.status == Notification.Status.QUEUED

    reminder = inbox("wade", Notification.Kind.OVERDUE_REMINDER).get()
    assert reminder.body.startswith("Wade：")
    for column in schema.COLUMN_NAMES:
        assert column in reminder.body
    assert "/template.xlsx" in reminder.body
    assert "已升級給 Louis" in reminder.body


def test_running_the_sweep_again_adds_nothing(louis):
    request = make_request(louis)
    sweep_at(tpe(2026, 5, 24, 0, 1))
    before = (Notification.objects.count(), AuditEvent.objects.count())
    for minute in range(2, 6):
        result = sweep_at(tpe(2026, 5, 24, 0, minute))
        assert result.escalated == [] and result.reminded == []
    assert (Notification.objects.count(), AuditEvent.objects.count()) == before
    assert escalations(request).count() == 1


def test_one_reminder_per_taipei_day(louis):
    request = make_request(louis, due_at=tpe(2026, 5, 24, 23, 50))
    assert sweep_at(tpe(2026, 5, 24, 23, 58)).escalated == [request.pk]
    assert sweep_at(tpe(2026, 5, 24, 23, 59, 30)).reminded == []
    # Two minutes later, but a new day in Taipei: the next reminder.
    assert sweep_at(tpe(2026, 5, 25, 0, 0)).reminded == [request.pk]
    assert sweep_at(tpe(2026, 5, 25, 0, 0, 30)).reminded == []
    assert sweep_at(tpe(2026, 5, 25, 23, 59, 59)).reminded == []
    assert sweep_at(tpe(2026, 5, 26, 0, 0)).reminded == [request.pk]

    reminders = inbox("wade", Notification.Kind.OVERDUE_REMINDER)
    assert sorted(n.payload["reminder_day"] for n in reminders) == [
        "2026-05-24",
        "2026-05-25",
        "2026-05-26",
    ]
    assert "已逾期 1 天" in reminders.get(payload__reminder_day="2026-05-26").body
    assert inbox("louis", Notification.Kind.BLOCKER_CARD).count() == 1
    assert (
        AuditEvent.objects.filter(
            data_request=request, verb=AuditEvent.Verb.REQUEST_REMINDED
        ).count()
        == 2
    )
    request.refresh_from_db()
    assert request.last_reminder_on.isoformat() == "2026-05-26"


def _upload(request, wade, status, name):
    return Upload.objects.create(
        data_request=request,
        uploaded_by=wade.profile,
        original_name=f"{name}.csv",
        size=10,
        sha256=name.encode().hex().ljust(64, "0")[:64],
        storage_path=f"uploads/{name}",
        schema_status=status,
    )


def test_which_statuses_escalate(louis, wade):
    made = {
        status: make_request(louis, dataset=f"export {status}")
        for status in ("open", "uploaded", "schema_failed", "accepted", "closed")
    }
    for status, request in made.items():
        DataRequest.objects.filter(pk=request.pk).update(status=status)
    # Accepted upload already written, status not yet caught up: no escalation.
    racing = make_request(louis, dataset="export racing")
    DataRequest.objects.filter(pk=racing.pk).update(status=DataRequest.Status.UPLOADED)
    _upload(racing, wade, Upload.SchemaStatus.ACCEPTED, "racing")
    not_due = make_request(louis, dataset="export later", due_at=tpe(2026, 5, 25, 0, 0))

    result = sweep_at(tpe(2026, 5, 24, 0, 5))
    assert set(result.escalated) == {
        made["open"].pk,
        made["uploaded"].pk,
        made["schema_failed"].pk,
    }
    statuses = dict(DataRequest.objects.values_list("requested_dataset", "status"))
    assert statuses["export accepted"] == "accepted"
    assert statuses["export closed"] == "closed"
    assert statuses["export racing"] == "uploaded"
    assert DataRequest.objects.get(pk=not_due.pk).status == "open"


def test_missing_fields_named_and_one_card_when_it_comes_back(louis, wade):
    request = make_request(louis)
    DataRequest.objects.filter(pk=request.pk).update(
        status=DataRequest.Status.SCHEMA_FAILED, missing_fields=["payment_ref", "source_event"]
    )
    sweep_at(tpe(2026, 5, 24, 1, 0))
    card = inbox("louis", Notification.Kind.BLOCKER_CARD).get()
    assert "上次上傳缺少欄位：payment_ref、source_event" in card.body
    # Wade sends another bad file the same day: schema_failed again, still
    # overdue. It escalates again, but Louis keeps one card and Wade one
    # reminder for the day.
    DataRequest.objects.filter(pk=request.pk).update(status=DataRequest.Status.SCHEMA_FAILED)
    assert sweep_at(tpe(2026, 5, 24, 9, 0)).escalated == [request.pk]
    assert inbox("louis", Notification.Kind.BLOCKER_CARD).count() == 1
    assert inbox("wade", Notification.Kind.OVERDUE_REMINDER).count() == 1
    second = escalations(request).order_by("id").last()
    assert second.data["blocker_card_sent"] is False
    assert "阻塞卡" not in second.message


def accept_like_the_upload(request, wade, name="good"):
    """The upload's final compare-and-set as frame.md fixes it: accept from any
    state that still awaits a file, escalated included."""
    upload = _upload(request, wade, Upload.SchemaStatus.ACCEPTED, name)
    changed = DataRequest.objects.filter(
        pk=request.pk, status__in=DataRequest.AWAITING_FILE
    ).update(status=DataRequest.Status.ACCEPTED, artifact_ref=str(upload.pk))
    if changed:
        record_audit(
            verb=AuditEvent.Verb.UPLOAD_ACCEPTED,
            actor=wade.profile,
            data_request=request,
            message="accepted",
        )
    return changed


def test_upload_after_escalation_wins_and_history_keeps_both(louis, wade):
    request = make_request(louis)
    # The schedule flips it first, the upload's accept lands a moment later.
    sweep_at(tpe(2026, 5, 24, 0, 0, 1))
    with time_machine.travel(tpe(2026, 5, 24, 0, 0, 2), tick=False):
        assert accept_like_the_upload(request, wade) == 1
    request.refresh_from_db()
    assert request.status == DataRequest.Status.ACCEPTED
    # Later sweeps leave the accepted request alone and stop reminding.
    result = sweep_at(tpe(2026, 5, 25, 9, 0))
    assert result.escalated == [] and result.reminded == []
    request.refresh_from_db()
    assert request.status == DataRequest.Status.ACCEPTED
    verbs = list(
        AuditEvent.objects.filter(data_request=request)
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        AuditEvent.Verb.REQUEST_CREATED,
        AuditEvent.Verb.REQUEST_ESCALATED,
        AuditEvent.Verb.UPLOAD_ACCEPTED,
    ]


def test_upload_that_wins_the_race_is_never_escalated(louis, wade):
    request = make_request(louis)
    # The sweep has already listed the request as overdue when the accept
    # commits; its own compare-and-set then finds nothing to flip.
    accept_like_the_upload(request, wade)
    assert escalate_request(request_id=request.pk, now=tpe(2026, 5, 24, 0, 1)) is False
    request.refresh_from_db()
    assert request.status == DataRequest.Status.ACCEPTED
    assert not escalations(request).exists()
    assert not inbox("louis", Notification.Kind.BLOCKER_CARD).exists()


def test_task_only_calls_the_service(louis):
    request = make_request(louis)
    DataRequest.objects.filter(pk=request.pk).update(due_at=F("created_at"))
    assert tasks.escalate_overdue_requests() == {"escalated": [str(request.pk)], "reminded": []}
    assert tasks.escalate_overdue_requests() == {"escalated": [], "reminded": []}


def test_overdue_text():
    assert overdue_text(30) == "1 分鐘"
    assert overdue_text(5 * 60) == "5 分鐘"
    assert overdue_text(3 * 3600 + 5 * 60) == "3 小時 5 分"
    assert overdue_text(2 * 3600) == "2 小時"
    assert overdue_text(86400) == "1 天"
    assert overdue_text(2 * 86400 + 3 * 3600) == "2 天 3 小時"


def _run_concurrently(workers: int, target):
    """Start `workers` threads at once (barrier); each uses its own database
    connection, as separate qcluster workers do."""
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_escalate_once_card_once_remind_once_a_day(louis):
    request = make_request(louis)
    first = tpe(2026, 5, 24, 0, 1)
    results = _run_concurrently(4, lambda: escalate_overdue_requests(now=first))
    assert sorted(len(r.escalated) for r in results) == [0, 0, 0, 1]
    assert escalations(request).count() == 1
    assert inbox("louis", Notification.Kind.BLOCKER_CARD).count() == 1
    assert inbox("wade", Notification.Kind.OVERDUE_REMINDER).count() == 1

    next_day = tpe(2026, 5, 25, 0, 0, 5)
    results = _run_concurrently(4, lambda: escalate_overdue_requests(now=next_day))
    assert sorted(len(r.reminded) for r in results) == [0, 0, 0, 1]
    assert inbox("wade", Notification.Kind.OVERDUE_REMINDER).count() == 2
    assert inbox("louis", Notification.Kind.BLOCKER_CARD).count() == 1
    # Every channel copy is single too (inbox + e-mail for each person).
    assert (
        Notification.objects.filter(kind=Notification.Kind.OVERDUE_REMINDER)
        .values("channel", "payload__reminder_day")
        .distinct()
        .count()
        == Notification.objects.filter(kind=Notification.Kind.OVERDUE_REMINDER).count()
    )
