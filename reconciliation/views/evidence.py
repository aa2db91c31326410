"""Huber's evidence queue pages: the queue with its counts and filters,
tagging (inline, a selection, or everything the filter matches), the tag-file
import and the exports. Louis reads; Huber tags."""

import html
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import OrderEvidence, OrderRow, OrderSettlement
from reconciliation.permissions import Action, can
from reconciliation.selectors import evidence as queue
from reconciliation.selectors.memo import memoised
from reconciliation.services import evidence as evidence_service
from reconciliation.services import evidence_files, tag_files
from reconciliation.services.revenue import ExceptionCode
from reconciliation.views.common import permission_required

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZES = (50, 100, 200, 500)
XLSX_EXPORT_LIMIT = 100_000
FILTER_PREFIX = "f_"
# The id of the page's one form that every row's quick-tag controls submit.
INLINE_FORM = "inline-tag"


def _detail_text(exc: DomainError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    return str(detail)


def _scorecard_url() -> str | None:
    # The scorecard is the reconciliation area's page; link it once it exists.
    try:
        return reverse("scorecard")
    except NoReverseMatch:
        return None


def _queue_url(params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("evidence") + (f"?{query}" if query else "")


def _tag_choices() -> list[tuple[str, str]]:
    # Plain strings: lazy labels would be translated again at every use.
    return [(value, str(label)) for value, label in OrderEvidence.Tag.choices]


def _amount(value) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def render_queue_rows(rows, *, can_tag: bool) -> str:
    """The queue's table rows as HTML. Built here rather than in a template
    loop: the template engine spent ~1 ms a row (filters, translations and
    the per-row form), which alone broke the 100 ms page budget at 500 rows;
    this builds a row in microseconds. Every value is escaped."""
    tag_labels = dict(_tag_choices())
    exception_labels = {value: str(label) for value, label in ExceptionCode.choices}
    class_labels = {value: str(label) for value, label in OrderRow.Classification.choices}
    untagged = _esc(_("未標記"))
    inline_form = ""
    if can_tag:
        options = "".join(
            f'<option value="{v}">{_esc(label)}</option>' for v, label in tag_labels.items()
        )
        ref_label = _esc(_("單號／佐證"))
        # The row's controls belong to the page's one inline form
        # (INLINE_FORM); the pressed button names the order, and the tag and
        # reference are read under that order's names. The csrf token and
        # the way back are in the form once, not in every row.
        inline_form = (
            '<td class="ev-quick"><div class="ev-inline" data-inline-tag>'
            f'<select name="tag:{{order_id}}" form="{INLINE_FORM}" aria-label="{_esc(_("標記"))}">{options}</select>'
            # The row's own payment reference is filled in (the default tag
            # is paid); evidence.js clears it for the other tags.
            f'<input type="text" name="ref:{{order_id}}" form="{INLINE_FORM}" maxlength="200" placeholder="{ref_label}" aria-label="{ref_label}" value="{{payment_ref}}">'
            f'<button type="submit" name="order_ids" value="{{order_id}}" form="{INLINE_FORM}" class="btn">{_esc(_("標記"))}</button>'
            '<span class="small ev-inline-msg" role="status"></span></div></td>'
        )
    select_label = _("選取 %(order)s")
    rebuy_label = _("重買自 %(order)s")
    stale_text = _esc(_("需複查：標記後訂單有變更"))
    changed_text = _esc(_("已變更（第 %(n)s 版）"))
    order_base = reverse("order-detail", args=["__ORDER__"])
    # Column names repeated on each cell for the phone layout (CSS shows
    # them as labels when the table becomes one card per order).
    label = {
        name: _esc(text)
        for name, text in (
            ("when", _("建立時間")),
            ("amount", _("金額")),
            ("source", _("直播場次")),
            ("code", _("折扣碼")),
            ("ref", _("付款單號")),
        )
    }
    out = []
    for row in rows:
        order_id = _esc(row.order_id)
        parts = [f'<tr data-order-id="{order_id}" data-testid="order-row">']
        if can_tag:
            parts.append(
                f'<td class="ev-check"><input type="checkbox" name="order_ids" value="{order_id}" '
                f'form="bulk-form" aria-label="{_esc(select_label % {"order": row.order_id})}"></td>'
            )
        link = _esc(order_base.replace("__ORDER__", quote(row.order_id, safe="")))
        parts.append(f'<td class="ev-order"><a href="{link}"><b>{order_id}</b></a>')
        if row.changed_import_id is not None:
            parts.append(f'<div class="small warn">{changed_text % {"n": row.versions}}</div>')
        if row.exception_code:
            parts.append(
                f'<div class="small bad">{_esc(exception_labels.get(row.exception_code, ""))}'
                f' <span class="code-hint">{_esc(row.exception_code)}</span></div>'
            )
        if row.rebuy_of:
            parts.append(f'<div class="small">{_esc(rebuy_label % {"order": row.rebuy_of})}</div>')
        status = class_labels.get(row.classification, row.classification)
        if row.classification == OrderRow.Classification.DUPLICATE:
            status += f"（{class_labels.get(row.payment_status, row.payment_status)}）"
        parts.append(
            f'</td><td class="ev-when" data-label="{label["when"]}">{_short_time(row.created_at)}</td>'
            f'<td class="num ev-amount" data-label="{label["amount"]}">{_amount(row.amount)}</td>'
            f'<td class="ev-class"><span class="status status-{_esc(row.classification)}">'
            f"{_esc(status)}</span></td>"
            f'<td class="ev-source" data-label="{label["source"]}">{_esc(row.source_event)}</td>'
            f'<td class="ev-code" data-label="{label["code"]}">{_esc(row.discount_code)}</td>'
            f'<td class="ev-ref" data-label="{label["ref"]}"><code>{_esc(row.payment_ref or "—")}</code></td>'
            '<td class="ev-tag-cell" data-tag-cell>'
        )
        if row.tag:
            parts.append(
                f'<span class="status ev-tag-{_esc(row.tag)}">{_esc(tag_labels.get(row.tag, row.tag))}</span>'
                f'<div class="small">{_esc(row.evidence_summary)} · {_esc(row.tagged_by)} '
                f"{_short_time(row.ev_created_at)}</div>"
            )
            if row.tag_stale:
                parts.append(f'<div class="small bad" data-stale-tag>{stale_text}</div>')
        else:
            parts.append(f'<span class="status ev-tag-none">{untagged}</span>')
        parts.append("</td>")
        if can_tag:
            parts.append(
                inline_form.replace("{order_id}", order_id).replace(
                    "{payment_ref}", _esc(row.payment_ref or "")
                )
            )
        parts.append("</tr>")
        out.append("".join(parts))
    return mark_safe("\n".join(out))  # noqa: S308 - built from escaped values above


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _short_time(value) -> str:
    return timezone.localtime(value).strftime("%m/%d %H:%M") if value else ""


@permission_required(Action.VIEW_EVIDENCE)
def evidence_queue(request):
    can_tag = can(request.user, Action.TAG_EVIDENCE)
    status, context = memoised(
        "evidence-queue",
        (request.GET.urlencode(), can_tag),
        lambda: _queue(request.GET, can_tag),
    )
    return render(request, "reconciliation/evidence.html", context, status=status)


def _queue(query, can_tag: bool) -> tuple[int, dict]:
    """The queue page for the query string: its status and what it shows
    (the same for everyone who may tag, or not)."""
    try:
        book = queue.resolve_book()
    except DomainError as exc:
        # An import asked for by id cannot exist before the book does.
        wanted = bool(query.get("import_id"))
        return 404 if wanted else 200, {
            "no_import": True,
            "message": _("找不到這個已驗收的對帳匯入。") if wanted else _detail_text(exc),
        }
    problem = None
    try:
        flt = queue.parse_filter(query, book=book, default_tag=queue.UNTAGGED)
    except DomainError as exc:
        problem = _detail_text(exc)
        flt = queue.parse_filter({}, book=book, default_tag=queue.UNTAGGED)
    page_size = queue.clamp_page_size(query.get("limit") or queue.DEFAULT_PAGE_SIZE)
    try:
        page = queue.queue_page(
            book,
            flt,
            cursor=query.get("cursor") or None,
            page_size=page_size,
        )
    except DomainError as exc:
        problem = _detail_text(exc)
        page = queue.queue_page(book, flt, page_size=page_size)
    counts = queue.tag_counts(book, flt.program_id)
    matching = queue.matching_count(book, flt, counts)
    params = flt.as_params()
    if page_size != queue.DEFAULT_PAGE_SIZE:
        params["limit"] = page_size
    summary = book
    tag_cards = [
        (queue.UNTAGGED, _("未標記"), f"{counts.untagged:,}", counts.untagged),
        *[
            (value, label, f"{counts.by_tag.get(value, 0):,}", counts.by_tag.get(value, 0))
            for value, label in _tag_choices()
        ],
    ]
    context = {
        "book": book,
        "summary": summary,
        "stale_count": queue.stale_count(book),
        "filter_import": queue.resolve_import(book, flt.import_id) if flt.import_id else None,
        "flt": flt,
        "params": params,
        "page": page,
        "rows": page.rows,
        "rows_html": render_queue_rows(page.rows, can_tag=can_tag),
        "counts": counts,
        "tag_cards": tag_cards,
        "matching": matching,
        "matching_text": f"{matching:,}",
        "counts_text": {"tagged": f"{counts.tagged:,}", "total": f"{counts.total:,}"},
        "problem": problem,
        "training_program": queue.training_program_id(book),
        "programs": [(p, f"{n:,}") for p, n in queue.program_choices(book)],
        "source_events": [r["key"] for r in (summary.by_source_event if summary else [])][:100],
        "discount_codes": [r["key"] for r in (summary.by_discount_code if summary else [])][:100],
        "tag_choices": _tag_choices(),
        "tag_filter_choices": [
            (queue.UNTAGGED, _("未標記")),
            *_tag_choices(),
            (queue.ALL_TAGS, _("全部")),
        ],
        "classifications": OrderRow.Classification.choices,
        "settlement_states": OrderSettlement.State.choices,
        "payment_statuses": [
            ("paid", _("已付款")),
            ("pending", _("待付款")),
            ("refunded", _("已退款")),
        ],
        "page_sizes": PAGE_SIZES,
        "page_size": page_size,
        "here": _queue_url(params | ({"cursor": query["cursor"]} if query.get("cursor") else {})),
        "next_url": _queue_url(params | {"cursor": page.next_cursor}) if page.next_cursor else None,
        "prev_url": _queue_url(params | {"cursor": page.prev_cursor}) if page.prev_cursor else None,
        "first_url": _queue_url(params) if query.get("cursor") else None,
        "export_query": urlencode(params),
        "can_tag": can_tag,
        "scorecard_url": _scorecard_url(),
        "filter_prefix": FILTER_PREFIX,
        "inline_fields": evidence_service.INLINE_REFERENCE_FIELD,
        "inline_form": INLINE_FORM,
    }
    # The parts without a form token, rendered once per reading.
    context["summary_html"] = render_to_string("reconciliation/_evidence_summary.html", {**context})
    context["filters_html"] = render_to_string("reconciliation/_evidence_filters.html", {**context})
    return 200, context


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target.startswith(reverse("evidence")) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return fallback


@require_POST
@permission_required(Action.TAG_EVIDENCE)
def evidence_tag(request):
    """The plain-form way to tag (the page's script uses the API instead):
    one order inline, the ticked orders, or every order matching the filter."""
    fallback = reverse("evidence")
    back = _safe_next(request, fallback)
    try:
        book = queue.resolve_book()
        scope = request.POST.get("scope", "selection")
        tag = request.POST.get("tag", "")
        refs = {name: request.POST.get(name, "") for name in evidence_service.REFERENCE_FIELDS}
        if scope == "inline":
            # The page's inline form carries every row's controls; the
            # pressed button names the order, whose own tag and reference
            # count ("tag"/"ref" alone: a form of one order).
            order_id = request.POST.get("order_ids", "")
            tag = request.POST.get(f"tag:{order_id}", tag)
            ref = request.POST.get(f"ref:{order_id}", request.POST.get("ref", ""))
            refs = evidence_service.inline_references(tag=tag, ref=ref)
        queue_filter = None
        order_ids = None
        expected = None
        if scope == "filter":
            filter_params = {
                key[len(FILTER_PREFIX) :]: value
                for key, value in request.POST.items()
                if key.startswith(FILTER_PREFIX)
            }
            queue_filter = queue.parse_filter(filter_params, book=book)
            expected_raw = request.POST.get("expected_count", "")
            expected = int(expected_raw) if expected_raw.isdigit() else None
        else:
            order_ids = request.POST.getlist("order_ids")
        result = evidence_service.tag_orders(
            actor=request.user,
            project=book.project,
            tag=tag,
            order_ids=order_ids,
            queue_filter=queue_filter,
            expected_count=expected,
            **refs,
        )
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect(back)
    messages.success(
        request,
        _("已將 %(n)s 筆訂單標為「%(tag)s」，營收摘要已重算。")
        % {"n": f"{result.tagged:,}", "tag": OrderEvidence.Tag(result.tag).label},
    )
    return redirect(back)


@permission_required(Action.TAG_EVIDENCE)
def evidence_import(request):
    """Upload a tag file; show what was applied and every error by row."""
    report = None
    try:
        book = queue.resolve_book()
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect("evidence")
    if request.method == "POST":
        apply_valid_only = request.POST.get("apply_valid_only") in ("1", "on", "true")
        upload = request.FILES.get("file")
        if upload is not None:
            data, name = upload.read(), upload.name
        else:
            data = tag_files.kept_tag_file(request.POST.get("sha256", ""))
            name = request.POST.get("original_name", "")
        if data is None:
            messages.error(request, _("請選擇要上傳的標記檔（CSV 或 XLSX）。"))
        else:
            report = tag_files.import_tag_file(
                actor=request.user,
                project=book.project,
                data=data,
                original_name=name,
                apply_valid_only=apply_valid_only,
            )
            if report.applied:
                messages.success(
                    request,
                    _("已套用 %(n)s 筆標記，營收摘要已重算。") % {"n": f"{report.applied:,}"},
                )
    counts = queue.tag_counts(book, queue.training_program_id(book))
    return render(
        request,
        "reconciliation/evidence_import.html",
        {
            "book": book,
            "report": report,
            "counts": counts,
            "columns": evidence_files.TAG_FILE_COLUMNS,
            "scorecard_url": _scorecard_url(),
        },
    )


@permission_required(Action.VIEW_EVIDENCE)
def evidence_template(request, fmt):
    if fmt == "xlsx":
        response = HttpResponse(evidence_files.tag_template_xlsx(), content_type=XLSX_TYPE)
    elif fmt == "csv":
        response = HttpResponse(
            evidence_files.tag_template_csv(), content_type="text/csv; charset=utf-8"
        )
    else:
        raise Http404
    response["Content-Disposition"] = f'attachment; filename="kolable-evidence-template.{fmt}"'
    return response


@permission_required(Action.VIEW_EVIDENCE)
def evidence_export(request, fmt):
    """Every order matching the filter (all pages) with its tag; the columns
    start with the tag file's, so the export can be edited and imported."""
    if fmt not in ("csv", "xlsx"):
        raise Http404
    try:
        book = queue.resolve_book()
        flt = queue.parse_filter(request.GET, book=book)
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect("evidence")
    rows = queue.as_queue_rows(queue.queue_rows(book, flt).order_by("id"), stream=True)
    if fmt == "xlsx" and queue.queue_rows(book, flt).count() > XLSX_EXPORT_LIMIT:
        # A workbook is built in memory; past this size CSV streams instead.
        messages.error(
            request,
            _("超過 %(n)s 筆的匯出請用 CSV（XLSX 太大，Excel 也開不順）。")
            % {"n": f"{XLSX_EXPORT_LIMIT:,}"},
        )
        return redirect(f"{reverse('evidence')}?{urlencode(flt.as_params())}")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"kolable-evidence-{stamp}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            evidence_files.export_csv_chunks(rows), content_type="text/csv; charset=utf-8"
        )
    else:
        response = HttpResponse(evidence_files.export_xlsx(rows), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
