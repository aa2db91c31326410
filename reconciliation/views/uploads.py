"""Wade's upload page: template download, the file field (a plain form post
that works without JavaScript; upload.js adds the progress bar and shows the
answer in place), the result of the last upload, the history, and the
error-report downloads."""

import uuid

from django import forms
from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from reconciliation import schema
from reconciliation.api.uploads import report_response
from reconciliation.errors import DomainError
from reconciliation.models import DataRequest, ReconciliationImport, SettlementImport, Upload
from reconciliation.permissions import Action
from reconciliation.services.uploads import (
    max_upload_bytes,
    receive_upload,
    report_file,
    too_large,
)
from reconciliation.views.common import permission_required

# The settlement layouts as the upload page names them.
LAYOUT_LABELS = {
    "ecpay": _("綠界 ECPay 信用卡撥款對帳檔"),
    "stripe": _("Stripe 撥款明細（itemised payout reconciliation）"),
    "newebpay": _("藍新 NewebPay 交易明細"),
    "canonical": _("標準欄位（範本）"),
}


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("訂單付款檔（CSV 或 XLSX）"),
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.xlsx,.txt,text/csv,application/vnd.ms-excel,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
    )
    mode = forms.ChoiceField(
        label=_("這份檔案是"),
        choices=[
            (
                Upload.Mode.SNAPSHOT,
                _("完整快照：整個期間目前的樣子（訂單簿裡有、檔案裡沒有的訂單會列為例外）"),
            ),
            (Upload.Mode.INCREMENTAL, _("增量：只有新增或變更的訂單")),
        ],
        initial=Upload.Mode.SNAPSHOT,
        required=False,
        widget=forms.RadioSelect,
    )


def _upload_context(request, data_request: DataRequest, **extra) -> dict:
    uploads = list(
        data_request.uploads.select_related("uploaded_by__user").order_by("-created_at")[:50]
    )
    result = extra.pop("result", None)
    if result is None:
        wanted = request.GET.get("result", "")
        try:
            wanted_id = uuid.UUID(wanted)
        except ValueError:
            wanted_id = None
        result = next((u for u in uploads if u.pk == wanted_id), None)
        if result is None and wanted_id is not None:
            result = data_request.uploads.filter(pk=wanted_id).first()
    result_import = (
        ReconciliationImport.objects.filter(upload=result).select_related("summary").first()
        if result is not None and result.schema_status == Upload.SchemaStatus.ACCEPTED
        else None
    )
    settlement = data_request.kind == DataRequest.Kind.SETTLEMENT
    settlement_import = (
        SettlementImport.objects.filter(upload=result).first()
        if settlement and result is not None
        else None
    )
    return {
        "req": data_request,
        "settlement": settlement,
        "settlement_import": settlement_import,
        "layout_label": LAYOUT_LABELS.get(result.layout, "") if result is not None else "",
        "form": extra.pop("form", None) or UploadForm(),
        "result": result,
        "result_import": result_import,
        "duplicate": request.GET.get("duplicate") == "1",
        "uploads": uploads,
        "columns": schema.SETTLEMENT_COLUMNS if settlement else schema.COLUMNS,
        "max_mb": max_upload_bytes() // 1_048_576,
        "max_bytes": max_upload_bytes(),
        "retention_days": settings.UPLOAD_RETENTION_DAYS,
        "takes_files": data_request.status in DataRequest.TAKES_FILES,
        **extra,
    }


@permission_required(Action.UPLOAD_EXPORT)
def upload_page(request, pk):
    data_request = get_object_or_404(
        DataRequest.objects.select_related("project", "data_owner_profile__user"), pk=pk
    )
    if request.method != "POST":
        return render(request, "reconciliation/upload.html", _upload_context(request, data_request))
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    error, status = None, 200
    form = None
    if declared > max_upload_bytes() + 1_048_576:
        error = too_large(declared)
    else:
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            uploaded = form.cleaned_data["file"]
            try:
                outcome = receive_upload(
                    data_request=data_request,
                    uploaded_by=request.user,
                    file=uploaded,
                    original_name=uploaded.name,
                    content_type=uploaded.content_type or "",
                    mode=form.cleaned_data.get("mode") or Upload.Mode.SNAPSHOT,
                )
            except DomainError as exc:
                error = exc
            else:
                url = (
                    reverse("upload-page", args=[data_request.pk]) + f"?result={outcome.upload.pk}"
                )
                if outcome.is_duplicate:
                    url += "&duplicate=1"
                # Post/redirect/get: a reload does not send the file again.
                return redirect(url, permanent=False)
        else:
            status = 400
    if error is not None:
        status = error.status
    context = _upload_context(
        request,
        data_request,
        form=form,
        error=_error_text(error) if error is not None else "",
    )
    return render(request, "reconciliation/upload.html", context, status=status)


def _error_text(error: DomainError) -> str:
    detail = error.detail
    if isinstance(detail, dict):
        return " ".join(str(detail[k]) for k in ("message", "hint") if detail.get(k))
    return str(detail)


@permission_required(Action.VIEW_DASHBOARD)
def upload_report(request, upload_id, fmt):
    upload = get_object_or_404(Upload, pk=upload_id)
    path = report_file(upload, fmt)
    if path is None:
        raise Http404
    return report_response(upload, path, fmt)
