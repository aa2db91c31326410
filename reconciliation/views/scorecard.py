"""The scorecard page (the seed's escalation HTML, live), Louis's decision
form on it, and its CSV/XLSX exports."""

import csv
import io
import uuid

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import RevenueDecision
from reconciliation.permissions import Action, can
from reconciliation.selectors import live as live_selectors
from reconciliation.selectors.claims import verified_claims
from reconciliation.selectors.memo import memoised
from reconciliation.selectors.scorecard import Scorecard, current_scorecard
from reconciliation.services.revenue import (
    AMOUNT_METRICS,
    METRICS,
    open_exceptions,
    record_revenue_decision,
)
from reconciliation.views import charts
from reconciliation.views.common import permission_required


class RevenueDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=gettext_lazy("決定"), choices=RevenueDecision.Decision.choices
    )
    # The book version the page showed: a book that moved since is refused,
    # so Louis approves the figures he saw.
    book_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        required=False, label=gettext_lazy("我已看過上面的金額、訂單數與佐證進度")
    )
    note = forms.CharField(
        label=gettext_lazy("備註"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def _import_param(request):
    value = request.GET.get("import")
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@permission_required(Action.VIEW_DASHBOARD)
def scorecard_page(request):
    import_id = _import_param(request)
    view_evidence = can(request.user, Action.VIEW_EVIDENCE)
    page = memoised(
        "scorecard-page", (import_id, view_evidence), lambda: _page(import_id, view_evidence)
    )
    context = {
        **page,
        "can_decide": can(request.user, Action.DECIDE_REVENUE),
        "decision_form": RevenueDecisionForm(),
    }
    return render(request, "reconciliation/scorecard.html", context)


def _page(import_id, view_evidence: bool) -> dict:
    """What the page shows of the book, the same for everyone who may see
    the evidence (or not): its tables rendered once per reading."""
    card = current_scorecard(import_id=import_id)
    claims = list(verified_claims(card.project)) if card.project else []
    context = {
        "card": card,
        "header_html": render_to_string("reconciliation/_scorecard_header.html", {"card": card}),
        "status_html": render_to_string("reconciliation/_scorecard_status.html", {"card": card}),
        "claims_html": render_to_string(
            "reconciliation/_scorecard_claims.html", {"claims": claims}
        ),
    }
    if card.verified:
        totals = context["totals"] = card.totals
        context["book_totals"] = render_to_string(
            "reconciliation/_scorecard_totals.html",
            {"card": card, "totals": totals, "discount": card.discount_conversion},
        )
        context["book_detail"] = memoised(
            "scorecard-book",
            (view_evidence,),
            lambda: _book_detail(card, view_evidence),
            clock=False,
        )
    return context


def _book_detail(card: Scorecard, view_evidence: bool) -> str:
    """The book's chart and tables: what the book holds, at any time (its
    streams link to the live pages for whoever may see the evidence)."""
    sources = card.dimension("by_source_event")
    return render_to_string(
        "reconciliation/_scorecard_book.html",
        {
            "card": card,
            "daily_chart": charts.daily_chart(card.chart_days),
            "legend": charts.legend(),
            "sources": sources,
            "stream_compliance": live_selectors.compliance_flags(
                card.project, [r["key"] for r in sources[:30]]
            ),
            "source_peak": max((r["paid_amount"] for r in sources), default=0),
            "programs": card.dimension("by_program"),
            "discount": card.discount_conversion,
            "exceptions": card.exceptions,
            "nav_can": {"view_evidence": view_evidence},
        },
    )


@require_POST
@permission_required(Action.DECIDE_REVENUE)
def scorecard_decide(request):
    form = RevenueDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("請選擇認列或暫停。"))
        return redirect("scorecard")
    if (
        form.cleaned_data["decision"] == RevenueDecision.Decision.APPROVE
        and not form.cleaned_data["confirm"]
    ):
        messages.error(request, _("認列前請勾選確認：你已看過要認列的金額、訂單數與佐證進度。"))
        return redirect("scorecard")
    try:
        made = record_revenue_decision(
            decided_by=request.user,
            decision=form.cleaned_data["decision"],
            note=form.cleaned_data["note"],
            expected_version=form.cleaned_data.get("book_version"),
        )
    except DomainError as exc:
        messages.error(request, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    else:
        if made.decision == RevenueDecision.Decision.APPROVE:
            messages.success(
                request,
                _("已認列已驗證營收 %(amount)s。") % {"amount": charts.ntd(made.recognised_amount)}
                + (
                    _("保留 %(n)s 筆有例外的訂單，不認列。") % {"n": made.held_back_rows}
                    if made.held_back_rows
                    else ""
                ),
            )
        else:
            messages.success(request, _("已暫停認列營收。"))
    return redirect("scorecard")


# --- Exports -------------------------------------------------------------------

METRIC_LABELS = {
    "orders": gettext_lazy("訂單數"),
    "gmv": "GMV",
    "paid_orders": gettext_lazy("已驗證訂單"),
    "paid_amount": gettext_lazy("已驗證營收"),
    "held_orders": gettext_lazy("保留訂單"),
    "held_amount": gettext_lazy("保留金額"),
    "pending_orders": gettext_lazy("待付款訂單"),
    "pending_amount": gettext_lazy("待付款金額"),
    "refunded_orders": gettext_lazy("退款訂單"),
    "refunded_amount": gettext_lazy("退款金額"),
    "duplicate_rows": gettext_lazy("重複列"),
    "rebuy_orders": gettext_lazy("重買訂單"),
    "rebuy_amount": gettext_lazy("重買營收"),
}


# The first column of each breakdown, named for what it holds.
DIMENSION_HEADERS = {
    "by_day": gettext_lazy("日期"),
    "by_source_event": gettext_lazy("直播場次/來源"),
    "by_program": gettext_lazy("課程代碼"),
    "by_discount_code": gettext_lazy("折扣碼"),
}


def export_number(metric: str, value):
    """Money in whole NT$ and counts as integers: 638427480, never 638427480.0."""
    if value is None:
        return None
    if metric in AMOUNT_METRICS or metric == "amount":
        return int(round(float(value)))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _settlement_rows(settlement: dict | None) -> list[list]:
    """The settled rung in the overview; before any settlement file one row
    says it is missing (and no 實收 figure appears)."""
    if settlement is None:
        return [[_("金流撥款檔"), _("尚未收到：不顯示實收")]]
    return [
        [_("實收（已撥款淨額，NT$）"), export_number("amount", settlement["collected"])],
        [_("已撥款總額（NT$）"), export_number("amount", settlement["settled_gross"])],
        [_("金流手續費（NT$）"), export_number("amount", settlement["fees"])],
        [_("已撥款淨額（NT$）"), export_number("amount", settlement["settled_net"])],
        [_("已付款未撥款（NT$）"), export_number("amount", settlement["paid_unsettled_amount"])],
        [_("等待撥款訂單"), settlement["expected_count"]],
        [_("逾期未撥款訂單"), settlement["missing_count"]],
        [_("找不到訂單的撥款明細"), settlement["orphan_count"]],
        [_("撥款金額不符訂單"), settlement["mismatch_count"]],
    ]


def export_tables(card: Scorecard) -> list[tuple[str, list[str], list[list]]]:
    """(sheet name, header, rows) for every table of the scorecard."""
    metrics_header = [
        f"{METRIC_LABELS[m]}（NT$）" if m in AMOUNT_METRICS else str(METRIC_LABELS[m])
        for m in METRICS
    ]
    totals = card.totals
    imported = card.reconciliation_import
    tables = [
        (
            _("總覽"),
            [_("項目"), _("值")],
            [
                [_("營收狀態"), card.revenue_status_label],
                [_("對帳匯入"), str(imported.pk)],
                [_("匯入狀態"), card.summary.get_effective_status_display()],
                [_("總列數"), imported.row_count],
                [_("已付款列"), imported.paid_count],
                [_("待付款列"), imported.pending_count],
                [_("已退款列"), imported.refunded_count],
                [_("重複列"), imported.duplicate_count],
                *[[metrics_header[i], export_number(m, totals[m])] for i, m in enumerate(METRICS)],
                [_("例外筆數"), card.summary.exception_count],
                *_settlement_rows(card.settlement),
            ],
        )
    ]
    for name, label in (
        ("by_day", _("每日")),
        ("by_source_event", _("直播場次")),
        ("by_program", _("課程")),
        ("by_discount_code", _("折扣碼")),
    ):
        tables.append(
            (
                label,
                [str(DIMENSION_HEADERS[name]), *metrics_header],
                [
                    [r["key"], *(export_number(m, r[m]) for m in METRICS)]
                    for r in card.dimension(name)
                ],
            )
        )
    tables.append(
        (
            _("例外"),
            [_("列號"), _("訂單編號"), _("問題"), _("負責人"), _("金額（NT$）"), _("課程")],
            [
                [
                    e["row_number"],
                    e["order_id"],
                    e["label"],
                    e["owner_name"],
                    export_number("amount", e["amount"]),
                    e["program_id"],
                ]
                for e in card.describe_exceptions(open_exceptions(project=card.project))
            ],
        )
    )
    return tables


@permission_required(Action.VIEW_DASHBOARD)
def scorecard_export(request, fmt):
    if fmt not in ("csv", "xlsx"):
        raise Http404
    card = current_scorecard(import_id=_import_param(request))
    if not card.verified:
        messages.error(request, _("尚無已驗收的對帳匯入：營收未驗證，沒有可匯出的數字。"))
        return redirect("scorecard")
    from reconciliation.privacy import safe_cell as guard

    def safe_cell(value):
        return guard(str(value) if isinstance(value, Promise) else value)

    tables = export_tables(card)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for title, header, rows in tables:
            writer.writerow([safe_cell(title)])
            writer.writerow([safe_cell(h) for h in header])
            writer.writerows([safe_cell(v) for v in row] for row in rows)
            writer.writerow([])
        response = HttpResponse(
            ("\ufeff" + buffer.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8"
        )
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        for title, header, rows in tables:
            sheet = book.create_sheet(title=title[:31])
            sheet.append([safe_cell(h) for h in header])
            for row in rows:
                sheet.append([safe_cell(v) for v in row])
        buffer = io.BytesIO()
        book.save(buffer)
        response = HttpResponse(
            buffer.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="kolable-scorecard-{stamp}.{fmt}"'
    return response
