"""People sync: the messages the app owes Louis, Wade and Huber, written as
Notification rows (the outbox) inside the transaction of the change that
caused them. Delivery is `notifiers.py`'s job, later and apart.

The wording follows the seed's LINE drafts: short, names the person, says
exactly what is missing, by when, and what not to do."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from reconciliation import message_text, schema
from reconciliation.models import DataRequest, Notification, Profile

SUBJECT_MAX_LENGTH = Notification._meta.get_field("subject").max_length


def taipei(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M")


def period_label(data_request: DataRequest) -> str:
    return f"{data_request.period_start:%Y-%m-%d} 到 {data_request.period_end:%Y-%m-%d}"


def absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def channels_for(profile: Profile) -> list[str]:
    """The inbox always; e-mail when the person has an address; the webhook
    channel when one is configured (LINE needs the person's LINE id)."""
    channels = [Notification.Channel.INBOX]
    if profile.user.email:
        channels.append(Notification.Channel.EMAIL)
    if settings.NOTIFY_WEBHOOK_URL or (settings.LINE_CHANNEL_TOKEN and profile.line_user_id):
        channels.append(Notification.Channel.WEBHOOK)
    return channels


def queue_message(
    *,
    recipient: Profile,
    kind: Notification.Kind,
    template: str = "",
    params: dict | None = None,
    subject: str = "",
    body: str = "",
    data_request: DataRequest | None = None,
    payload: dict | None = None,
    dedupe_key: str | None = None,
    now=None,
) -> list[Notification]:
    """Write one Notification per channel. A message with a `template` is
    rendered from `params` (templates/notifications/<template>.txt) in the
    site language for the stored subject/body, and again in each reader's
    language when read in the app. With a dedupe_key, a message that was
    already written is not written again (the unique key decides, so two
    workers racing still write one)."""
    now = now or timezone.now()
    params = dict(params or {})
    if template:
        # The words ("3 小時內") are counted from this moment whenever the
        # message is rendered again.
        params.setdefault("written_at", now.isoformat())
        subject, body = message_text.render(
            template, params, sent_at=now, language=settings.LANGUAGE_CODE
        )
    written = []
    for channel in channels_for(recipient):
        is_inbox = channel == Notification.Channel.INBOX
        notification = Notification(
            recipient=recipient,
            channel=channel,
            kind=kind,
            data_request=data_request,
            # A long file name must not overflow the column.
            subject=Truncator(subject).chars(SUBJECT_MAX_LENGTH),
            body=body,
            template=template,
            params=params,
            payload=payload or {},
            dedupe_key=f"{dedupe_key}:{channel}" if dedupe_key else None,
            # The inbox is the app itself: written is delivered.
            status=Notification.Status.SENT if is_inbox else Notification.Status.QUEUED,
            sent_at=now if is_inbox else None,
        )
        try:
            with transaction.atomic():
                notification.save(force_insert=True)
        except IntegrityError:
            continue
        written.append(notification)
    return written


def schema_columns_text() -> str:
    return "、".join(schema.COLUMN_NAMES)


def _required_columns(data_request: DataRequest) -> list[str]:
    """The columns the request asks for: its own schema (an order export's
    or a settlement file's required ones)."""
    if data_request.kind == DataRequest.Kind.SETTLEMENT:
        return list(schema.SETTLEMENT_REQUIRED)
    return list(schema.COLUMN_NAMES)


def request_links(data_request: DataRequest) -> dict[str, str]:
    kind = "?kind=settlement" if data_request.kind == DataRequest.Kind.SETTLEMENT else ""
    return {
        "request_url": absolute(reverse("request-detail", args=[data_request.pk])),
        "upload_url": absolute(reverse("upload-page", args=[data_request.pk])),
        "template_url": absolute(reverse("template-download", args=["xlsx"]) + kind),
        "template_csv_url": absolute(reverse("template-download", args=["csv"]) + kind),
        "evidence_url": absolute(reverse("evidence")),
        "scorecard_url": absolute(reverse("scorecard")),
    }


def people(data_request: DataRequest) -> tuple[Profile, Profile, Profile | None]:
    """Who a request's messages go to: Louis (the project owner, else whoever
    asked), Wade (the data owner) and Huber (the verifier, if any)."""
    project = data_request.project
    louis = project.owner_profile or data_request.requested_by_profile
    return louis, data_request.data_owner_profile, project.verifier_profile


def request_params(data_request: DataRequest, **extra) -> dict:
    """What every message about a request may say: its scope (project,
    dataset, period, columns), its due time, the people and the links. JSON
    only: the message is rendered again from these when it is read."""
    louis, wade, huber = people(data_request)
    return {
        "project": data_request.project.name,
        "dataset": data_request.requested_dataset,
        "period_start": data_request.period_start.isoformat(),
        "period_end": data_request.period_end.isoformat(),
        "due_at": timezone.localtime(data_request.due_at).isoformat(),
        "louis": str(louis),
        "wade": str(wade),
        "huber": str(huber) if huber else "",
        "columns": _required_columns(data_request),
        "missing_fields": list(data_request.missing_fields or []),
        "program_amount": settings.TRAINING_PROGRAM_AMOUNT,
        **request_links(data_request),
        **extra,
    }


def _payload(data_request: DataRequest, links: dict, **extra) -> dict:
    """The machine-readable part for webhooks and the API."""
    return {
        "data_request_id": str(data_request.pk),
        "data_owner": data_request.data_owner_profile.username,
        "due_at": timezone.localtime(data_request.due_at).isoformat(),
        **links,
        **extra,
    }


def sync_request_created(data_request: DataRequest) -> list[Notification]:
    """Seed test A: Wade gets owner, due time, the ten columns and the
    template; Louis the summary; Huber the training-order evidence ask."""
    louis, wade, huber = people(data_request)
    params = request_params(data_request, note=data_request.audit_note)
    payload = _payload(
        data_request, request_links(data_request), required_schema=data_request.required_schema
    )
    written = queue_message(
        recipient=wade,
        kind=Notification.Kind.REQUEST_CREATED,
        template="request_created",
        params=params,
        data_request=data_request,
        payload=payload,
        dedupe_key=f"created:{data_request.pk}:owner",
    )
    written += queue_message(
        recipient=louis,
        # A summary of the new request. The blocker card proper (the seed's
        # failure rule) is written by the escalation when the due time passes,
        # so Louis's inbox shows exactly one card per overdue request.
        kind=Notification.Kind.REQUEST_CREATED,
        template="request_summary",
        params=params,
        data_request=data_request,
        payload=payload,
        dedupe_key=f"created:{data_request.pk}:owner-card",
    )
    if huber is not None:
        written += queue_message(
            recipient=huber,
            kind=Notification.Kind.EVIDENCE_ASK,
            template="evidence_ask",
            params=params,
            data_request=data_request,
            payload=payload,
            dedupe_key=f"created:{data_request.pk}:verifier",
        )
    return written


def sync_due_extended(
    data_request: DataRequest, *, extended_by: Profile, note: str = ""
) -> list[Notification]:
    """Tell the data owner the new due time (the schema is unchanged)."""
    params = request_params(data_request, note=note, louis=str(extended_by))
    return queue_message(
        recipient=data_request.data_owner_profile,
        kind=Notification.Kind.REQUEST_CREATED,
        template="due_extended",
        params=params,
        data_request=data_request,
        payload=_payload(data_request, request_links(data_request)),
        dedupe_key=f"extended:{data_request.pk}:{int(data_request.due_at.timestamp())}",
    )


def sync_blocker_card(data_request: DataRequest, *, now, payload: dict) -> list[Notification]:
    """Louis's blocker card: what is missing, since when, who owns it, and the
    decision asked of him. One per missed due time (dedupe key): a due time
    Louis extended and that passes again is a new blocker."""
    louis, _wade, _huber = people(data_request)
    return queue_message(
        recipient=louis,
        kind=Notification.Kind.BLOCKER_CARD,
        template="blocker_card",
        params=request_params(data_request),
        data_request=data_request,
        payload=payload,
        dedupe_key=f"escalated:{data_request.pk}:{int(data_request.due_at.timestamp())}:blocker",
        now=now,
    )


def sync_overdue_reminder(
    data_request: DataRequest, *, now, day, payload: dict
) -> list[Notification]:
    """Wade's overdue reminder for `day` (one per request and Taipei day)."""
    return queue_message(
        recipient=data_request.data_owner_profile,
        kind=Notification.Kind.OVERDUE_REMINDER,
        template="overdue_reminder",
        params=request_params(data_request),
        data_request=data_request,
        payload=payload,
        dedupe_key=f"reminder:{data_request.pk}:{day.isoformat()}",
        now=now,
    )


def sync_schema_failed(upload, *, links: dict, payload: dict) -> list[Notification]:
    """Wade's missing-field list (the seed's failure rule) for one upload."""
    data_request = upload.data_request
    first_rows = sorted({e["row"] for e in upload.row_errors if e.get("row")})[:5]
    params = request_params(
        data_request,
        file_name=upload.original_name,
        missing_fields=list(upload.missing_fields or []),
        file_error_codes=[
            e["code"] for e in upload.file_errors if e.get("code") != "missing_column"
        ],
        row_error_count=upload.row_error_count,
        first_error_rows=first_rows,
        **links,
    )
    return queue_message(
        recipient=data_request.data_owner_profile,
        kind=Notification.Kind.SCHEMA_FAILED,
        template="schema_failed",
        params=params,
        data_request=data_request,
        payload=payload,
        dedupe_key=f"schema_failed:{upload.pk}",
    )


def sync_import_done(
    reconciliation_import, *, book_step: dict, book_totals: dict | None = None
) -> list[Notification]:
    """An import finished: Wade and Louis get what it did to the order book
    and the link (Louis also the book's verified revenue, the decision being
    his); Huber one message when new or changed orders need evidence."""
    data_request = reconciliation_import.data_request
    louis, wade, huber = people(data_request)
    totals = book_totals or {}
    params = request_params(
        data_request,
        file_name=reconciliation_import.upload.original_name,
        rows=reconciliation_import.row_count,
        new_orders=book_step["new_orders"],
        changed_orders=book_step["changed_orders"],
        unchanged_orders=book_step["unchanged_orders"],
        missing_from_snapshot=book_step["missing_from_snapshot"],
        paid_amount=float(totals.get("paid_amount") or 0),
        paid_orders=int(totals.get("paid_orders") or 0),
        held_orders=int(totals.get("held_orders") or 0),
        scorecard_url=reconciliation_import.scorecard_ref
        or request_links(data_request)["scorecard_url"],
    )
    payload = {
        "import_id": str(reconciliation_import.pk),
        "upload_id": str(reconciliation_import.upload_id),
        "status": reconciliation_import.status,
        "book": {
            k: book_step[k]
            for k in (
                "mode",
                "new_orders",
                "changed_orders",
                "unchanged_orders",
                "missing_from_snapshot",
            )
        },
    }
    written = []
    for person, template, key in (
        (louis, "import_done", "owner"),
        (wade, "import_done_owner", "data-owner"),
    ):
        if person is None:
            continue
        written += queue_message(
            recipient=person,
            kind=Notification.Kind.IMPORT_DONE,
            template=template,
            params=params,
            data_request=data_request,
            payload=payload,
            dedupe_key=f"import:{reconciliation_import.pk}:{key}",
        )
    if huber is not None and book_step["new_orders"] + book_step["changed_orders"]:
        query = "?program_id=*&tag=all&changed=1" if book_step["changed_orders"] else ""
        written += queue_message(
            recipient=huber,
            kind=Notification.Kind.EVIDENCE_ASK,
            template="evidence_changed",
            params={**params, "queue_url": absolute(reverse("evidence") + query)},
            data_request=data_request,
            payload=payload,
            dedupe_key=f"import:{reconciliation_import.pk}:verifier",
        )
    return written


def sync_book_changed(
    *, project, louis: Profile | None, version: int, delta: dict, cause: dict
) -> list[Notification]:
    """Louis's decision predates a change of the book: one message per change
    batch (an import, a tagging action), until he confirms again."""
    if louis is None:
        return []
    return queue_message(
        recipient=louis,
        kind=Notification.Kind.BOOK_CHANGED,
        template="book_changed",
        params={
            "project": project.name,
            "louis": str(louis),
            "cause_kind": cause.get("kind", "tags"),
            "file_name": cause.get("file_name", ""),
            "order_id": cause.get("order_id", ""),
            "tagged": int(cause.get("count", 0)),
            "delta_amount": float(delta["paid_amount"]),
            "delta_orders": int(delta["paid_orders"]),
            "scorecard_url": absolute(reverse("scorecard")),
        },
        payload={"project_id": str(project.pk), "book_version": version, "delta": delta},
        dedupe_key=f"book:{project.pk}:{version}",
    )
