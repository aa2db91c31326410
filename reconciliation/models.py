"""The data model.

OrderRow, OrderEvidence and AuditEvent are append-only: migration
0002_append_only_triggers installs database triggers that refuse UPDATE and
DELETE on them, so the rule holds for every client of the database, not just
this code. Foreign keys into those tables use PROTECT for the same reason.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DEFAULT_DATASET = "2026-05-12..2026-05-21 order/payment export"


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("名稱"), max_length=200, unique=True)
    owner_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data_owner_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verifier_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Seed test B: whether an earlier reconciliation pack (the 對帳工具箱)
    # exists decides whether PLS may ever dispatch another project_runner.
    previous_pack_ref = models.CharField(_("上一輪成果"), max_length=500, blank=True)
    previous_pack_recorded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("專案")
        verbose_name_plural = _("專案")

    def __str__(self):
        return self.name


class Profile(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    display_name = models.CharField(_("顯示名稱"), max_length=100, blank=True)
    line_user_id = models.CharField(_("LINE user ID"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("個人檔案")
        verbose_name_plural = _("個人檔案")

    def __str__(self):
        return self.display_name or self.user.get_username()

    @property
    def username(self):
        return self.user.get_username()


class ApiToken(models.Model):
    """A bearer token for the API (PLS). Only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API 權杖")
        verbose_name_plural = _("API 權杖")

    def __str__(self):
        return f"{self.user} {self.prefix}…"


def default_due_at():
    return timezone.now() + timedelta(hours=24)


class DataRequest(models.Model):
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


