"""Sources that feed the order book by themselves (the Kolable orders API)
and their runs."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .imports import ReconciliationImport
from .people import Profile, Project
from .requests import DataRequest, Upload


class SyncSource(models.Model):
    """A configured pull. Its uploads belong to a standing data request of
    the project (`data_request`): a sync is an incremental import like any
    top-up file, through the same upload, validation and import services.
    The token is kept encrypted (`reconciliation.secret_box`); only its last
    four characters are ever shown."""

    class Kind(models.TextChoices):
        KOLABLE_API = "kolable_api", _("Kolable 訂單 API")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="sync_sources")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.KOLABLE_API)
    base_url = models.CharField(_("API 網址"), max_length=300)
    token_encrypted = models.TextField()
    token_last4 = models.CharField(max_length=4)
    schedule_time = models.TimeField(_("每日同步時間（台北）"))
    overlap_minutes = models.PositiveIntegerField(_("重疊分鐘"), default=60)
    page_size = models.PositiveIntegerField(_("每頁筆數"), default=500)
    # The highest updated_at a committed import holds; moved only after it.
    cursor = models.DateTimeField(null=True, blank=True)
    data_request = models.OneToOneField(
        DataRequest, on_delete=models.PROTECT, related_name="sync_source"
    )
    created_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("同步來源")
        verbose_name_plural = _("同步來源")
        constraints = [
            models.UniqueConstraint(fields=["project", "kind"], name="one_source_per_project_kind"),
            models.CheckConstraint(
                condition=Q(page_size__gte=1) & Q(page_size__lte=5000),
                name="sync_source_page_size_range",
            ),
        ]
        permissions = [
            ("configure_source", "Can configure a sync source"),
            ("sync_source", "Can start a sync run"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.base_url}"

    @property
    def token_hint(self) -> str:
        return f"••••{self.token_last4}"


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("排隊中")
        RUNNING = "running", _("同步中")
        SUCCEEDED = "succeeded", _("成功")
        FAILED = "failed", _("失敗")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("每日排程")
        MANUAL = "manual", _("立即同步")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(SyncSource, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(
        Profile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Refreshed after every page: a running run whose heartbeat stopped was
    # lost with its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_since = models.DateTimeField(null=True, blank=True)
    cursor_after = models.DateTimeField(null=True, blank=True)
    pages = models.IntegerField(default=0)
    rows = models.IntegerField(default=0)
    new_orders = models.IntegerField(default=0)
    changed_orders = models.IntegerField(default=0)
    error_code = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    upload = models.ForeignKey(
        Upload, null=True, blank=True, on_delete=models.PROTECT, related_name="sync_runs"
    )
    reconciliation_import = models.ForeignKey(
        ReconciliationImport,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sync_runs",
    )
    # What each owner's digest counted (the next digest tells only what is new).
    digest = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("同步紀錄")
        verbose_name_plural = _("同步紀錄")
        constraints = [
            # Two workers never pull the same source at once.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_source",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="sync_run_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["source", "-created_at"], name="syncrun_history_idx")]

    def __str__(self):
        return f"run {self.id} ({self.status})"
