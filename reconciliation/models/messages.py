"""People sync, PLS dispatch, claims and the audit trail. AuditEvent is
append-only (database trigger)."""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .people import Profile, Project
from .requests import DataRequest


class Notification(models.Model):
    """The people-sync outbox. Written in the same transaction as the state
    change; delivered later by a sender that claims it with a conditional
    UPDATE."""

    class Channel(models.TextChoices):
        INBOX = "inbox", _("站內信")
        EMAIL = "email", _("電子郵件")
        WEBHOOK = "webhook", _("LINE/Webhook")

    class Kind(models.TextChoices):
        REQUEST_CREATED = "request_created", _("資料請求")
        BLOCKER_CARD = "blocker_card", _("阻塞卡")
        OVERDUE_REMINDER = "overdue_reminder", _("逾期提醒")
        SCHEMA_FAILED = "schema_failed", _("欄位錯誤")
        EVIDENCE_ASK = "evidence_ask", _("佐證請求")
        IMPORT_DONE = "import_done", _("對帳完成")
        BOOK_CHANGED = "book_changed", _("認列後數字有變")
        SYNC_DIGEST = "sync_digest", _("同步摘要")
        INFO = "info", _("通知")

    class Status(models.TextChoices):
        QUEUED = "queued", _("待送出")
        SENDING = "sending", _("送出中")
        SENT = "sent", _("已送出")
        FAILED = "failed", _("失敗，將重試")
        DEAD = "dead", _("放棄")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recipient = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="notifications")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    data_request = models.ForeignKey(
        DataRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    # The text as first written, in the site language: what e-mail and LINE
    # carry, and what a row without a template shows.
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # templates/notifications/<template>.txt rendered with `params` (and the
    # time the message was written) gives the text in the reader's language.
    # Blank on rows written before messages had templates.
    template = models.CharField(max_length=40, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # Makes "one blocker card", "one reminder a day" a database guarantee.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_sender_claim_idx"),
            models.Index(fields=["recipient", "channel", "-created_at"], name="notif_inbox_idx"),
        ]


class NotificationAttempt(models.Model):
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class DispatchDecision(models.Model):
    class JobType(models.TextChoices):
        DATA_REQUEST = "data_request", "data_request"
        PEOPLE_SYNC = "people_sync", "people_sync"
        RECONCILIATION_IMPORT = "reconciliation_import", "reconciliation_import"
        REPO_CHANGE = "repo_change", "repo_change"
        PROJECT_RUNNER = "project_runner", "project_runner"
        NONE = "none", "none"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="dispatches")
    job_type = models.CharField(max_length=30, choices=JobType.choices)
    reason = models.TextField()
    evidence = models.JSONField(default=dict)
    requested_by = models.ForeignKey(Profile, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class ArtifactClaim(models.Model):
    class Kind(models.TextChoices):
        GITHUB_PR = "github_pr", "GitHub PR"
        DEPLOYMENT = "deployment", _("部署")
        REPOSITORY = "repository", _("目標 repo/API")

    class Status(models.TextChoices):
        VERIFIED = "verified", _("已驗證")
        REFUSED = "refused", _("已拒絕")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="claims")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    url = models.URLField(max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices)
    http_status = models.IntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    checked_at = models.DateTimeField()
    claimed_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AuditEvent(models.Model):
    """The decision trail. Append-only (database trigger)."""

    class Verb(models.TextChoices):
        REQUEST_CREATED = "request.created", _("建立資料請求")
        REQUEST_CLOSED = "request.closed", _("結案")
        REQUEST_EXTENDED = "request.extended", _("延長期限")
        REQUEST_ESCALATED = "request.escalated", _("逾期升級")
        REQUEST_REMINDED = "request.reminded", _("逾期提醒")
        UPLOAD_RECEIVED = "upload.received", _("收到檔案")
        UPLOAD_ACCEPTED = "upload.accepted", _("檔案驗收")
        UPLOAD_FAILED = "upload.schema_failed", _("欄位不符")
        IMPORT_DONE = "import.done", _("完成對帳匯入")
        SETTLEMENT_IMPORTED = "settlement.imported", _("完成撥款對帳")
        SETTLEMENT_MATCHED = "settlement.matched", _("人工對上撥款明細")
        SETTLEMENT_UNMATCHED = "settlement.unmatched", _("取消人工撥款對帳")
        SETTLEMENT_ACCEPTED = "settlement.accepted", _("接受撥款差額")
        SETTLEMENT_UNACCEPTED = "settlement.unaccepted", _("取消接受撥款差額")
        EVIDENCE_TAGGED = "evidence.tagged", _("標記佐證")
        REVENUE_DECIDED = "revenue.decided", _("營收認列決定")
        DISPATCHED = "dispatch.decided", _("PLS 派工")
        CLAIM_VERIFIED = "claim.verified", _("驗證成果連結")
        CLAIM_REFUSED = "claim.refused", _("拒絕未驗證成果")
        PROJECT_CONTEXT = "project.context", _("更新專案脈絡")
        LOGIN_FAILED = "auth.login_failed", _("登入失敗")
        SOURCE_CONFIGURED = "source.configured", _("設定同步來源")
        SYNC_FINISHED = "sync.finished", _("同步結束")

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        Profile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verb = models.CharField(max_length=40, choices=Verb.choices)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data_request = models.ForeignKey(
        DataRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("稽核事件")
        verbose_name_plural = _("稽核事件")

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.verb}"
