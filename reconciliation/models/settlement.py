"""Settlement files: the payment provider's lines (append-only, database
trigger), the per-order result of matching them against the book, and the
manual matches Huber and Louis make."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .book import Order
from .people import Profile, Project
from .requests import DataRequest, Upload


class SettlementImport(models.Model):
    """One per accepted settlement upload (the database makes it idempotent);
    written once, complete, like a ReconciliationImport."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("已驗收")
        FAILED = "failed", _("失敗")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    data_request = models.ForeignKey(
        DataRequest, on_delete=models.PROTECT, related_name="settlement_imports"
    )
    upload = models.OneToOneField(
        Upload, on_delete=models.PROTECT, related_name="settlement_import"
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    layout = models.CharField(max_length=20, blank=True)
    line_count = models.IntegerField(default=0)
    matched_count = models.IntegerField(default=0)
    orphan_count = models.IntegerField(default=0)
    duplicate_line_count = models.IntegerField(default=0)
    # Orders of the book whose lines disagree with them once this file counted.
    mismatch_count = models.IntegerField(default=0)
    scorecard_ref = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(Profile, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "kolable_settlement_imports"
        ordering = ["-created_at"]
        verbose_name = _("撥款對帳匯入")
        verbose_name_plural = _("撥款對帳匯入")


class SettlementLine(models.Model):
    """One line of a settlement file, as the provider wrote it, with the state
    it got when it arrived: matched (to `order`), orphan (no order of the book
    carries its payment_ref) or duplicate_line (its provider_txn_id was seen
    before; ignored)."""

    class State(models.TextChoices):
        MATCHED = "matched", _("已對上訂單")
        ORPHAN = "orphan", _("找不到訂單")
        DUPLICATE_LINE = "duplicate_line", _("重複的撥款明細")

    id = models.BigAutoField(primary_key=True)
    # No database FK constraints: checked row by row on PostgreSQL (seconds
    # on a 1,000,000-line file); lines are written only by services.settlement.
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    settlement_import = models.ForeignKey(
        SettlementImport,
        on_delete=models.PROTECT,
        related_name="lines",
        db_constraint=False,
        db_index=False,
    )
    row_number = models.IntegerField()
    payment_ref = models.CharField(max_length=200)
    ref_key = models.CharField(max_length=200)
    line_key = models.CharField(max_length=400)
    provider_txn_id = models.CharField(max_length=100, blank=True)
    txn_type = models.CharField(max_length=12)
    gross_amount = models.DecimalField(max_digits=14, decimal_places=2)
    fee_amount = models.DecimalField(max_digits=14, decimal_places=2)
    net_amount = models.DecimalField(max_digits=14, decimal_places=2)
    txn_date = models.DateTimeField()
    settlement_date = models.DateTimeField(null=True)
    payout_id = models.CharField(max_length=100, blank=True)
    settlement_status = models.CharField(max_length=10)
    provider = models.CharField(max_length=40, blank=True)
    line_state = models.CharField(max_length=16, choices=State.choices)
    order = models.ForeignKey(
        Order,
        null=True,
        on_delete=models.PROTECT,
        related_name="settlement_lines",
        db_constraint=False,
    )

    class Meta:
        db_table = "kolable_settlement_lines"
        verbose_name = _("撥款明細")
        verbose_name_plural = _("撥款明細")
        # Lines are inserted in order of their order (the FK index only ever
        # appends); each further index costs seconds on a 1,000,000-line file.
        indexes = [
            models.Index(fields=["project", "line_state"], name="settlement_line_state_idx"),
        ]


class SettlementMatch(models.Model):
    """A person's match of an orphan line to an order. Undoing it keeps the
    row (undone_at/undone_by): at most one live match per line."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey(SettlementLine, on_delete=models.PROTECT, related_name="matches")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="settlement_matches")
    note = models.CharField(max_length=500)
    accept_difference = models.BooleanField(default=False)
    # Order amount − line gross at the time of the match.
    difference = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    created_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(Profile, null=True, on_delete=models.PROTECT, related_name="+")
    undone_at = models.DateTimeField(null=True)
    undo_note = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "kolable_settlement_matches"
        verbose_name = _("人工撥款對帳")
        verbose_name_plural = _("人工撥款對帳")
        constraints = [
            models.UniqueConstraint(
                fields=["line"], condition=Q(undone_at__isnull=True), name="one_live_match_per_line"
            ),
        ]


class OrderSettlement(models.Model):
    """The current settlement result of one order of the book (one row per
    order that has at least one counted line), rebuilt by services.settlement
    after every settlement import and manual match. Amounts are NT$ with
    cents; refund_settled is the refunded money the provider settled (a
    positive figure). Paid orders without a row are `expected` within
    SETTLEMENT_WINDOW_DAYS of created_at and `missing` after it."""

    class State(models.TextChoices):
        SETTLED = "settled", _("已撥款")
        REFUND_SETTLED = "refund_settled", _("退款已結清")
        PARTIALLY_REFUNDED = "partially_refunded", _("部分退款")
        OVER_AMOUNT = "over_amount", _("撥款多於訂單金額")
        AMOUNT_MISMATCH = "amount_mismatch", _("撥款金額不符")
        EXPECTED = "expected", _("等待撥款")
        MISSING = "missing", _("逾期未撥款")

    # The states Louis must accept or have explained: the lines do not sum
    # to the order's amount and do not refund it either.
    MISMATCH_STATES = (State.OVER_AMOUNT, State.AMOUNT_MISMATCH)

    order = models.OneToOneField(
        Order,
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="settlement",
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    state = models.CharField(max_length=20, choices=State.choices)
    settled_gross = models.DecimalField(max_digits=16, decimal_places=2)
    settled_fee = models.DecimalField(max_digits=16, decimal_places=2)
    settled_net = models.DecimalField(max_digits=16, decimal_places=2)
    refund_settled = models.DecimalField(max_digits=16, decimal_places=2)
    unsettled_gross = models.DecimalField(max_digits=16, decimal_places=2)
    line_count = models.IntegerField()
    difference_accepted = models.BooleanField(default=False)

    class Meta:
        db_table = "kolable_order_settlements"
        verbose_name = _("訂單撥款結果")
        verbose_name_plural = _("訂單撥款結果")
        indexes = [models.Index(fields=["project", "state"], name="order_settlement_state_idx")]


class SettlementSummary(models.Model):
    """The settled rung of a project's revenue ladder, kept up to date by
    every settlement import, manual match, order import and tagging action
    once the project has a settlement file, so pages never sum lines.
    `unsettled_by_hour`: [[hour (UTC, ISO), paid orders without a settled
    line, their amount]] — split into expected and missing at read time."""

    project = models.OneToOneField(
        Project, on_delete=models.PROTECT, primary_key=True, related_name="settlement_summary"
    )
    figures = models.JSONField(default=dict)
    unsettled_by_hour = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("撥款對帳摘要")
        verbose_name_plural = _("撥款對帳摘要")


class SettlementClaim(models.Model):
    """An orphan line counted for the order a later order import brought
    (the line itself is append-only and keeps its `orphan` state). Derived:
    rewritten for the orders an order import touched, never edited by a
    person; a live manual match of the line wins over it."""

    line = models.OneToOneField(
        SettlementLine,
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="claim",
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="settlement_claims", db_constraint=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "kolable_settlement_claims"
        verbose_name = _("後到訂單認領的撥款明細")
        verbose_name_plural = _("後到訂單認領的撥款明細")


class SettlementAcceptance(models.Model):
    """Louis accepts the difference between an order's amount and what the
    provider settled for it. It holds while the settled gross is the one he
    accepted: a later line that moves it opens the question again. Undoing
    keeps the row (undone_at/undone_by): at most one live acceptance per
    order."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="settlement_acceptances"
    )
    expected_amount = models.DecimalField(max_digits=14, decimal_places=2)
    settled_gross = models.DecimalField(max_digits=16, decimal_places=2)
    note = models.CharField(max_length=500)
    created_by = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(Profile, null=True, on_delete=models.PROTECT, related_name="+")
    undone_at = models.DateTimeField(null=True)
    undo_note = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "kolable_settlement_acceptances"
        verbose_name = _("接受的撥款差額")
        verbose_name_plural = _("接受的撥款差額")
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(undone_at__isnull=True),
                name="one_live_acceptance_per_order",
            ),
        ]
