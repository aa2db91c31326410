"""Data requests: create and close."""

from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation import schema
from reconciliation.errors import Conflict, InvalidInput
from reconciliation.inputs import check_date
from reconciliation.models import DEFAULT_DATASET, AuditEvent, DataRequest, Profile, Project
from reconciliation.permissions import Action, can
from reconciliation.services import lifecycle
from reconciliation.services.audit import record_audit
from reconciliation.services.lifecycle import Event
from reconciliation.services.notify import sync_due_extended, sync_request_created, taipei
from reconciliation.services.profiles import profile_for

DEFAULT_PERIOD = (date(2026, 5, 12), date(2026, 5, 21))
REQUEST_TTL = timedelta(hours=24)


def default_project() -> Project:
    project = Project.objects.order_by("created_at").first()
    if project is None:
        raise InvalidInput("no_project", "尚未建立專案；請先執行 `python manage.py seed_demo`。")
    return project


def resolve_data_owner(project: Project, username: str | None) -> Profile:
    """The named user, else the project's data owner (Wade). The owner must be
    someone who may upload, or the request could never be met."""
    if not username:
        if project.data_owner_profile is None:
            raise InvalidInput("unknown_data_owner", "專案沒有設定資料負責人，請指定 data_owner。")
        return project.data_owner_profile
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput("unknown_data_owner", f"找不到使用者 {username!r}。")
    if not can(user, Action.UPLOAD_EXPORT):
        raise InvalidInput(
            "unknown_data_owner", f"{username} 沒有上傳匯出檔的權限，不能當資料負責人。"
        )
    return profile_for(user)


def create_data_request(
    *,
    requested_by,
    project: Project | None = None,
    data_owner_username: str | None = None,
    requested_dataset: str | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
    due_at: datetime | None = None,
    audit_note: str = "",
    kind: str = DataRequest.Kind.ORDERS,
) -> DataRequest:
    """Create a P0 data request and, in the same transaction, its audit event
    and the people-sync notifications. `kind`: the order export (default) or
    the payment provider's settlement file, each with its own schema and
    default dataset."""
    now = timezone.now()
    kind = kind or DataRequest.Kind.ORDERS
    if kind not in DataRequest.Kind.values:
        raise InvalidInput(
            "invalid_kind", _("kind 只能是 orders（訂單付款匯出）或 settlement（金流撥款檔）。")
        )
    settlement = kind == DataRequest.Kind.SETTLEMENT
    requested_dataset = (
        requested_dataset or (schema.DEFAULT_SETTLEMENT_DATASET if settlement else DEFAULT_DATASET)
    ).strip()
    project = project or default_project()
    owner = resolve_data_owner(project, data_owner_username)
    period_start = check_date(period_start or DEFAULT_PERIOD[0], "period_start")
    period_end = check_date(period_end or DEFAULT_PERIOD[1], "period_end")
    check_date(due_at, "due_at")
    if period_end < period_start:
        raise InvalidInput("invalid_period", _("期間迄日早於起日。"))
    due_at = due_at or now + REQUEST_TTL
    check_date(due_at, "due_at")
    if timezone.is_naive(due_at):
        due_at = timezone.make_aware(due_at)
    if due_at <= now:
        raise InvalidInput(
            "due_in_past", _("到期時間 %(due)s 已經過去。") % {"due": taipei(due_at)}
        )
    requester = profile_for(requested_by)
    try:
        with transaction.atomic():
            data_request = DataRequest.objects.create(
                project=project,
                requested_dataset=requested_dataset,
                kind=kind,
                period_start=period_start,
                period_end=period_end,
                data_owner_profile=owner,
                requested_by_profile=requester,
                due_at=due_at,
                required_schema=schema.settlement_as_api() if settlement else schema.as_api(),
                audit_note=audit_note,
            )
            record_audit(
                verb=AuditEvent.Verb.REQUEST_CREATED,
                actor=requester,
                data_request=data_request,
                message=f"{requester} 建立資料請求，{owner} 須於 {taipei(due_at)} 前交檔。",
                due_at=due_at.isoformat(),
                data_owner=owner.username,
            )
            sync_request_created(data_request)
    except IntegrityError as exc:
        existing = (
            DataRequest.objects.filter(project=project, requested_dataset=requested_dataset)
            .exclude(status=DataRequest.Status.CLOSED)
            .first()
        )
        if existing is None:
            raise
        raise Conflict(
            "request_exists",
            {"message": "這個專案與資料集已有未結案的請求。", "data_request_id": str(existing.pk)},
        ) from exc
    return data_request


def close_data_request(*, data_request: DataRequest, closed_by, note: str = "") -> DataRequest:
    actor = profile_for(closed_by)
    with transaction.atomic():
        now = timezone.now()
        if not lifecycle.move(data_request.pk, Event.CLOSED, now=now, closed_at=now):
            raise Conflict("already_closed", _("這個請求已經結案。"))
        record_audit(
            verb=AuditEvent.Verb.REQUEST_CLOSED,
            actor=actor,
            data_request=data_request,
            message=f"{actor} 結案。" + (f" 備註：{note}" if note else ""),
            note=note,
        )
    data_request.refresh_from_db()
    return data_request


def extend_due(
    *, data_request: DataRequest, extended_by, due_at: datetime, note: str = ""
) -> DataRequest:
    """Louis's other answer to a blocker card: a new due time. An escalated
    request goes back to open (the escalation stays in the history); Wade is
    told the new time."""
    now = timezone.now()
    if timezone.is_naive(due_at):
        due_at = timezone.make_aware(due_at)
    if due_at <= now:
        raise InvalidInput(
            "due_in_past", _("新的到期時間 %(due)s 已經過去。") % {"due": taipei(due_at)}
        )
    actor = profile_for(extended_by)
    with transaction.atomic():
        previous = (
            DataRequest.objects.filter(pk=data_request.pk).values_list("due_at", flat=True).first()
        )
        if not lifecycle.move(data_request.pk, Event.DUE_EXTENDED, now=now, due_at=due_at):
            raise Conflict("not_awaiting_file", _("這個請求已驗收或結案，不需要延期。"))
        data_request.refresh_from_db()
        record_audit(
            verb=AuditEvent.Verb.REQUEST_EXTENDED,
            actor=actor,
            data_request=data_request,
            message=f"{actor} 把交檔期限從 {taipei(previous)} 延到 {taipei(due_at)}。"
            + (f" 備註：{note}" if note else ""),
            previous_due_at=previous.isoformat() if previous else None,
            due_at=due_at.isoformat(),
            note=note,
        )
        sync_due_extended(data_request, extended_by=actor, note=note)
    return data_request
