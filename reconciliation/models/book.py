"""The order book: each order's current state, its evidence and Louis's
decisions over it. OrderEvidence is append-only (database trigger)."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from .imports import OrderRow, ReconciliationImport
from .people import Profile, Project


class Order(models.Model):
    """The order book (one row per project and order_id): the current state of
    the order, a copy of its current version's fields (the OrderRow it came
    from), so the queue and the revenue tally read one narrow table. Moved
    only by services.book, inside the import's transaction, after the
    project's BookSummary version was compare-and-set."""

    # No database FK constraint: PostgreSQL checks it row by row, seconds on a
    # 1,000,000-order import; orders are written only by services.book, with
    # the project locked, and projects are never deleted (PROTECT elsewhere).
    # No index of its own either: the unique (project, order_id) serves it.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name="orders",
        db_constraint=False,
        db_index=False,
    )
    order_id = models.CharField(max_length=100)
    current_row = models.ForeignKey(
        OrderRow, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
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
            # Only the orders a snapshot lacked: the summary counts and lists
            # them after every import without reading the whole book.
            models.Index(
                fields=["project", "id"],
                name="order_missing_idx",
                condition=models.Q(missing_import__isnull=False),
            ),
            # Only refunded orders: a daily file looks up the refunds its
            # customers may re-buy without reading the whole book.
            models.Index(
                fields=["project", "customer_key"],
                name="order_refund_customer_idx",
                condition=models.Q(classification="refunded"),
            ),
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
    # How much of the recognised amount the provider has settled, and the
    # rest (null: no settlement file had been imported).
    settled_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    unsettled_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    decided_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("營收認列決定")
        verbose_name_plural = _("營收認列決定")
