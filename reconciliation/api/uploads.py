"""Uploads: Wade or PLS sends a CSV/XLSX, the answer says
accepted (201) or schema_failed (422) with the missing columns and the
file- and row-level errors; the same bytes again answer 200 with the
earlier result and ``duplicate_of``."""

from datetime import datetime
from uuid import UUID

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from reconciliation.api.common import ErrorOut, require
from reconciliation.errors import InvalidInput, NotFound
from reconciliation.models import DataRequest, ReconciliationImport, SettlementImport, Upload
from reconciliation.permissions import Action
from reconciliation.services.uploads import (
    failure_summary,
    max_upload_bytes,
    receive_upload,
    report_file,
    too_large,
    upload_links,
)

router = Router(tags=["uploads"])

MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The order/payment export, CSV or XLSX (type read "
                            "from the bytes). At most MAX_UPLOAD_MB (default 100 MB).",
                        }
                    },
                }
            }
        },
    }
}


class FileErrorOut(Schema):
    code: str
    message: str
    hint: str = ""
    column: str = ""


class RowErrorOut(Schema):
    row: int
    column: str
    code: str
    message: str
    hint: str = ""
    value: str = ""


class WarningOut(Schema):
    code: str
    count: int
    message: str
    rows: list[int] = []


class ReportOut(Schema):
    xlsx: str
    csv: str


class UploadResultOut(Schema):
    upload_id: UUID
    data_request_id: UUID
    schema_status: str
    original_name: str
    size: int
    sha256: str
    detected_kind: str
    layout: str = Field(
        "", description="a settlement file's layout: ecpay, stripe, newebpay or canonical"
    )
    row_count: int
    missing_fields: list[str]
    file_errors: list[FileErrorOut]
    row_errors: list[RowErrorOut]
    row_error_count: int
    row_errors_truncated: bool
    row_error_totals: dict[str, int] = Field(
        default_factory=dict, description="every row error, counted by code"
    )
    bytes_kept: bool = Field(
        True,
        description="false when the original bytes were not kept: a refused file holding "
        "card numbers or payment tokens, or a refused file past UPLOAD_RETENTION_DAYS",
    )
    warnings: list[WarningOut]
    report: ReportOut | None = None
    request_status: str
    duplicate_of: UUID | None = None
    created_at: datetime
    mode: str = "snapshot"
    reconciliation_import: dict | None = Field(
        None,
        description="the reconciliation import once it ran: id, status, scorecard_ref, book "
        "(new_orders, changed_orders, unchanged_orders, missing_from_snapshot)",
    )
    settlement_import: dict | None = Field(
        None,
        description="a settlement file's import once it ran: line_count, matched_count, "
        "orphan_count, duplicate_line_count, mismatch_count",
    )
    # Set on a schema failure, so the 422 also has the API's error shape.
    error: str | None = None
    detail: str | None = None


def _settlement_brief(upload: Upload) -> dict | None:
    made = SettlementImport.objects.filter(upload=upload).first()
    if made is None:
        return None
    return {
        "id": str(made.pk),
        "status": made.status,
        "layout": made.layout,
        **{
            name: getattr(made, name)
            for name in (
                "line_count",
                "matched_count",
                "orphan_count",
                "duplicate_line_count",
                "mismatch_count",
            )
        },
        "scorecard_ref": made.scorecard_ref,
    }


def _import_brief(upload: Upload) -> dict | None:
    imp = (
        ReconciliationImport.objects.filter(upload=upload).select_related("summary").first()
        if upload.schema_status == Upload.SchemaStatus.ACCEPTED
        else None
    )
    if imp is None:
        return None
    book = dict(getattr(getattr(imp, "summary", None), "book", None) or {})
    book.pop("examples", None)
    return {
        "id": str(imp.pk),
        "status": imp.status,
        "row_count": imp.row_count,
        "duplicate_count": imp.duplicate_count,
        "scorecard_ref": imp.scorecard_ref,
        "book": book,
    }


