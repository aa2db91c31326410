"""Louis configures where orders come from by themselves: a source of the
project (today the Kolable orders API).

A source owns a standing data request of the project, created with it: the
sync's uploads belong to that request, so they are validated, kept and
imported into the order book exactly like a person's top-up file (mode
incremental) — one import path, and every page, report and selector that
follows uploads and imports shows the sync's too. Nobody owes that request a
file, so it never falls due (the escalation sweep leaves it alone)."""

from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation import schema
from reconciliation.connectors.kolable_api import SyncFailure, check_base_url
from reconciliation.errors import Conflict, InvalidInput
from reconciliation.models import AuditEvent, DataRequest, Project, SyncSource
from reconciliation.secret_box import seal_secret
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for

# The standing request covers every date: a sync pulls by updated_at, not by
# a period.
STANDING_PERIOD = (date(2000, 1, 1), date(2099, 12, 31))
STANDING_DATASET = "Kolable API 訂單同步"
TOKEN_MAX_LENGTH = 500
BASE_URL_MAX_LENGTH = SyncSource._meta.get_field("base_url").max_length


def _clean_token(token: str) -> str:
    token = (token or "").strip()
    if not token:
        raise InvalidInput("invalid_token", _("請填 API 權杖。"))
    if len(token) > TOKEN_MAX_LENGTH or any(c.isspace() or ord(c) < 32 for c in token):
        raise InvalidInput(
            "invalid_token",
            _("API 權杖不可含空白或控制字元，最長 %(n)s 字。") % {"n": TOKEN_MAX_LENGTH},
        )
    return token


def _clean_schedule(value) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    try:
        hours, minutes = str(value or "").strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise InvalidInput(
            "invalid_schedule_time", _("每日同步時間要寫成 HH:MM（台北時間），例如 06:00。")
        ) from None


def _clean_base_url(base_url: str) -> str:
    base_url = (base_url or "").strip().rstrip("/")
    if not base_url or len(base_url) > BASE_URL_MAX_LENGTH or "\x00" in base_url:
        raise InvalidInput(
            "invalid_base_url",
            _("請填 API 網址（http(s)，最長 %(n)s 字）。") % {"n": BASE_URL_MAX_LENGTH},
        )
    try:
        check_base_url(base_url)
    except SyncFailure as failure:
        raise InvalidInput("base_url_refused", failure.message) from None
    return base_url


def create_source(
    *,
    project: Project,
    created_by,
    kind: str,
    base_url: str,
    token: str,
    schedule_time,
    overlap_minutes: int = 60,
    page_size: int = 500,
) -> SyncSource:
    """Validate, seal the token, and create the source with its standing
    request and the audit event (which names the host, never the token)."""
    if kind != SyncSource.Kind.KOLABLE_API:
        raise InvalidInput("invalid_kind", _("來源種類只能是 kolable_api。"))
    token = _clean_token(token)
    schedule = _clean_schedule(schedule_time)
    if not 0 <= int(overlap_minutes) <= 1440:
        raise InvalidInput("invalid_overlap", _("重疊分鐘要在 0 到 1440 之間。"))
    if not 1 <= int(page_size) <= 5000:
        raise InvalidInput("invalid_page_size", _("每頁筆數要在 1 到 5000 之間。"))
    base_url = _clean_base_url(base_url)
    creator = profile_for(created_by)
    if SyncSource.objects.filter(project=project, kind=kind).exists():
        raise _already_configured()
    try:
        with transaction.atomic():
            standing = DataRequest.objects.create(
                project=project,
                requested_dataset=STANDING_DATASET,
                period_start=STANDING_PERIOD[0],
                period_end=STANDING_PERIOD[1],
                data_owner_profile=project.data_owner_profile or creator,
                requested_by_profile=creator,
                required_schema=schema.as_api(),
                due_at=first_due(schedule),
                audit_note=_("由 Kolable API 每日同步自動送檔。"),
            )
            source = SyncSource.objects.create(
                project=project,
                kind=kind,
                base_url=base_url,
                token_encrypted=seal_secret(token),
                token_last4=token[-4:],
                schedule_time=schedule,
                overlap_minutes=int(overlap_minutes),
                page_size=int(page_size),
                data_request=standing,
                created_by=creator,
            )
            record_audit(
                verb=AuditEvent.Verb.SOURCE_CONFIGURED,
                actor=creator,
                data_request=standing,
                message=_("%(who)s 設定 Kolable API 同步：%(url)s，每天 %(time)s（台北）。")
                % {"who": creator, "url": base_url, "time": schedule.strftime("%H:%M")},
                source_id=str(source.pk),
                base_url=base_url,
                token=source.token_hint,
            )
    except IntegrityError:
        raise _already_configured() from None
    return source


def first_due(schedule: time, *, now: datetime | None = None) -> datetime:
    """When the standing request is owed its first data: an hour after the
    source's next scheduled run (Asia/Taipei)."""
    local = timezone.localtime(now or timezone.now())
    moment = local.replace(hour=schedule.hour, minute=schedule.minute, second=0, microsecond=0)
    if moment <= local:
        moment += timedelta(days=1)
    return moment + timedelta(hours=1)


def _already_configured() -> Conflict:
    return Conflict("source_exists", _("這個專案已經設定了 Kolable API 來源；一個專案只接一個。"))


def update_source(
    *,
    source: SyncSource,
    updated_by,
    token: str | None = None,
    base_url: str | None = None,
    schedule_time=None,
    overlap_minutes: int | None = None,
    page_size: int | None = None,
) -> SyncSource:
    """Change what Louis may change (a new token after a refusal, the time of
    day…); the cursor stays, so the next run continues where the last
    successful one ended. The audit event names the fields, never the token."""
    changes = {}
    if token is not None:
        token = _clean_token(token)
        changes.update(token_encrypted=seal_secret(token), token_last4=token[-4:])
    if base_url is not None:
        changes["base_url"] = _clean_base_url(base_url)
    if schedule_time is not None:
        changes["schedule_time"] = _clean_schedule(schedule_time)
    if overlap_minutes is not None:
        if not 0 <= int(overlap_minutes) <= 1440:
            raise InvalidInput("invalid_overlap", _("重疊分鐘要在 0 到 1440 之間。"))
        changes["overlap_minutes"] = int(overlap_minutes)
    if page_size is not None:
        if not 1 <= int(page_size) <= 5000:
            raise InvalidInput("invalid_page_size", _("每頁筆數要在 1 到 5000 之間。"))
        changes["page_size"] = int(page_size)
    if not changes:
        return source
    editor = profile_for(updated_by)
    fields = sorted("token" if k.startswith("token") else k for k in changes)
    fields = list(dict.fromkeys(fields))
    with transaction.atomic():
        SyncSource.objects.filter(pk=source.pk).update(**changes)
        source.refresh_from_db()
        record_audit(
            verb=AuditEvent.Verb.SOURCE_CONFIGURED,
            actor=editor,
            data_request=source.data_request,
            message=_("%(who)s 更新 Kolable API 來源：%(fields)s。")
            % {"who": editor, "fields": "、".join(fields)},
            source_id=str(source.pk),
            fields=fields,
            token=source.token_hint,
        )
    return source