class ReconciliationImport(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("已驗收")
        FAILED = "failed", _("失敗")
        PARTIAL = "partial", _("部分保留")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    data_request = models.ForeignKey(DataRequest, on_delete=models.PROTECT, related_name="imports")
    # One import per upload: the database makes the import idempotent.
    upload = models.OneToOneField(
        Upload, on_delete=models.PROTECT, related_name="reconciliation_import"
    )
    row_count = models.IntegerField(default=0)
    paid_count = models.IntegerField(default=0)
    pending_count = models.IntegerField(default=0)
    refunded_count = models.IntegerField(default=0)
    duplicate_count = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices)
    scorecard_ref = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(Profile, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "kolable_reconciliation_imports"
        ordering = ["-created_at"]
        verbose_name = _("對帳匯入")
        verbose_name_plural = _("對帳匯入")

    def __str__(self):
        return f"import {self.id} ({self.status})"


class ImportSummary(models.Model):
    """Aggregates of one import, computed at import time and recomputed when
    evidence tags change, so no page ever scans OrderRows. Mutable, unlike the
    import it summarises."""

    reconciliation_import = models.OneToOneField(
        ReconciliationImport, on_delete=models.PROTECT, primary_key=True, related_name="summary"
    )
    effective_status = models.CharField(max_length=10, choices=ReconciliationImport.Status.choices)
    totals = models.JSONField(default=dict)
    by_day = models.JSONField(default=list)
    by_source_event = models.JSONField(default=list)
    by_program = models.JSONField(default=list)
    by_discount_code = models.JSONField(default=list)
    exceptions = models.JSONField(default=list)
    exception_count = models.IntegerField(default=0)
    # What this import did to the order book: new_orders, changed_orders,
    # unchanged_orders, missing_from_snapshot, changes (per field), mode.
    book = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("對帳摘要")
        verbose_name_plural = _("對帳摘要")


class OrderRow(models.Model):
    """One imported row. Append-only (database trigger)."""

    class Classification(models.TextChoices):
        PAID = "paid", _("已付款")
        PENDING = "pending", _("待付款")
        REFUNDED = "refunded", _("已退款")
        DUPLICATE = "duplicate", _("重複")

    # No index of its own: every OrderRow index below starts with the import,
    # and a fourth index on a million-row insert costs more than it serves.
    # No database FK constraint either (migration 0005): PostgreSQL checks it
    # row by row at commit, ~10 s on a 1,000,000-row import, and the rule
    # holds by construction — rows are written only in their import's own
    # transaction, and imports can never be deleted (append-only trigger).
    reconciliation_import = models.ForeignKey(
        ReconciliationImport,
        on_delete=models.PROTECT,
        related_name="rows",
        db_index=False,
        db_constraint=False,
    )
    row_number = models.IntegerField()
    order_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(null=True)
    customer_key = models.CharField(max_length=64)
    program_id = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    payment_status = models.CharField(max_length=10)
    payment_ref = models.CharField(max_length=200, blank=True)
    discount_code = models.CharField(max_length=100, blank=True)
    source_event = models.CharField(max_length=200, blank=True)
    owner_note = models.CharField(max_length=500, blank=True)
    classification = models.CharField(max_length=10, choices=Classification.choices)
    # Set on a paid row that re-buys an earlier refunded order (same customer
    # and programme): the refunded order_id it replaces.
    rebuy_of = models.CharField(max_length=100, blank=True)
    exception_code = models.CharField(max_length=40, blank=True)
    # A hash of the business fields (bulk.fingerprints): equal fingerprints
    # mean an unchanged version of the order. Null only on rows imported
    # before the order book existed.
    fingerprint = models.BigIntegerField(null=True)

    class Meta:
        verbose_name = _("訂單列")
        verbose_name_plural = _("訂單列")
        # The queue reads the book (Order), not the rows: one index, for an
        # import's rows by order_id (the book's joins and an order's history).
        indexes = [
            models.Index(
                fields=["reconciliation_import", "order_id"], name="orderrow_import_order_idx"
            ),
        ]


class Order(models.Model):
    """The order book (one row per project and order_id): the current state of
    the order, a copy of its current version's fields (the OrderRow it came
    from), so the queue and the revenue tally read one narrow table. Moved
    only by services.book, inside the import's transaction, after the
    project's BookSummary version was compare-and-set."""

    # No database FK constraint: PostgreSQL checks it row by row, seconds on a
    # 1,000,000-order import; orders are written only by services.book, with
    # the project locked, and projects are never deleted (PROTECT elsewhere).
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="orders", db_constraint=False
    )
    order_id = models.CharField(max_length=100)
    current_row = models.ForeignKey(
        OrderRow, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    current_import = models.ForeignKey(
        ReconciliationImport,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    first_import = models.ForeignKey(
        ReconciliationImport,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The last import that changed the order (null: never changed since it
    # first arrived); the latest snapshot it was missing from (null: present).
    changed_import = models.ForeignKey(
        ReconciliationImport,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    missing_import = models.ForeignKey(
        ReconciliationImport,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    versions = models.IntegerField(default=1)
    fingerprint = models.BigIntegerField(null=True)
    row_number = models.IntegerField()
    created_at = models.DateTimeField(null=True)
    customer_key = models.CharField(max_length=64)
    program_id = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    payment_status = models.CharField(max_length=10)
    payment_ref = models.CharField(max_length=200, blank=True)
    discount_code = models.CharField(max_length=100, blank=True)
    source_event = models.CharField(max_length=200, blank=True)
    owner_note = models.CharField(max_length=500, blank=True)
    classification = models.CharField(max_length=10, choices=OrderRow.Classification.choices)
    rebuy_of = models.CharField(max_length=100, blank=True)
    exception_code = models.CharField(max_length=40, blank=True)

    class Meta:
        db_table = "kolable_orders"
        verbose_name = _("訂單")
        verbose_name_plural = _("訂單")
        constraints = [
            models.UniqueConstraint(fields=["project", "order_id"], name="one_order_per_project"),
        ]
        # The queue walks the primary key (every programme) or this index (one
        # programme); each further index costs ~2 s on a 1,000,000-order import.
        indexes = [
            models.Index(fields=["project", "program_id", "id"], name="order_queue_program_idx"),
        ]

    def __str__(self):
        return self.order_id


class BookSummary(models.Model):
    """The aggregates of a project's order book, kept up to date by every
    import and every tagging action (the same shape as ImportSummary).
    `version` moves forward by one with every change, by compare-and-set:
    Louis's decision records the version it was taken on."""

    project = models.OneToOneField(
        Project, on_delete=models.PROTECT, primary_key=True, related_name="book"
    )
    version = models.IntegerField(default=0)
    as_of_import = models.ForeignKey(
        ReconciliationImport, null=True, on_delete=models.PROTECT, related_name="+"
    )
    effective_status = models.CharField(max_length=10, choices=ReconciliationImport.Status.choices)
    totals = models.JSONField(default=dict)
    by_day = models.JSONField(default=list)
    by_source_event = models.JSONField(default=list)
    by_program = models.JSONField(default=list)
    by_discount_code = models.JSONField(default=list)
    exceptions = models.JSONField(default=list)
    exception_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("訂單簿摘要")
        verbose_name_plural = _("訂單簿摘要")


class OrderEvidence(models.Model):
    """Huber's tag history, append-only; the newest entry is the current tag
    (mirrored in OrderTag so lists never scan the history)."""

    class Tag(models.TextChoices):
        PAID = "paid", _("已付款")
        REFUNDED = "refunded", _("已退款")
        REBOUGHT = "rebought", _("重買")
        UNRESOLVED = "unresolved", _("待釐清")

    # The order the evidence is about, and the version of it Huber saw.
    order = models.ForeignKey(Order, null=True, on_delete=models.PROTECT, related_name="evidence")
    order_row = models.ForeignKey(OrderRow, on_delete=models.PROTECT, related_name="evidence")
    tag = models.CharField(max_length=12, choices=Tag.choices)
    payment_ref = models.CharField(max_length=200, blank=True)
    refund_ref = models.CharField(max_length=200, blank=True)
    evidence_ref = models.CharField(max_length=500, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("訂單佐證")
        verbose_name_plural = _("訂單佐證")
        indexes = [
            models.Index(fields=["order_row", "-id"], name="evidence_latest_idx"),
            models.Index(fields=["order", "-id"], name="evidence_order_latest_idx"),
        ]


class OrderTag(models.Model):
    """The current evidence tag of an order (the newest OrderEvidence).
    `stale`: the order changed (a later import brought a changed version)
    after it was tagged; the tag is kept and Huber is asked to look again."""

    order = models.OneToOneField(
        Order, on_delete=models.PROTECT, primary_key=True, related_name="current_tag"
    )
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    tag = models.CharField(max_length=12, choices=OrderEvidence.Tag.choices)
    evidence = models.ForeignKey(OrderEvidence, on_delete=models.PROTECT, related_name="+")
    stale = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "kolable_order_tags"
        indexes = [
            models.Index(fields=["project", "tag"], name="ordertag_project_tag_idx"),
        ]


class RevenueDecision(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", _("認列")
        PAUSE = "pause", _("暫停認列")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reconciliation_import = models.ForeignKey(
        ReconciliationImport, on_delete=models.PROTECT, related_name="decisions"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    note = models.TextField(blank=True)
    # The figures the decision was made on, frozen at decision time.
    recognised_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    held_back_rows = models.IntegerField(default=0)
    # The book the decision was taken on: its version and verified figures.
    # A later import or tag moves the book past it (changed_since_decision).
    project = models.ForeignKey(
        Project, null=True, on_delete=models.PROTECT, related_name="revenue_decisions"
    )
    book_version = models.IntegerField(null=True)
    verified_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    verified_orders = models.IntegerField(null=True)
    decided_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("營收認列決定")
        verbose_name_plural = _("營收認列決定")


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
        EVIDENCE_TAGGED = "evidence.tagged", _("標記佐證")
        REVENUE_DECIDED = "revenue.decided", _("營收認列決定")
        DISPATCHED = "dispatch.decided", _("PLS 派工")
        CLAIM_VERIFIED = "claim.verified", _("驗證成果連結")
        CLAIM_REFUSED = "claim.refused", _("拒絕未驗證成果")
        PROJECT_CONTEXT = "project.context", _("更新專案脈絡")
        LOGIN_FAILED = "auth.login_failed", _("登入失敗")

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
