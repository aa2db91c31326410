"""Imports and their rows. OrderRow is append-only (database trigger):
the history of every order."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from .people import Profile
from .requests import DataRequest, Upload


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
