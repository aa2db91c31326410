"""/live/ (every stream of the book), a stream's page, Louis's compliance
form, the viewer figures upload and the dashboard's CSV/XLSX exports."""

import csv
import io

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import ComplianceRecord, OrderEvidence
from reconciliation.permissions import Action, can
from reconciliation.privacy import safe_cell
from reconciliation.selectors import live as selectors
from reconciliation.selectors.scorecard import default_project
from reconciliation.services import live_records
from reconciliation.services.live import STALE_TAGS
from reconciliation.services.revenue import ExceptionCode
from reconciliation.views import charts
from reconciliation.views.common import permission_required


class ComplianceForm(forms.Form):
    source_event = forms.CharField(widget=forms.HiddenInput, max_length=200)
    status = forms.ChoiceField(label=gettext_lazy("狀態"), choices=ComplianceRecord.Status.choices)
    evidence_ref = forms.CharField(
        label=gettext_lazy("佐證（錄影時間點、截圖、連結）"), required=False, max_length=500
    )
    note = forms.CharField(
        label=gettext_lazy("備註"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in live_records.COMPLIANCE_CHECKS.items():
            self.fields[name] = forms.BooleanField(label=label, required=False)

    def check_fields(self):
        return [self[name] for name in live_records.COMPLIANCE_CHECKS]


class ViewersForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("觀看數字檔（CSV 或 XLSX）"))


def _sort(request) -> tuple[str, bool]:
    sort = request.GET.get("sort", "gmv")
    return (sort if sort in selectors.SORT_KEYS else "gmv"), request.GET.get("order") != "asc"


@permission_required(Action.VIEW_EVIDENCE)
def live_dashboard(request):
    sort, descending = _sort(request)
    board = selectors.dashboard(default_project(), sort=sort, descending=descending)
    peak = max((r.get("gmv") for r in board.rows), default=0)
    return render(
        request,
        "reconciliation/live.html",
        {
            "board": board,
            "peak": peak,
            "columns": _columns(board),
            "can_upload_viewers": can(request.user, Action.DECIDE_REVENUE),
            "statuses": ComplianceRecord.Status.choices,
            "viewers_form": ViewersForm(),
        },
    )


def _columns(board) -> list[dict]:
    """The sortable headers: the link flips the order of the current column."""
    heads = (
        ("source_event", _("直播場次")),
        ("gmv", "GMV"),
        ("orders", _("訂單")),
        ("paid_amount", _("已付款")),
        ("refund_count", _("退款")),
        ("rebuys", _("重買")),
        ("aov", _("客單價")),
        ("buyers", _("買家")),
        ("returning_buyers", _("回購買家")),
        ("discount_orders", _("折扣碼訂單")),
        ("conversion", _("轉換率")),
    )
    out = []
    for key, label in heads:
        descending = not (board.sort == key and board.descending)
        order = "desc" if descending else "asc"
        out.append(
            {
                "key": key,
                "label": label,
                "href": f"{reverse('live')}?sort={key}&order={order}",
                "current": board.sort == key,
                "descending": board.descending,
            }
        )
    return out


@permission_required(Action.VIEW_EVIDENCE)
def live_stream(request, source_event):
    page = selectors.stream_page(default_project(), source_event)
    if page is None:
        raise Http404
    form = ComplianceForm(
        initial={
            "source_event": source_event,
            "status": page.row.compliance_status,
            **(page.row.compliance.checks if page.row.compliance else {}),
        }
    )
    return render(
        request,
        "reconciliation/live_stream.html",
        {
            "page": page,
            "row": page.row,
            "comparison": _comparison(page),
            "hour_chart": charts.hour_chart(page.hours),
            "checks": _checks(page),
            "can_record": can(request.user, Action.DECIDE_REVENUE) and page.row.is_stream,
            "statuses": ComplianceRecord.Status.choices,
            "refund_tags": _labelled(page.figures.refund_tags, _tag_labels()),
            "exceptions": _labelled(page.figures.exceptions, _exception_labels()),
            "history": [
                {
                    "record": h,
                    "unticked": [
                        str(label)
                        for name, label in live_records.COMPLIANCE_CHECKS.items()
                        if not h.checks.get(name)
                    ],
                }
                for h in page.history
            ],
            "form": form,
        },
    )


def _tag_labels() -> dict:
    return {**dict(OrderEvidence.Tag.choices), "": _("尚未標記")}


def _exception_labels() -> dict:
    return {**dict(ExceptionCode.choices), STALE_TAGS: _("訂單在標記之後有變更（待複查）")}


def _labelled(counts: dict, labels: dict) -> list[tuple[str, int]]:
    """(label, n) largest first; an unknown code still shows itself."""
    return [
        (str(labels.get(code, code)), n)
        for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _comparison(page) -> list[dict]:
    labels = {
        "gmv": "GMV",
        "orders": _("訂單"),
        "paid_amount": _("已付款"),
        "refund_count": _("退款筆數"),
        "refund_rate": _("退款率"),
        "rebuys": _("重買"),
        "aov": _("客單價"),
        "buyers": _("買家"),
        "returning_buyers": _("回購買家"),
        "discount_share": _("折扣碼訂單占比"),
        "conversion": _("轉換率（訂單／觀看）"),
        "gmv_per_thousand_viewers": _("每千人觀看 GMV"),
    }
    kinds = {"refund_rate": "percent", "discount_share": "percent", "conversion": "percent"}
    return [
        {
            "key": key,
            "label": label,
            "value": page.row.get(key),
            "median": page.medians.get(key),
            "kind": "money" if key in selectors.MONEY_KEYS else kinds.get(key, "count"),
        }
        for key, label in labels.items()
    ]


def _checks(page) -> list[dict]:
    current = page.row.compliance
    return [
        {
            "name": name,
            "label": label,
            "ticked": bool(current and current.checks.get(name)),
        }
        for name, label in live_records.COMPLIANCE_CHECKS.items()
    ]


@require_POST
@permission_required(Action.DECIDE_REVENUE)
def live_compliance(request):
    form = ComplianceForm(request.POST)
    source_event = request.POST.get("source_event", "")
    if not form.is_valid():
        messages.error(request, _("請選擇狀態，並確認各欄位長度。"))
    else:
        try:
            live_records.record_compliance(
                actor=request.user,
                project=default_project(),
                source_event=form.cleaned_data["source_event"],
                checks={name: form.cleaned_data[name] for name in live_records.COMPLIANCE_CHECKS},
                status=form.cleaned_data["status"],
                evidence_ref=form.cleaned_data["evidence_ref"],
                note=form.cleaned_data["note"],
            )
        except DomainError as exc:
            messages.error(request, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
        else:
            messages.success(request, _("已記錄素材合規檢查。"))
    try:
        live_records.check_source_event(source_event)
    except DomainError:
        return redirect("live")
    if selectors.stream_page(default_project(), source_event) is None:
        return redirect("live")
    return redirect("live-stream", source_event=source_event)


@require_POST
@permission_required(Action.DECIDE_REVENUE)
def live_viewers(request):
    form = ViewersForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("請選擇要上傳的觀看數字檔。"))
        return redirect("live")
    uploaded = form.cleaned_data["file"]
    try:
        answer = live_records.import_viewers(
            actor=request.user,
            project=default_project(),
            data=live_records.read_limited(uploaded),
            file_name=uploaded.name or "",
        )
    except DomainError as exc:
        messages.error(request, _viewer_problem(exc))
    else:
        text = _("已匯入 %(n)s 場的觀看數字。") % {"n": answer["rows"]}
        if answer["unmatched"]:
            text += _("訂單簿裡沒有這些場次：%(names)s") % {
                "names": "、".join(answer["unmatched"][:10])
            }
        messages.success(request, text)
    return redirect("live")


def _viewer_problem(exc: DomainError) -> str:
    detail = exc.detail
    if isinstance(detail, list):
        shown = "；".join(_("第 %(row)s 列 %(column)s：%(message)s") % e for e in detail[:5])
        return _("觀看數字檔沒有匯入：") + shown
    if isinstance(detail, dict):
        return _("觀看數字檔沒有匯入：") + str(detail.get("message", ""))
    return _("觀看數字檔沒有匯入：") + str(detail)


# --- Exports -------------------------------------------------------------------


def export_table(board) -> tuple[list[str], list[list]]:
    """The dashboard as one table: a row per stream and the totals last."""
    header = [
        _("直播場次"),
        "GMV（NT$）",
        _("訂單"),
        _("已付款訂單"),
        _("已付款（NT$）"),
        _("已撥款淨額（NT$）"),
        _("退款筆數"),
        _("退款金額（NT$）"),
        _("退款率"),
        _("重買"),
        _("客單價（NT$）"),
        _("買家"),
        _("回購買家"),
        _("折扣碼訂單"),
        _("折扣碼占比"),
        _("觀看人數"),
        _("轉換率"),
        _("每千人觀看 GMV（NT$）"),
        _("素材合規"),
        _("營收標記"),
    ]
    statuses = dict(ComplianceRecord.Status.choices)
    missing = _("缺資料")

    def value(v, digits=None):
        if v is None:
            return missing
        return round(v, digits) if digits is not None else v

    rows = []
    for r in board.rows:
        rows.append(
            [
                r.source_event or _("（未標示場次）"),
                value(r.get("gmv"), 2),
                r.get("orders"),
                r.get("paid_orders"),
                value(r.get("paid_amount"), 2),
                value(r.settled_net, 2),
                r.get("refund_count"),
                value(r.get("refund_amount"), 2),
                value(r.get("refund_rate"), 4),
                r.get("rebuys"),
                value(r.get("aov"), 2),
                r.get("buyers"),
                r.get("returning_buyers"),
                r.get("discount_orders"),
                value(r.get("discount_share"), 4),
                value(r.get("viewers")),
                value(r.get("conversion"), 4),
                value(r.get("gmv_per_thousand_viewers"), 2),
                str(statuses.get(r.compliance_status, "—")) if r.is_stream else "—",
                _("合規未通過") if r.flagged else "",
            ]
        )
    t = board.totals
    rows.append(
        [
            _("合計"),
            t["gmv"],
            t["orders"],
            t["paid_orders"],
            t["paid_amount"],
            missing if board.settlement_missing else "",
            t["refund_count"],
            t["refund_amount"],
            value(t["refund_rate"], 4),
            t["rebuys"],
            value(t["aov"], 2),
            t["buyers"],
            t["returning_buyers"],
            t["discount_orders"],
            value(t["discount_share"], 4),
            "",
            "",
            "",
            "",
            _("未通過場次 GMV %(amount)s") % {"amount": charts.ntd(t["flagged_gmv"])},
        ]
    )
    return header, rows


@permission_required(Action.VIEW_EVIDENCE)
def live_export(request, fmt):
    if fmt not in ("csv", "xlsx"):
        raise Http404
    board = selectors.dashboard(default_project())
    if not board.has_book:
        messages.error(request, _("訂單簿還是空的：沒有可匯出的直播數字。"))
        return redirect("live")
    header, rows = export_table(board)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    cells = [[safe_cell(str(h)) for h in header]] + [[safe_cell(v) for v in row] for row in rows]
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(cells)
        response = HttpResponse(
            ("\ufeff" + buffer.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8"
        )
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=_("直播場次")[:31])
        for row in cells:
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        response = HttpResponse(
            buffer.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="kolable-live-{stamp}.{fmt}"'
    return response
