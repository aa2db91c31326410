"""The words of people-sync messages: one template per message under
`templates/notifications/<name>.txt`, rendered from the parameters stored on
the Notification. The first line of a rendered template is the subject, the
rest the body.

A message is rendered twice in its life: once when it is written (in the
site language — that text is what e-mail and LINE carry) and again whenever
someone reads it in the app, in the reader's language. Times in words ("3
小時內", "今天 18:00 前") are always counted from the moment the message was
written, so a message reads the same whenever it is opened."""

import math
from datetime import date, datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from reconciliation.models import DEFAULT_DATASET
from reconciliation.schema import DEFAULT_SETTLEMENT_DATASET

TEMPLATES = (
    "request_created",
    "request_summary",
    "evidence_ask",
    "due_extended",
    "blocker_card",
    "overdue_reminder",
    "schema_failed",
    "import_done",
    "sync_digest_wade",
    "sync_digest_huber",
    "sync_digest_louis",
    "sync_auth_failed",
    "settlement_done_louis",
    "settlement_done_wade",
)


def dataset_label(name: str) -> str:
    """The dataset as a person reads it: the default dataset's English code
    name in the reader's language, any other name as it was typed."""
    if name == DEFAULT_DATASET:
        return _("2026-05-12 至 2026-05-21 訂單付款匯出檔")
    if name == DEFAULT_SETTLEMENT_DATASET:
        return _("2026-05-12 至 2026-05-21 金流撥款檔")
    return name


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def clock(moment: datetime) -> str:
    return local(moment).strftime("%Y-%m-%d %H:%M")


def time_left_words(due: datetime, at: datetime) -> str:
    """How long is left, rounded up: "45 分鐘內", "3 小時內", "2 天內"."""
    seconds = (due - at).total_seconds()
    if seconds < 3600:
        n = max(1, math.ceil(seconds / 60))
        return ngettext("%(n)s 分鐘內", "%(n)s 分鐘內", n) % {"n": n}
    if seconds < 48 * 3600:
        n = math.ceil(seconds / 3600)
        return ngettext("%(n)s 小時內", "%(n)s 小時內", n) % {"n": n}
    n = math.ceil(seconds / 86400)
    return ngettext("%(n)s 天內", "%(n)s 天內", n) % {"n": n}


def deadline_words(due: datetime, at: datetime) -> str:
    """The due time as a person says it: "今天 18:00 前", "明天 09:00 前",
    "2026-05-24 09:00 前" (Taipei days, counted from `at`)."""
    due_local, at_local = local(due), local(at)
    days = (due_local.date() - at_local.date()).days
    time = due_local.strftime("%H:%M")
    if days == 0:
        return _("今天 %(time)s 前") % {"time": time}
    if days == 1:
        return _("明天 %(time)s 前") % {"time": time}
    return _("%(date)s %(time)s 前") % {"date": due_local.strftime("%Y-%m-%d"), "time": time}


def duration_words(seconds: float) -> str:
    """A past duration: "2 天 3 小時", "3 小時 5 分", "4 分鐘"."""
    minutes = max(0, int(seconds)) // 60
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


def remaining_words(delta) -> str:
    """Time still left, in the same words as a duration: "23 小時 52 分"."""
    return duration_words(delta.total_seconds())


def list_words(items) -> str:
    return _("、").join(str(i) for i in items)


def number(value) -> str:
    return f"{int(value or 0):,}"


def money(value) -> str:
    return f"NT${number(round(float(value or 0)))}"


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if value else None


def _as_date(value) -> date | None:
    if isinstance(value, date):
        return value
    return parse_date(value) if value else None


def context(params: dict, *, sent_at: datetime) -> dict:
    """The template's variables: the stored parameters plus what is said in
    words (which depends on the language and on when the message was sent)."""
    derived = {"dataset": dataset_label(params.get("dataset", ""))}
    due = _as_datetime(params.get("due_at"))
    if due is not None:
        derived.update(
            due_text=clock(due),
            time_left=time_left_words(due, sent_at),
            deadline=deadline_words(due, sent_at),
            overdue=duration_words((sent_at - due).total_seconds()),
        )
    start, end = _as_date(params.get("period_start")), _as_date(params.get("period_end"))
    if start and end:
        derived["period"] = _("%(start)s 至 %(end)s") % {
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
    if "columns" in params:
        derived["columns_text"] = list_words(params["columns"])
    if params.get("missing_fields"):
        derived["missing_text"] = list_words(params["missing_fields"])
    for key in (
        "rows",
        "paid_orders",
        "held_orders",
        "row_error_count",
        "program_amount",
        "new_orders",
        "changed_orders",
        "unchanged_orders",
        "missing_from_snapshot",
        "tagged",
        "lines",
        "matched",
        "duplicates",
        "orphans",
        "new_missing",
        "mismatch_count",
    ):
        if key in params:
            derived[f"{key}_text"] = number(params[key])
    if "paid_amount" in params:
        derived["paid_amount_text"] = f"NT${number(round(float(params['paid_amount'])))}"
    for key in ("collected", "settled_gross", "fees"):
        if key in params:
            derived[f"{key}_text"] = money(params[key])
    if params.get("mismatches"):
        derived["mismatches_text"] = list_words(
            _("%(order)s（訂單 %(expected)s，撥款 %(settled)s）")
            % {
                "order": m["order_id"],
                "expected": money(m["expected"]),
                "settled": money(m["settled"]),
            }
            for m in params["mismatches"]
        )
    if params.get("orphan_refs"):
        derived["orphan_refs_text"] = list_words(params["orphan_refs"])
    if "delta_amount" in params:
        amount = round(float(params["delta_amount"]))
        sign = "+" if amount >= 0 else "−"
        derived["delta_amount_text"] = f"{sign}NT${number(abs(amount))}"
        derived["delta_orders_text"] = f"{int(params.get('delta_orders', 0)):+,}"
    if params.get("first_error_rows"):
        derived["first_rows_text"] = list_words(params["first_error_rows"])
    if params.get("file_error_codes"):
        from reconciliation.labels import code_label

        derived["file_errors_text"] = list_words(
            code_label(code) for code in params["file_error_codes"]
        )
    return {**params, **derived}


def render(
    template: str, params: dict, *, sent_at: datetime, language: str | None = None
) -> tuple[str, str]:
    """(subject, body) of one message in `language` (default: the active one).
    Blank lines — left by a template's optional parts — are dropped."""
    language = language or translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        text = render_to_string(f"notifications/{template}.txt", context(params, sent_at=sent_at))
    lines = [line.strip() for line in text.strip().splitlines()]
    lines = [line for line in lines if line]
    return (lines[0] if lines else ""), "\n".join(lines[1:])


def notification_text(notification) -> tuple[str, str]:
    """What the reader sees: the template in their language, or the stored
    text for a message written before messages had templates."""
    if notification.template:
        params = notification.params or {}
        sent_at = _as_datetime(params.get("written_at")) or notification.created_at
        return render(notification.template, params, sent_at=sent_at)
    return notification.subject, notification.body
