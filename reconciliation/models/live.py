"""Live streams (one source_event of the book each): their stored figures,
Louis's creative-compliance checklist (append-only, database trigger) and the
viewer figures a platform export adds."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .people import Profile, Project


class LiveStreamFigures(models.Model):
    """The figures of one source_event over the book's current orders, stored
    so /live/ and the stream page never read orders. Rewritten whole by
    services.live.refresh_live_streams with every change of the book."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="live_streams")
    source_event = models.CharField(max_length=200, blank=True)
    book_version = models.IntegerField(default=0)
    orders = models.IntegerField(default=0)
    gmv = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    paid_orders = models.IntegerField(default=0)
    paid_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    pending_orders = models.IntegerField(default=0)
    refund_count = models.IntegerField(default=0)
    refund_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    rebuys = models.IntegerField(default=0)
    buyers = models.IntegerField(default=0)
    returning_buyers = models.IntegerField(default=0)
    discount_orders = models.IntegerField(default=0)
    # What the payment provider paid out for the stream's orders (settled
    # net, and refunds settled back); null while no settlement file exists.
    settled_net = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    refund_settled = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    first_order_at = models.DateTimeField(null=True)
    last_order_at = models.DateTimeField(null=True)
    # Orders per hour (0..23, Asia/Taipei) of the stream day.
    by_hour = models.JSONField(default=list)
    # [{key, orders, gmv, paid_amount}] per programme and per discount code.
    programs = models.JSONField(default=list)
    discount_codes = models.JSONField(default=list)
    # Refunded orders by Huber's current tag ('' untagged): {tag: orders}.
    refund_tags = models.JSONField(default=dict)
    # Open exceptions of the stream's orders: {code: orders}.
    exceptions = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("直播場次數字")
        verbose_name_plural = _("直播場次數字")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "source_event"], name="one_live_stream_per_project"
            ),
        ]

    def __str__(self):
        return self.source_event


class LiveBookTotals(models.Model):
    """The period's totals over every stream (distinct buyers are not a sum
    of the streams' buyers), written with the streams' figures."""

    project = models.OneToOneField(
        Project, on_delete=models.PROTECT, primary_key=True, related_name="live_totals"
    )
    book_version = models.IntegerField(default=0)
    totals = models.JSONField(default=dict)
    # Set by an import that changed the book's orders, cleared by the refresh
    # after it: while set, the pages say the figures are being brought up
    # to date (they show the book as it was before that import).
    behind_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class ComplianceRecord(models.Model):
    """One entry of a stream's creative-compliance history, append-only; the
    newest entry is the stream's current status."""

    class Status(models.TextChoices):
        PASS = "pass", _("通過")
        FAIL = "fail", _("未通過")
        PENDING = "pending", _("待審")

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    source_event = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices)
    # {check name: true / false} for every name of services.live.COMPLIANCE_CHECKS.
    checks = models.JSONField(default=dict)
    evidence_ref = models.CharField(max_length=500, blank=True)
    note = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("素材合規紀錄")
        verbose_name_plural = _("素材合規紀錄")
        indexes = [
            models.Index(fields=["project", "source_event", "-id"], name="compliance_latest_idx"),
        ]


class StreamViewers(models.Model):
    """A stream's viewer figures from the platform's export (the newest file
    that named the stream wins)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    source_event = models.CharField(max_length=200)
    started_at = models.DateTimeField(null=True)
    ended_at = models.DateTimeField(null=True)
    viewers = models.IntegerField()
    peak_concurrent = models.IntegerField(null=True)
    product_clicks = models.IntegerField(null=True)
    file_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("直播觀看數字")
        verbose_name_plural = _("直播觀看數字")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "source_event"], name="one_viewer_row_per_stream"
            ),
        ]
