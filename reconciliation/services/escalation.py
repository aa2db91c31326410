"""Escalation of overdue data requests (the failure rule
"No file by due date: status becomes escalated; PLS sends Louis a blocker
card").

`escalate_overdue_requests` is what the every-minute django-q2 schedule runs.
It is safe to run twice, late, or on several workers at once:

1. Find requests still owed a file (open, uploaded-but-unchecked,
   schema_failed) whose due time has passed and that have no accepted upload.
2. Flip each one to `escalated` with one conditional UPDATE (compare-and-set).
   Only the call whose UPDATE changed the row writes the audit event, Louis's
   blocker card and Wade's first overdue reminder, in the same transaction.
3. For requests that stay escalated, give Wade one reminder per Asia/Taipei
   calendar day: a second compare-and-set on `last_reminder_on` picks the one
   caller that may write today's reminder.

The Notification `dedupe_key`s (one blocker card per request, one reminder
per request and day) make the same promise a second time, in the database.
Delivery happens later and apart (`services/delivery.py`).
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from reconciliation.message_text import duration_words
from reconciliation.models import (
    AuditEvent,
    DataRequest,
    Notification,
    Profile,
    SyncSource,
    Upload,
)
from reconciliation.services import lifecycle
from reconciliation.services.audit import record_audit
from reconciliation.services.lifecycle import Event
from reconciliation.services.notify import (
    request_links,
    sync_blocker_card,
    sync_overdue_reminder,
    taipei,
)

# Reminder days are Taipei calendar days whatever zone the worker runs in
# (Taiwan has no DST, so a day is always 24 h).
TAIPEI = ZoneInfo("Asia/Taipei")

# What the blocker card asks Louis to decide (machine-readable for LINE/webhooks).
DECISION_OPTIONS = ("pause_revenue_recognition", "extend_due_at")


@dataclass
class SweepResult:
    escalated: list = field(default_factory=list)  # request ids flipped by this call
    reminded: list = field(default_factory=list)  # request ids reminded by this call

    def as_dict(self) -> dict:
        return {
            "escalated": [str(pk) for pk in self.escalated],
            "reminded": [str(pk) for pk in self.reminded],
        }


def taipei_day(moment: datetime) -> date:
    return moment.astimezone(TAIPEI).date()


def overdue_text(seconds: int) -> str:
    """ "2 天 3 小時" / "3 小時 5 分" / "4 分鐘" — how long past due."""
    return duration_words(seconds)


def _overdue(now: datetime) -> Q:
    """Past its due time with no accepted file: a request with one is never
    escalated, even while its status is still catching up. Nor is the
    standing request a sync source feeds: nobody owes it a file."""
    accepted_file = Exists(
        Upload.objects.filter(
            data_request=OuterRef("pk"), schema_status=Upload.SchemaStatus.ACCEPTED
        )
    )
    # EXISTS, not a join: an UPDATE with a join becomes "id IN (subquery)",
    # and PostgreSQL would not re-check the status of a row a concurrent
    # sweep just flipped, so two sweeps could both escalate it.
    fed_by_source = Exists(SyncSource.objects.filter(data_request=OuterRef("pk")))
    return Q(due_at__lt=now) & ~Q(accepted_file) & ~Q(fed_by_source)


def _reminder_due(today) -> Q:
    return Q(last_reminder_on__isnull=True) | Q(last_reminder_on__lt=today)


def escalate_overdue_requests(*, now: datetime | None = None) -> SweepResult:
    """The schedule's sweep: escalate what is newly overdue, then remind
    daily. Returns what this call (and only this call) changed."""
    now = now or timezone.now()
    result = SweepResult()
    # Messages are stored text: write them in the site language, whatever
    # language the caller happens to have active.
    with translation.override(settings.LANGUAGE_CODE):
        overdue = (
            lifecycle.requests_for(Event.OVERDUE, where=_overdue(now))
            .order_by("due_at")
            .values_list("pk", flat=True)
        )
        for pk in list(overdue):
            if escalate_request(request_id=pk, now=now):
                result.escalated.append(pk)

        today = taipei_day(now)
        due_for_reminder = (
            lifecycle.requests_for(Event.REMINDED, where=_reminder_due(today))
            .order_by("due_at")
            .values_list("pk", flat=True)
        )
        for pk in list(due_for_reminder):
            if remind_escalated_request(request_id=pk, now=now):
                result.reminded.append(pk)
    return result


def escalate_request(*, request_id, now: datetime) -> bool:
    """Flip one overdue request to escalated. True only for the caller that
    flipped it; that caller alone writes the audit event and the messages."""
    today = taipei_day(now)
    with transaction.atomic():
        changed = lifecycle.move(
            request_id,
            Event.OVERDUE,
            where=_overdue(now),
            now=now,
            escalated_at=now,
            # The overdue reminder written below is today's reminder.
            last_reminder_on=today,
        )
        if not changed:
            return False
        data_request, louis, wade = _request_and_people(request_id)
        overdue_seconds = int((now - data_request.due_at).total_seconds())
        # A request can come back here (escalated, then a failed upload, still
        # overdue): the dedupe keys keep that to one card and one reminder a
        # day, and the audit message says what was actually sent.
        card = _queue_blocker_card(data_request, louis=louis, wade=wade, now=now)
        reminder = _queue_overdue_reminder(data_request, wade=wade, louis=louis, now=now, day=today)
        sent = []
        if card:
            sent.append(_("已送 %(louis)s 阻塞卡") % {"louis": louis})
        if reminder:
            sent.append(_("已提醒 %(wade)s") % {"wade": wade})
        record_audit(
            verb=AuditEvent.Verb.REQUEST_ESCALATED,
            data_request=data_request,
            message=_("已過到期時間 %(due)s 仍無通過驗收的檔案：升級為逾期。")
            % {"due": taipei(data_request.due_at)}
            + ("、".join(sent) + "。" if sent else ""),
            due_at=data_request.due_at.isoformat(),
            overdue_by_seconds=overdue_seconds,
            data_owner=wade.username,
            blocker_to=louis.username,
            blocker_card_sent=bool(card),
            reminder_sent=bool(reminder),
            missing_fields=data_request.missing_fields,
        )
    return True


def _request_and_people(request_id) -> tuple[DataRequest, Profile, Profile]:
    """The request with who gets its messages: Louis (the project owner, else
    whoever asked) and Wade (the data owner)."""
    data_request = DataRequest.objects.select_related(
        "project__owner_profile__user",
        "data_owner_profile__user",
        "requested_by_profile__user",
    ).get(pk=request_id)
    louis = data_request.project.owner_profile or data_request.requested_by_profile
    return data_request, louis, data_request.data_owner_profile


def remind_escalated_request(*, request_id, now: datetime) -> bool:
    """Today's reminder to the data owner of a request that stays escalated;
    at most one per Taipei day, whoever calls and however often."""
    today = taipei_day(now)
    with transaction.atomic():
        changed = lifecycle.move(
            request_id, Event.REMINDED, where=_reminder_due(today), now=now, last_reminder_on=today
        )
        if not changed:
            return False
        data_request, louis, wade = _request_and_people(request_id)
        written = _queue_overdue_reminder(data_request, wade=wade, louis=louis, now=now, day=today)
        if written:
            record_audit(
                verb=AuditEvent.Verb.REQUEST_REMINDED,
                data_request=data_request,
                message=_("仍未交檔：%(day)s 提醒 %(wade)s（每天一次）。")
                % {"day": today.isoformat(), "wade": wade},
                day=today.isoformat(),
                data_owner=wade.username,
            )
    return bool(written)


def _payload(data_request: DataRequest, *, now: datetime, louis: Profile, wade: Profile) -> dict:
    overdue_seconds = max(0, int((now - data_request.due_at).total_seconds()))
    return {
        "data_request_id": str(data_request.pk),
        "project": data_request.project.name,
        "requested_dataset": data_request.requested_dataset,
        "status": DataRequest.Status.ESCALATED.value,
        "data_owner": wade.username,
        "owner": louis.username,
        "due_at": timezone.localtime(data_request.due_at).isoformat(),
        "overdue_since": timezone.localtime(data_request.due_at).isoformat(),
        "overdue_by_seconds": overdue_seconds,
        "missing_fields": data_request.missing_fields,
        **request_links(data_request),
    }


def _queue_blocker_card(data_request: DataRequest, *, louis: Profile, wade: Profile, now):
    """Louis's blocker card (templates/notifications/blocker_card.txt)."""
    payload = _payload(data_request, now=now, louis=louis, wade=wade)
    payload["decision_options"] = list(DECISION_OPTIONS)
    return sync_blocker_card(data_request, now=now, payload=payload)


def _queue_overdue_reminder(
    data_request: DataRequest, *, wade: Profile, louis: Profile, now, day: date
) -> list[Notification]:
    """Wade's overdue reminder for `day` (templates/notifications/overdue_reminder.txt)."""
    payload = _payload(data_request, now=now, louis=louis, wade=wade)
    payload["reminder_day"] = day.isoformat()
    return sync_overdue_reminder(data_request, now=now, day=day, payload=payload)
