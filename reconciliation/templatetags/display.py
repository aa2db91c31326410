"""How pages show what people read: messages in the reader's language with
clickable links, dataset names, plain labels for codes, numbers with
separators and a request's due state in words."""

import re

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from reconciliation import labels, message_text

register = template.Library()

# Up to the first space or a character that ends a sentence in Chinese or
# English text ("上傳：http://…。" keeps the URL and drops the 。).
URL_RE = re.compile(r"https?://[^\s<>\"'，。；、）」]+[^\s<>\"'，。；、）」.,;:!?)]")


@register.simple_tag
def message_text_of(notification) -> dict:
    subject, body = message_text.notification_text(notification)
    return {"subject": subject, "body": body}


@register.filter
def linkify(text: str) -> str:
    """Escape `text`, turn its http(s) URLs into links and its lines into
    <br>-separated lines."""
    out, last = [], 0
    for match in URL_RE.finditer(text or ""):
        out.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(escape((text or "")[last:]))
    return mark_safe("".join(out).replace("\n", "<br>"))  # noqa: S308 - every part escaped above


@register.simple_tag
def training_amount() -> str:
    """The training programme's price, as "28,000" (the NT$ is the text's)."""
    return f"{int(settings.TRAINING_PROGRAM_AMOUNT):,}"


@register.filter
def dataset(name: str) -> str:
    return message_text.dataset_label(name)


@register.filter
def num(value) -> str:
    """12345 → "12,345"; None → "—"."""
    if value is None or value == "":
        return "—"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def code_label(code: str) -> str:
    return labels.code_label(code)


@register.filter
def job_label(job_type: str) -> str:
    return labels.job_label(job_type)


@register.filter
def sync_error_label(code: str) -> str:
    return labels.sync_error_label(code)


@register.filter
def role_label(role: str) -> str:
    return labels.role_label(role)


@register.filter
def due_state(data_request) -> dict:
    """What a request's due time means now: a live countdown while a file is
    owed, otherwise when it was handed in or closed (never a countdown)."""
    now = timezone.now()
    if data_request.status in data_request.AWAITING_FILE:
        due = data_request.due_at
        if due > now:
            return {
                "live": True,
                "text": _("剩 %(t)s") % {"t": message_text.remaining_words(due - now)},
            }
        return {
            "live": True,
            "text": _("逾期 %(t)s")
            % {"t": message_text.duration_words((now - due).total_seconds())},
            "overdue": True,
        }
    accepted_at = getattr(data_request, "accepted_at", None)
    if accepted_at is None and data_request.status == "accepted":
        first = data_request.uploads.filter(schema_status="accepted").order_by("created_at").first()
        accepted_at = first.created_at if first else data_request.updated_at
    if accepted_at is not None:
        return {
            "live": False,
            "text": _("已於 %(when)s 交檔") % {"when": message_text.clock(accepted_at)},
        }
    if data_request.status == "closed" and data_request.closed_at:
        return {
            "live": False,
            "text": _("已於 %(when)s 結案") % {"when": message_text.clock(data_request.closed_at)},
        }
    return {"live": False, "text": data_request.get_status_display()}


@register.filter
def orders_in_import(reconciliation_import) -> int:
    """Distinct orders of an import: every row but the repeats."""
    return reconciliation_import.row_count - reconciliation_import.duplicate_count


@register.simple_tag
def tag_column_help(name: str) -> dict:
    label, help_text = labels.tag_column_help(name)
    return {"label": label, "help": help_text}
