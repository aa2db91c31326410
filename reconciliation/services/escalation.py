"""Escalation of overdue data requests (SPEC §6, the seed's failure rule
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
from django.utils.translation import ngettext

from reconciliation.models import AuditEvent, DataRequest, Notification, Profile, Upload
from reconciliation.services.audit import record_audit
from reconciliation.services.notify import (
    period_label,
    queue_message,
    request_links,
    schema_columns_text,
    taipei,
)

# Reminder days are Taipei calendar days whatever zone the worker runs in
# (Taiwan has no DST, so a day is always 24 h).
TAIPEI = ZoneInfo("Asia/Taipei")

# Still owed a file and not yet escalated. ESCALATED itself is not here: a
# request that is already escalated must not be escalated again.
ESCALATABLE = (
    DataRequest.Status.OPEN,
    DataRequest.Status.UPLOADED,
    DataRequest.Status.SCHEMA_FAILED,
)

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
    minutes = max(0, seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days and hours:
        return _("%(days)d 天 %(hours)d 小時") % {"days": days, "hours": hours}
    if days:
        return ngettext("%(days)d 天", "%(days)d 天", days) % {"days": days}
    if hours and mins:
        return _("%(hours)d 小時 %(minutes)d 分") % {"hours": hours, "minutes": mins}
    if hours:
        return ngettext("%(hours)d 小時", "%(hours)d 小時", hours) % {"hours": hours}
    return ngettext("%(minutes)d 分鐘", "%(minutes)d 分鐘", max(mins, 1)) % {
        "minutes": max(mins, 1)
    }


def _awaiting_accepted_upload():
    """True for a request that has an accepted file: such a request is never
    escalated, even while its status is still catching up."""
    return Exists(
        Upload.objects.filter(
            data_request=OuterRef("pk"), schema_status=Upload.SchemaStatus.ACCEPTED
        )
    )


def escalate_overdue_requests(*, now: datetime | None = None) -> SweepResult:
    """The schedule's sweep: escalate what is newly overdue, then remind
    daily. Returns what this call (and only this call) changed."""
    now = now or timezone.now()
    result = SweepResult()
    # Messages are stored text: write them in the site language, whatever
    # language the caller happens to have active.
    with translation.override(settings.LANGUAGE_CODE):
        overdue = (
            DataRequest.objects.filter(status__in=ESCALATABLE, due_at__lt=now)
            .exclude(_awaiting_accepted_upload())
            .order_by("due_at")
            .values_list("pk", flat=True)
        )
        for pk in list(overdue):
            if escalate_request(request_id=pk, now=now):
                result.escalated.append(pk)

        today = taipei_day(now)
        due_for_reminder = (
            DataRequest.objects.filter(status=DataRequest.Status.ESCALATED)
            .filter(Q(last_reminder_on__isnull=True) | Q(last_reminder_on__lt=today))
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
        changed = (
            DataRequest.objects.filter(pk=request_id, status__in=ESCALATABLE, due_at__lt=now)
            .exclude(_awaiting_accepted_upload())
            .update(
                status=DataRequest.Status.ESCALATED,
                escalated_at=now,
                # The overdue reminder written below is today's reminder.
                last_reminder_on=today,
                updated_at=now,
            )
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
        changed = (
            DataRequest.objects.filter(pk=request_id, status=DataRequest.Status.ESCALATED)
            .filter(Q(last_reminder_on__isnull=True) | Q(last_reminder_on__lt=today))
            .update(last_reminder_on=today, updated_at=now)
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


def _missing_clause(data_request: DataRequest) -> str:
    if not data_request.missing_fields:
        return ""
    return _("上次上傳缺少欄位：%(fields)s。") % {
        "fields": "、".join(str(f) for f in data_request.missing_fields)
    }


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
    """Louis's blocker card: what is missing, since when, who owns it, and the
    decision asked of him. One per request, ever (dedupe key)."""
    project = data_request.project
    links = request_links(data_request)
    overdue_seconds = int((now - data_request.due_at).total_seconds())
    body = "\n".join(
        line
        for line in (
            _("%(louis)s：%(project)s 的 %(period)s 訂單付款檔已逾期，到現在仍沒有通過驗收的檔案。")
            % {"louis": louis, "project": project.name, "period": period_label(data_request)},
            _("缺什麼：%(dataset)s（CSV/XLSX，欄位 %(columns)s）。%(missing)s")
            % {
                "dataset": data_request.requested_dataset,
                "columns": schema_columns_text(),
                "missing": _missing_clause(data_request),
            },
            _("從何時：%(due)s（台北時間）到期，已逾期 %(overdue)s。")
            % {"due": taipei(data_request.due_at), "overdue": overdue_text(overdue_seconds)},
            _("誰負責：%(wade)s（資料負責人），每天會收到一次提醒。") % {"wade": wade},
            _(
                "請你決定：暫停 %(project)s revenue 認列，或延長交檔期限。"
                "未交檔前 revenue 維持未驗證、不認列；PLS 不再產 generic strategy pack。"
            )
            % {"project": project.name},
            links["request_url"],
        )
        if line
    )
    payload = _payload(data_request, now=now, louis=louis, wade=wade)
    payload["decision_options"] = list(DECISION_OPTIONS)
    return queue_message(
        recipient=louis,
        kind=Notification.Kind.BLOCKER_CARD,
        subject=_("[阻塞] %(project)s 訂單付款檔逾期未交：請決定暫停認列或延期")
        % {"project": project.name},
        body=body,
        data_request=data_request,
        payload=payload,
        # One card per missed due time: a due time Louis extended and that
        # passes again is a new blocker.
        dedupe_key=f"escalated:{data_request.pk}:{int(data_request.due_at.timestamp())}:blocker",
    )


def _queue_overdue_reminder(
    data_request: DataRequest, *, wade: Profile, louis: Profile, now, day: date
) -> list[Notification]:
    """Wade's overdue reminder for `day` (one per request and Taipei day)."""
    project = data_request.project
    links = request_links(data_request)
    overdue_seconds = int((now - data_request.due_at).total_seconds())
    body = "\n".join(
        line
        for line in (
            _(
                "%(wade)s：%(period)s 訂單付款 CSV/XLSX 已於 %(due)s（台北時間）到期，"
                "已逾期 %(overdue)s，仍未收到通過驗收的檔案；已升級給 %(louis)s。"
            )
            % {
                "wade": wade,
                "period": period_label(data_request),
                "due": taipei(data_request.due_at),
                "overdue": overdue_text(overdue_seconds),
                "louis": louis,
            },
            _("請今天上傳，欄位不可少 %(columns)s。%(missing)s")
            % {"columns": schema_columns_text(), "missing": _missing_clause(data_request)},
            _("範本：%(url)s") % {"url": links["template_url"]},
            _("上傳：%(url)s") % {"url": links["request_url"]},
        )
        if line
    )
    payload = _payload(data_request, now=now, louis=louis, wade=wade)
    payload["reminder_day"] = day.isoformat()
    return queue_message(
        recipient=wade,
        kind=Notification.Kind.OVERDUE_REMINDER,
        subject=_("[逾期] 請今天交 %(project)s 訂單付款檔（%(due)s 已到期）")
        % {"project": project.name, "due": taipei(data_request.due_at)},
        body=body,
        data_request=data_request,
        payload=payload,
        dedupe_key=f"reminder:{data_request.pk}:{day.isoformat()}",
    )
