"""Huber's evidence queue pages: the queue with its counts and filters,
tagging (inline, a selection, or everything the filter matches), the tag-file
import and the exports. Louis reads; Huber tags."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import ImportSummary, OrderEvidence, OrderRow
from reconciliation.permissions import Action, can
from reconciliation.selectors import evidence as queue
from reconciliation.services import evidence as evidence_service
from reconciliation.services import evidence_files
from reconciliation.views.common import permission_required

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZES = (50, 100, 200, 500)
FILTER_PREFIX = "f_"


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


def _tag_choices():
    return OrderEvidence.Tag.choices


@permission_required(Action.VIEW_EVIDENCE)
def evidence_queue(request):
    try:
        reconciliation_import = queue.resolve_import(request.GET.get("import_id") or None)
    except DomainError as exc:
        return render(
            request,
            "reconciliation/evidence.html",
            {"no_import": True, "message": _detail_text(exc)},
            status=200,
        )
    problem = None
    try:
        flt = queue.parse_filter(
            request.GET, reconciliation_import=reconciliation_import, default_tag=queue.UNTAGGED
        )
    except DomainError as exc:
        problem = _detail_text(exc)
        flt = queue.parse_filter(
            {}, reconciliation_import=reconciliation_import, default_tag=queue.UNTAGGED
        )
    page_size = queue.clamp_page_size(request.GET.get("limit") or queue.DEFAULT_PAGE_SIZE)
    try:
        page = queue.queue_page(
            reconciliation_import,
            flt,
            cursor=request.GET.get("cursor") or None,
            page_size=page_size,
        )
    except DomainError as exc:
        problem = _detail_text(exc)
        page = queue.queue_page(reconciliation_import, flt, page_size=page_size)
    counts = queue.tag_counts(reconciliation_import, flt.program_id)
    matching = queue.matching_count(reconciliation_import, flt, counts)
    for row in page.rows:
        row.tag_now = getattr(row, "current_tag", None)
    params = flt.as_params()
    if page_size != queue.DEFAULT_PAGE_SIZE:
        params["limit"] = page_size
    summary = (
        ImportSummary.objects.filter(pk=reconciliation_import.pk)
        .only("by_source_event", "by_discount_code")
        .first()
    )
    tag_cards = [
        (queue.UNTAGGED, _("未標記"), counts.untagged),
        *[(value, label, counts.by_tag.get(value, 0)) for value, label in _tag_choices()],
    ]
    return render(
        request,
        "reconciliation/evidence.html",
        {
            "imp": reconciliation_import,
            "flt": flt,
            "params": params,
            "page": page,
            "rows": page.rows,
            "counts": counts,
            "tag_cards": tag_cards,
            "matching": matching,
            "problem": problem,
            "training_program": queue.training_program_id(reconciliation_import),
            "programs": queue.program_choices(reconciliation_import),
            "source_events": [r["key"] for r in (summary.by_source_event if summary else [])][:100],
            "discount_codes": [r["key"] for r in (summary.by_discount_code if summary else [])][
                :100
            ],
            "tag_choices": _tag_choices(),
            "tag_filter_choices": [
                (queue.UNTAGGED, _("未標記")),
                *_tag_choices(),
                (queue.ALL_TAGS, _("全部")),
            ],
            "classifications": OrderRow.Classification.choices,
            "payment_statuses": [
                ("paid", _("已付款")),
                ("pending", _("待付款")),
                ("refunded", _("已退款")),
            ],
            "page_sizes": PAGE_SIZES,
            "page_size": page_size,
            "here": _queue_url(
                params | ({"cursor": request.GET["cursor"]} if request.GET.get("cursor") else {})
            ),
            "next_url": _queue_url(params | {"cursor": page.next_cursor})
            if page.next_cursor
            else None,
            "prev_url": _queue_url(params | {"cursor": page.prev_cursor})
            if page.prev_cursor
            else None,
            "first_url": _queue_url(params) if request.GET.get("cursor") else None,
            "export_query": urlencode(params),
            "can_tag": can(request.user, Action.TAG_EVIDENCE),
            "scorecard_url": _scorecard_url(),
            "filter_prefix": FILTER_PREFIX,
            "inline_fields": evidence_service.INLINE_REFERENCE_FIELD,
        },
    )


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
        reconciliation_import = queue.resolve_import(request.POST.get("import_id") or None)
        scope = request.POST.get("scope", "selection")
        tag = request.POST.get("tag", "")
        refs = {name: request.POST.get(name, "") for name in evidence_service.REFERENCE_FIELDS}
        if scope == "inline":
            refs = evidence_service.inline_references(tag=tag, ref=request.POST.get("ref", ""))
        queue_filter = None
        order_ids = None
        expected = None
        if scope == "filter":
            filter_params = {
                key[len(FILTER_PREFIX) :]: value
                for key, value in request.POST.items()
                if key.startswith(FILTER_PREFIX)
            }
            queue_filter = queue.parse_filter(
                filter_params, reconciliation_import=reconciliation_import
            )
            expected_raw = request.POST.get("expected_count", "")
            expected = int(expected_raw) if expected_raw.isdigit() else None
        else:
            order_ids = request.POST.getlist("order_ids")
        result = evidence_service.tag_orders(
            actor=request.user,
            reconciliation_import=reconciliation_import,
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
        reconciliation_import = queue.resolve_import(request.POST.get("import_id") or None)
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect("evidence")
    if request.method == "POST":
        apply_valid_only = request.POST.get("apply_valid_only") in ("1", "on", "true")
        upload = request.FILES.get("file")
        if upload is not None:
            data, name = upload.read(), upload.name
        else:
            data = evidence_service.kept_tag_file(request.POST.get("sha256", ""))
            name = request.POST.get("original_name", "")
        if data is None:
            messages.error(request, _("請選擇要上傳的標記檔（CSV 或 XLSX）。"))
        else:
            report = evidence_service.import_tag_file(
                actor=request.user,
                reconciliation_import=reconciliation_import,
                data=data,
                original_name=name,
                apply_valid_only=apply_valid_only,
            )
            if report.applied:
                messages.success(
                    request,
                    _("已套用 %(n)s 筆標記，營收摘要已重算。") % {"n": f"{report.applied:,}"},
                )
    counts = queue.tag_counts(
        reconciliation_import, queue.training_program_id(reconciliation_import)
    )
    return render(
        request,
        "reconciliation/evidence_import.html",
        {
            "imp": reconciliation_import,
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
        reconciliation_import = queue.resolve_import(request.GET.get("import_id") or None)
        flt = queue.parse_filter(request.GET, reconciliation_import=reconciliation_import)
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect("evidence")
    rows = (
        queue.queue_rows(reconciliation_import, flt)
        .select_related("current_tag__evidence__created_by__user")
        .order_by("id")
        .iterator(chunk_size=2000)
    )
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
