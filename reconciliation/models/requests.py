"""Data requests and the files received for them."""

import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .people import Profile, Project

DEFAULT_DATASET = "2026-05-12..2026-05-21 order/payment export"


def default_due_at():
    return timezone.now() + timedelta(hours=24)


class DataRequest(models.Model):
    class Kind(models.TextChoices):
        ORDERS = "orders", _("訂單付款匯出")
        SETTLEMENT = "settlement", _("金流撥款檔")

    class Status(models.TextChoices):
        OPEN = "open", _("待交檔")
        UPLOADED = "uploaded", _("已上傳")
        SCHEMA_FAILED = "schema_failed", _("欄位不符")
        ACCEPTED = "accepted", _("已驗收")
        ESCALATED = "escalated", _("已升級")
        CLOSED = "closed", _("已結案")

    # States in which a file is still owed; escalation and uploads act on these.
    AWAITING_FILE = (Status.OPEN, Status.UPLOADED, Status.SCHEMA_FAILED, Status.ESCALATED)
    # An accepted request still takes files: a corrected re-export or a
    # top-up is a new import into the order book.
    TAKES_FILES = (*AWAITING_FILE, Status.ACCEPTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="data_requests")
    requested_dataset = models.CharField(_("資料集"), max_length=300, default=DEFAULT_DATASET)
    period_start = models.DateField(_("期間起"))
    period_end = models.DateField(_("期間迄"))
    data_owner_profile = models.ForeignKey(
        Profile, on_delete=models.PROTECT, related_name="owned_requests"
    )
    requested_by_profile = models.ForeignKey(
        Profile, on_delete=models.PROTECT, related_name="requested_requests"
    )
    due_at = models.DateTimeField(_("到期"), default=default_due_at)
    status = models.CharField(_("狀態"), max_length=20, choices=Status.choices, default=Status.OPEN)
    kind = models.CharField(_("種類"), max_length=12, choices=Kind.choices, default=Kind.ORDERS)
    required_schema = models.JSONField(default=list)
    artifact_ref = models.CharField(max_length=500, blank=True)
    missing_fields = models.JSONField(default=list, blank=True)
    audit_note = models.TextField(blank=True)
    priority = models.CharField(max_length=4, default="P0")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    last_reminder_on = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "kolable_data_requests"
        ordering = ["-created_at"]
        verbose_name = _("資料請求")
        verbose_name_plural = _("資料請求")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "requested_dataset"],
                condition=~Q(status="closed"),
                name="one_open_request_per_project_dataset",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="request_period_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "open",
                        "uploaded",
                        "schema_failed",
                        "accepted",
                        "escalated",
                        "closed",
                    ]
                ),
                name="request_status_valid",
            ),
        ]
        indexes = [
            # The escalation sweep: requests still owed a file, by due time.
            models.Index(fields=["status", "due_at"], name="req_escalation_sweep_idx"),
        ]
        permissions = [
            ("close_datarequest", "Can close a data request or extend its due time"),
            ("upload_export", "Can upload an order/payment export"),
            ("run_import", "Can run a reconciliation import"),
            ("tag_evidence", "Can tag order evidence"),
            ("view_evidence", "Can view the evidence queue"),
            ("decide_revenue", "Can approve or pause revenue recognition"),
            ("dispatch_jobs", "Can ask for the next PLS job"),
            ("record_claim", "Can record PR/deployment claims"),
            ("record_project_context", "Can record the previous pack and target repository"),
            ("view_dashboard", "Can see requests, scorecard and reports"),
        ]

    def __str__(self):
        return f"{self.project} · {self.requested_dataset}"

    @property
    def is_overdue(self):
        return self.status in self.AWAITING_FILE and self.due_at < timezone.now()


class Upload(models.Model):
    """Every file ever received. The bytes are kept under DATA_DIR/uploads,
    named by sha256 — except a refused file holding card numbers or payment
    tokens (its bytes are deleted once validated) and refused files past
    UPLOAD_RETENTION_DAYS; then `storage_path` is blank and the row (sha256,
    size, who, when, the masked errors) is the evidence that it arrived."""

    class SchemaStatus(models.TextChoices):
        PENDING = "pending", _("檢查中")
        ACCEPTED = "accepted", _("已通過")
        SCHEMA_FAILED = "schema_failed", _("欄位不符")

    class Mode(models.TextChoices):
        # The whole period as the provider sees it now: orders of the book
        # missing from it are listed as exceptions, never dropped.
        SNAPSHOT = "snapshot", _("完整快照")
        # Only what changed (top-ups, API syncs).
        INCREMENTAL = "incremental", _("增量")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    data_request = models.ForeignKey(DataRequest, on_delete=models.PROTECT, related_name="uploads")
    uploaded_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="uploads")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120, blank=True)
    detected_kind = models.CharField(max_length=10, blank=True)
    # A settlement file's layout as recognised from its headers.
    layout = models.CharField(max_length=20, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_path = models.CharField(max_length=500, blank=True)
    schema_status = models.CharField(
        max_length=20, choices=SchemaStatus.choices, default=SchemaStatus.PENDING
    )
    missing_fields = models.JSONField(default=list, blank=True)
    file_errors = models.JSONField(default=list, blank=True)
    row_errors = models.JSONField(
        default=list, blank=True
    )  # the first few; full list in the report
    row_error_count = models.IntegerField(default=0)
    # Every row error by code; row_errors and the report hold the first ones.
    row_error_totals = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    row_count = models.IntegerField(default=0)
    report_path = models.CharField(max_length=500, blank=True)
    mode = models.CharField(
        _("匯入方式"), max_length=12, choices=Mode.choices, default=Mode.SNAPSHOT
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("上傳檔案")
        verbose_name_plural = _("上傳檔案")
        constraints = [
            models.UniqueConstraint(
                fields=["data_request", "sha256"], name="one_upload_per_request_and_bytes"
            ),
        ]

    def __str__(self):
        return f"{self.original_name} ({self.sha256[:12]})"