def upload_out(upload: Upload, *, duplicate_of: Upload | None = None) -> dict:
    links = upload_links(upload)
    failed = upload.schema_status == Upload.SchemaStatus.SCHEMA_FAILED
    return {
        "upload_id": upload.pk,
        "data_request_id": upload.data_request_id,
        "schema_status": upload.schema_status,
        "original_name": upload.original_name,
        "size": upload.size,
        "sha256": upload.sha256,
        "detected_kind": upload.detected_kind,
        "layout": upload.layout,
        "row_count": upload.row_count,
        "missing_fields": upload.missing_fields,
        "file_errors": upload.file_errors,
        "row_errors": upload.row_errors,
        "row_error_count": upload.row_error_count,
        "row_errors_truncated": upload.row_error_count > len(upload.row_errors),
        "row_error_totals": upload.row_error_totals or {},
        "bytes_kept": bool(upload.storage_path),
        "warnings": upload.warnings,
        "report": (
            {"xlsx": links["report_xlsx_url"], "csv": links["report_csv_url"]}
            if "report_xlsx_url" in links
            else None
        ),
        "request_status": DataRequest.objects.values_list("status", flat=True).get(
            pk=upload.data_request_id
        ),
        "duplicate_of": duplicate_of.pk if duplicate_of is not None else None,
        "created_at": upload.created_at,
        "mode": upload.mode,
        "reconciliation_import": _import_brief(upload),
        "settlement_import": _settlement_brief(upload),
        "error": "schema_failed" if failed else None,
        "detail": failure_summary(upload) if failed else None,
    }


@router.post(
    "/data-requests/{request_id}/upload",
    response={
        200: UploadResultOut,
        201: UploadResultOut,
        202: UploadResultOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        413: ErrorOut,
        # schema_failed (the file's report), or a malformed call (no file, bad id).
        422: UploadResultOut | ErrorOut,
    },
    summary="Upload an order/payment export (Wade, PLS)",
    openapi_extra=MULTIPART_BODY,
)
def upload_export(request, request_id: UUID):
    """Multipart field `file`. Above UPLOAD_SYNC_MAX_MB (default 10 MB) the
    file is validated in the worker: 202 `schema_status: pending` at once,
    then GET /api/kolable/uploads/{upload_id} until it is accepted or
    schema_failed. Otherwise: 201 `schema_status: accepted`; 422
    `schema_status: schema_failed` with `missing_fields`, `file_errors` and
    `row_errors` [{row, column, code, message, hint, value}] (the first 200;
    `row_error_count` is the total, `row_error_totals` counts them by code
    and `report` links the first ROW_ERRORS_REPORTED as XLSX/CSV); 200 with
    `duplicate_of` when these exact bytes were already uploaded to this
    request; 413 beyond MAX_UPLOAD_MB; 409 when the request is closed or
    already has an accepted file. Card numbers, payment tokens and raw
    customer keys never appear in an answer, and a refused file holding card
    numbers or tokens is not kept (`bytes_kept: false`)."""
    require(request, Action.UPLOAD_EXPORT)
    # Before touching request.FILES, which would read the whole body.
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > max_upload_bytes() + 1_048_576:
        raise too_large(declared)
    data_request = get_object_or_404(DataRequest, pk=request_id)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        raise InvalidInput(
            "file_required", _("請用 multipart/form-data 的 file 欄位附上 CSV 或 XLSX。")
        )
    outcome = receive_upload(
        data_request=data_request,
        uploaded_by=request.auth,
        file=uploaded,
        original_name=uploaded.name or "upload",
        content_type=uploaded.content_type or "",
        mode=request.POST.get("mode") or Upload.Mode.SNAPSHOT,
    )
    body = upload_out(outcome.upload, duplicate_of=outcome.duplicate_of)
    if outcome.is_duplicate:
        return 200, body
    status = {Upload.SchemaStatus.ACCEPTED: 201, Upload.SchemaStatus.PENDING: 202}
    return status.get(outcome.upload.schema_status, 422), body


@router.get(
    "/uploads/{upload_id}",
    response={200: UploadResultOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="One upload's validation result",
)
def get_upload(request, upload_id: UUID):
    require(request, Action.VIEW_DASHBOARD)
    return upload_out(get_object_or_404(Upload, pk=upload_id))


@router.get(
    "/uploads/{upload_id}/report.{fmt}",
    response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="The full error report of an upload (xlsx or csv)",
)
def get_upload_report(request, upload_id: UUID, fmt: str):
    require(request, Action.VIEW_DASHBOARD)
    upload = get_object_or_404(Upload, pk=upload_id)
    path = report_file(upload, fmt)
    if path is None:
        raise NotFound("no_report", _("這個檔案沒有錯誤報告（沒有錯誤也沒有提醒）。"))
    return report_response(upload, path, fmt)


def report_response(upload: Upload, path, fmt: str) -> FileResponse:
    stem = upload.original_name.rsplit(".", 1)[0] or "upload"
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"{stem}-errors.{fmt}",
        content_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            if fmt == "xlsx"
            else "text/csv; charset=utf-8"
        ),
    )
