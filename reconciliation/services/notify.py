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

from reconciliation import schema
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
    subject: str,
    body: str,
    data_request: DataRequest | None = None,
    payload: dict | None = None,
    dedupe_key: str | None = None,
) -> list[Notification]:
    """Write one Notification per channel. With a dedupe_key, a message that
    was already written is not written again (the unique key decides, so two
    workers racing still write one)."""
    written = []
    now = timezone.now()
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


def request_links(data_request: DataRequest) -> dict[str, str]:
    return {
        "request_url": absolute(reverse("request-detail", args=[data_request.pk])),
        "template_url": absolute(reverse("template-download", args=["xlsx"])),
        "template_csv_url": absolute(reverse("template-download", args=["csv"])),
    }


def sync_request_created(data_request: DataRequest) -> list[Notification]:
    """Seed test A: Wade gets owner, due time, the ten columns and the
    template; Louis the blocker summary; Huber the 28,000 evidence ask."""
    project = data_request.project
    wade = data_request.data_owner_profile
    due = taipei(data_request.due_at)
    links = request_links(data_request)
    payload = {
        "data_request_id": str(data_request.pk),
        "data_owner": wade.username,
        "due_at": timezone.localtime(data_request.due_at).isoformat(),
        "required_schema": schema.as_api(),
        **links,
    }
    written = queue_message(
        recipient=wade,
        kind=Notification.Kind.REQUEST_CREATED,
        subject=f"[P0] 請於 {due} 前交 {project.name} 訂單付款檔",
        body=(
            f"{wade}：請在 24 小時內（{due} 台北時間前）交 {period_label(data_request)} "
            f"訂單付款 CSV/XLSX，欄位不可少 {schema_columns_text()}。\n"
            f"範本：{links['template_url']}\n上傳：{links['request_url']}"
        ),
        data_request=data_request,
        payload=payload,
        dedupe_key=f"created:{data_request.pk}:owner",
    )
    louis = project.owner_profile or data_request.requested_by_profile
    verifier = project.verifier_profile
    written += queue_message(
        recipient=louis,
        # A summary of the new request. The blocker card proper (the seed's
        # failure rule) is written by the escalation when the due time passes,
        # so Louis's inbox shows exactly one card per overdue request.
        kind=Notification.Kind.REQUEST_CREATED,
        subject=f"{project.name} 缺的是資料，不是策略：已建立 P0 資料請求",
        body=(
            f"{louis}：{project.name} 目前不是缺更多策略，而是 {wade} 的 "
            f"{period_label(data_request)} 訂單付款檔仍未回收。已建立 P0 data request："
            f"{wade} {due} 前交檔"
            + (f"，{verifier} 補 28,000 訂單退刷/重買 evidence" if verifier else "")
            + f"；未交檔前 {project.name} revenue 維持未驗證，不認列。\n{links['request_url']}"
        ),
        data_request=data_request,
        payload=payload,
        dedupe_key=f"created:{data_request.pk}:owner-card",
    )
    if verifier is not None:
        written += queue_message(
            recipient=verifier,
            kind=Notification.Kind.EVIDENCE_ASK,
            subject="請補 28,000 培訓訂單的付款/退刷/重買佐證",
            body=(
                f"{verifier}：請補 28,000 培訓訂單狀態，標為 paid/refunded/rebought/unresolved，"
                f"並附 payment/refund/evidence ref。{wade} 的檔案驗收後，佐證佇列會列出這些訂單。\n"
                f"{links['request_url']}"
            ),
            data_request=data_request,
            payload=payload,
            dedupe_key=f"created:{data_request.pk}:verifier",
        )
    return written


def sync_due_extended(
    data_request: DataRequest, *, extended_by: Profile, note: str = ""
) -> list[Notification]:
    """Tell the data owner the new due time (the schema is unchanged)."""
    wade = data_request.data_owner_profile
    due = taipei(data_request.due_at)
    links = request_links(data_request)
    return queue_message(
        recipient=wade,
        kind=Notification.Kind.REQUEST_CREATED,
        subject=f"[P0] 交檔期限延到 {due}：{data_request.project.name} 訂單付款檔",
        body=(
            f"{wade}：{extended_by} 已把 {period_label(data_request)} 訂單付款 CSV/XLSX 的期限延到 "
            f"{due}（台北時間），欄位不變：{schema_columns_text()}。"
            + (f"\n備註：{note}" if note else "")
            + f"\n範本：{links['template_url']}\n上傳：{links['request_url']}"
        ),
        data_request=data_request,
        payload={
            "data_request_id": str(data_request.pk),
            "due_at": timezone.localtime(data_request.due_at).isoformat(),
            **links,
        },
        dedupe_key=f"extended:{data_request.pk}:{int(data_request.due_at.timestamp())}",
    )
