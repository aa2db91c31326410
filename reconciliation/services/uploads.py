"""Wade's uploads: keep the bytes, validate, record
the result, move the request, tell Wade.

Steps of ``receive_upload``:

1. Stream the file into a temporary file under UPLOAD_DIR while hashing it;
   beyond MAX_UPLOAD_MB stop and answer 413 (nothing kept: nothing was read).
2. The same bytes already uploaded to this request → the earlier Upload,
   marked as a duplicate (no second copy, no second row).
3. Atomically rename the bytes to ``UPLOAD_DIR/<sha[:2]>/<sha>`` — before
   the row commits, so a row never points at nothing and a failing file is
   kept like any other.
4. One transaction: the Upload row (the unique constraint on request+sha256
   decides between two identical uploads racing; the loser answers as a
   duplicate), the request to ``uploaded`` by compare-and-set, the audit
   event.
5. Validate outside any transaction (it may take seconds), write the error
   report and, for an accepted file, the normalised frame the import reads.
   A file above UPLOAD_SYNC_MAX_MB is validated in the django-q2 worker
   instead (``tasks.validate_upload``): the caller gets the pending upload at
   once, and the web process never holds a big file's frames or errors.
6. One transaction: the result onto the Upload (compare-and-set from
   pending, so a result is written once), the request to ``accepted`` (from
   any state still owed a file, so a racing escalation never wins over an
   accepted file) or ``schema_failed`` (only from ``uploaded``), the audit
   event, and for a failure Wade's notification with the missing columns.
   An accepted upload queues its import on commit.
7. A refused file that holds a card number or payment token loses its bytes
   (nothing else on disk ever held them unmasked): the row keeps sha256,
   size, who, when and the masked errors, ``storage_path`` becomes blank.
   Refused files and every error report are purged after
   UPLOAD_RETENTION_DAYS (``purge_expired_uploads``, a daily schedule);
   accepted files keep their bytes.
"""

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.error_codes import file_error
from reconciliation.errors import Conflict, DomainError, InvalidInput
from reconciliation.models import AuditEvent, DataRequest, Upload
from reconciliation.services import lifecycle
from reconciliation.services.audit import record_audit
from reconciliation.services.frames import (
    kept_path,
    upload_root,
    write_cache,
)
from reconciliation.services.imports import queue_import
from reconciliation.services.lifecycle import Event
from reconciliation.services.notify import absolute, sync_schema_failed
from reconciliation.services.profiles import profile_for
from reconciliation.services.reports import report_paths, write_reports
from reconciliation.settlement_validation import validate_settlement_file
from reconciliation.validation import ValidationResult, validate_file

logger = logging.getLogger(__name__)

ROW_ERRORS_KEPT = 200  # on the Upload row; the report has them all
# A pending upload this old was abandoned mid-validation (a million rows
# validate in seconds).
STALE_PENDING = timedelta(minutes=10)
CHUNK = 1 << 20


@dataclass
class UploadOutcome:
    upload: Upload
    duplicate_of: Upload | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


def max_upload_bytes() -> int:
    return int(settings.MAX_UPLOAD_MB) * 1_048_576


def too_large(size: int) -> DomainError:
    return DomainError(
        "too_large",
        {
            "message": _("檔案 %(size)s MB，超過上限 %(limit)s MB。")
            % {"size": f"{size / 1_048_576:.1f}", "limit": settings.MAX_UPLOAD_MB},
            "hint": _("把期間分成幾段分別匯出，或改存成 CSV（通常小很多）再上傳。"),
            "limit_mb": int(settings.MAX_UPLOAD_MB),
        },
        status=413,
    )


def sync_validation_bytes() -> int:
    """Files up to this size are validated in the request; larger ones in the worker."""
    return int(float(settings.UPLOAD_SYNC_MAX_MB) * 1_048_576)


# --- Receiving ---------------------------------------------------------------------


def _stream_to_temporary(file, limit: int) -> tuple[Path, str, int]:
    """(temporary path, sha256, size), refusing beyond the size cap."""
    folder = upload_root() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    size = 0
    chunks = file.chunks(CHUNK) if hasattr(file, "chunks") else iter(lambda: file.read(CHUNK), b"")
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise too_large(size)
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, digest.hexdigest(), size


def _keep(temporary: Path, sha256: str) -> str:
    """Move the bytes to their content address; returns the path relative
    to UPLOAD_DIR. The same bytes already kept (another request) are simply
    replaced by an identical copy."""
    relative = f"{sha256[:2]}/{sha256}"
    final = upload_root() / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, final)
    return relative


def receive_upload(
    *,
    data_request: DataRequest,
    uploaded_by,
    file,
    original_name: str,
    content_type: str = "",
    mode: str = Upload.Mode.SNAPSHOT,
    size_limit: int | None = None,
    validate_now: bool = False,
) -> UploadOutcome:
    """Keep, record and validate one uploaded file (the steps are in the
    module docstring). Raises DomainError for a refused upload (413 too
    large, 409 the request no longer takes files). A sync, already in the
    worker, passes its own `size_limit` and `validate_now`."""
    limit = size_limit or max_upload_bytes()
    if getattr(file, "size", None) is not None and file.size > limit:
        raise too_large(file.size)
    mode = mode or Upload.Mode.SNAPSHOT
    if mode not in Upload.Mode.values:
        raise InvalidInput(
            "invalid_mode", _("mode 只能是 snapshot（完整快照）或 incremental（增量）。")
        )
    temporary, sha256, size = _stream_to_temporary(file, limit)
    earlier = Upload.objects.filter(data_request=data_request, sha256=sha256).first()
    if earlier is not None:
        temporary.unlink(missing_ok=True)
        if (
            earlier.schema_status == Upload.SchemaStatus.PENDING
            and earlier.created_at < timezone.now() - STALE_PENDING
        ):
            # The first attempt died between keeping the file and recording
            # its result; sending it again finishes the job.
            if not (
                not validate_now
                and earlier.size > sync_validation_bytes()
                and queue_validation(upload_id=earlier.pk)
            ):
                earlier = finish_upload(upload=earlier)
        return UploadOutcome(upload=earlier, duplicate_of=earlier)
    data_request.refresh_from_db(fields=["status"])
    if data_request.status not in DataRequest.TAKES_FILES:
        temporary.unlink(missing_ok=True)
        raise _not_taking_files(data_request)
    relative = _keep(temporary, sha256)
    uploader = profile_for(uploaded_by)
    name = _safe_name(original_name)
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                data_request=data_request,
                uploaded_by=uploader,
                original_name=name,
                content_type=(content_type or "")[:120],
                size=size,
                sha256=sha256,
                storage_path=relative,
                mode=mode,
            )
            lifecycle.move(data_request.pk, Event.FILE_RECEIVED)
            record_audit(
                verb=AuditEvent.Verb.UPLOAD_RECEIVED,
                actor=uploader,
                data_request=data_request,
                message=_("%(who)s 上傳 %(name)s（%(size)s，sha256 %(sha)s…）。")
                % {"who": uploader, "name": name, "size": _size_text(size), "sha": sha256[:12]},
                upload_id=str(upload.pk),
                sha256=sha256,
                size=size,
                original_name=name,
            )
    except IntegrityError:
        # An identical upload committed first: answer with its result.
        earlier = Upload.objects.filter(data_request=data_request, sha256=sha256).first()
        if earlier is None:
            raise
        return UploadOutcome(upload=earlier, duplicate_of=earlier)
    if (
        not validate_now
        and size > sync_validation_bytes()
        and queue_validation(upload_id=upload.pk)
    ):
        return UploadOutcome(upload=upload)
    return UploadOutcome(upload=finish_upload(upload=upload))


def _safe_name(original_name: str) -> str:
    """The file's own name, without folders or NULs, cut to the column."""
    name = Path((original_name or "upload").replace("\x00", "")).name or "upload"
    limit = Upload._meta.get_field("original_name").max_length
    if len(name) > limit:
        stem, dot, suffix = name.rpartition(".")
        suffix = suffix[:10] if dot else ""
        name = (stem if dot else name)[: limit - len(suffix) - 2] + "…" + (dot + suffix)
    return name


def queue_validation(*, upload_id) -> bool:
    """Validate a large upload in the django-q2 worker. False when the
    broker cannot take it (the caller then validates in place: an answer late
    beats an upload left pending)."""
    from django_q.tasks import async_task

    try:
        async_task(
            "reconciliation.tasks.validate_upload",
            str(upload_id),
            task_name=f"validate-{upload_id}",
        )
    except Exception:  # noqa: BLE001 - any broker failure
        logger.exception("queue_validation: could not queue upload %s", upload_id)
        return False
    return True


def validate_pending_upload(*, upload_id) -> Upload | None:
    """The worker's side of a large upload: validate and record the result
    once (a second run finds it no longer pending and does nothing)."""
    upload = Upload.objects.filter(pk=upload_id).select_related("data_request").first()
    if upload is None or upload.schema_status != Upload.SchemaStatus.PENDING:
        return upload
    return finish_upload(upload=upload)


def _not_taking_files(data_request: DataRequest) -> Conflict:
    message = _("這個請求目前是「%(status)s」，不再收檔。") % {
        "status": data_request.get_status_display()
    }
    return Conflict(
        "request_not_awaiting_file",
        {"message": message, "request_status": data_request.status},
    )


def _size_text(size: int) -> str:
    if size >= 1_048_576:
        return f"{size / 1_048_576:.1f} MB"
    return f"{max(size, 1) / 1024:.0f} KB" if size else "0 KB"


# --- Validating and recording the result ----------------------------------------------


def validate_for(data_request: DataRequest, path: Path) -> ValidationResult:
    """The validator of the request's kind: the order export's or the
    settlement file's."""
    if data_request.kind == DataRequest.Kind.SETTLEMENT:
        return validate_settlement_file(path)
    return validate_file(path, period=(data_request.period_start, data_request.period_end))


def finish_upload(*, upload: Upload) -> Upload:
    """Validate the kept bytes and record the result once. Safe to call
    again for an upload left pending (e.g. the process died mid-way)."""
    data_request = upload.data_request
    path = kept_path(upload)
    if path is None or not path.exists():
        raise FileNotFoundError(f"kept bytes of upload {upload.pk} are missing")
    result = validate_for(data_request, path)
    report = ""
    if result.file_errors or result.row_error_count or result.warnings:
        report = write_reports(
            upload_id=upload.pk, original_name=upload.original_name, result=result
        )
    if result.accepted:
        write_cache(upload.pk, result.frame)
    status = Upload.SchemaStatus.ACCEPTED if result.accepted else Upload.SchemaStatus.SCHEMA_FAILED
    row_errors = result.row_error_dicts(limit=ROW_ERRORS_KEPT)
    with transaction.atomic():
        changed = Upload.objects.filter(
            pk=upload.pk, schema_status=Upload.SchemaStatus.PENDING
        ).update(
            schema_status=status,
            detected_kind=result.kind,
            layout=result.layout,
            missing_fields=result.missing_fields,
            file_errors=result.file_errors,
            row_errors=row_errors,
            row_error_count=result.row_error_count,
            row_error_totals=result.row_error_totals,
            warnings=result.warnings,
            row_count=result.row_count,
            report_path=report,
        )
        if changed:
            upload.refresh_from_db()
            if result.accepted:
                _on_accepted(upload)
            else:
                _on_failed(upload, result)
    if changed and result.holds_sensitive_values:
        discard_bytes(upload=upload)
    upload.refresh_from_db()
    return upload


def discard_bytes(*, upload: Upload, kept_since=None) -> bool:
    """Delete the kept bytes of a refused upload and blank its storage_path.
    The file is content-addressed: it stays while another upload of the same
    bytes is accepted or still being validated (or, for the retention purge,
    refused after `kept_since`)."""
    if not upload.storage_path or upload.schema_status != Upload.SchemaStatus.SCHEMA_FAILED:
        return False
    path = kept_path(upload)
    siblings = Upload.objects.filter(storage_path=upload.storage_path).exclude(pk=upload.pk)
    needed = siblings.exclude(schema_status=Upload.SchemaStatus.SCHEMA_FAILED)
    if kept_since is not None:
        needed = needed | siblings.filter(
            schema_status=Upload.SchemaStatus.SCHEMA_FAILED, created_at__gte=kept_since
        )
    Upload.objects.filter(pk=upload.pk).update(storage_path="")
    if not needed.exists():
        path.unlink(missing_ok=True)
        # No refused sibling may point at bytes that are gone.
        siblings.filter(schema_status=Upload.SchemaStatus.SCHEMA_FAILED).update(storage_path="")
    upload.storage_path = ""
    return True


def validate_stalled_uploads(*, now=None) -> list[str]:
    """Validate uploads still pending after STALE_PENDING (their task was
    lost with a worker). One failing upload never blocks the others."""
    now = now or timezone.now()
    stalled = (
        Upload.objects.filter(
            schema_status=Upload.SchemaStatus.PENDING, created_at__lt=now - STALE_PENDING
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:5]
    )
    done = []
    for upload_id in list(stalled):
        try:
            validate_pending_upload(upload_id=upload_id)
            done.append(str(upload_id))
        except Exception:  # noqa: BLE001 - logged; the next upload still runs
            logger.exception("validate_stalled_uploads: upload %s failed", upload_id)
            # Refused rather than retried forever (and in everyone's way).
            Upload.objects.filter(pk=upload_id, schema_status=Upload.SchemaStatus.PENDING).update(
                schema_status=Upload.SchemaStatus.SCHEMA_FAILED,
                file_errors=[file_error("unreadable_file", reason="damaged")],
            )
    return done


def purge_expired_uploads(*, now=None) -> dict:
    """Remove what UPLOAD_RETENTION_DAYS allows: the error reports of uploads
    older than that, and the kept bytes of refused ones (accepted files keep
    theirs). The rows stay. Safe to run twice or on two workers at once."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=int(settings.UPLOAD_RETENTION_DAYS))
    old = Upload.objects.filter(created_at__lt=cutoff)
    reports = 0
    for upload in old.exclude(report_path="").only("pk", "report_path").iterator():
        for path in report_paths(upload.pk):
            path.unlink(missing_ok=True)
        reports += (
            Upload.objects.filter(pk=upload.pk).exclude(report_path="").update(report_path="")
        )
    files = 0
    refused = old.filter(schema_status=Upload.SchemaStatus.SCHEMA_FAILED).exclude(storage_path="")
    for upload in refused.iterator():
        files += discard_bytes(upload=upload, kept_since=cutoff)
    # Temporary files of requests that died mid-stream.
    temporary = 0
    folder = upload_root() / "tmp"
    if folder.is_dir():
        for part in folder.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff.timestamp():
                    part.unlink(missing_ok=True)
                    temporary += 1
            except OSError:
                continue
    return {"reports": reports, "refused_files": files, "temporary_files": temporary}


def _on_accepted(upload: Upload) -> None:
    data_request = upload.data_request
    lifecycle.move(
        data_request.pk, Event.FILE_ACCEPTED, artifact_ref=str(upload.pk), missing_fields=[]
    )
    warnings = "；".join(w["message"] for w in upload.warnings)
    record_audit(
        verb=AuditEvent.Verb.UPLOAD_ACCEPTED,
        actor=upload.uploaded_by,
        data_request=data_request,
        message=_("%(name)s 通過欄位驗證，%(rows)s 列。")
        % {"name": upload.original_name, "rows": f"{upload.row_count:,}"}
        + ((" " + _("提醒：%(warnings)s") % {"warnings": warnings}) if warnings else ""),
        upload_id=str(upload.pk),
        row_count=upload.row_count,
        warnings=[{"code": w["code"], "count": w["count"]} for w in upload.warnings],
    )
    upload_id = upload.pk

    def start_import():
        queue_import(upload_id=upload_id)

    transaction.on_commit(start_import)


def _on_failed(upload: Upload, result: ValidationResult) -> None:
    data_request = upload.data_request
    lifecycle.move(data_request.pk, Event.FILE_FAILED, missing_fields=result.missing_fields)
    summary = failure_summary(upload)
    record_audit(
        verb=AuditEvent.Verb.UPLOAD_FAILED,
        actor=upload.uploaded_by,
        data_request=data_request,
        message=_("%(name)s 欄位不符：%(summary)s")
        % {"name": upload.original_name, "summary": summary},
        upload_id=str(upload.pk),
        missing_fields=result.missing_fields,
        file_error_codes=[e["code"] for e in result.file_errors],
        row_error_count=result.row_error_count,
    )
    sync_schema_failed(
        upload,
        links=upload_links(upload),
        payload={
            "data_request_id": str(data_request.pk),
            "upload_id": str(upload.pk),
            "missing_fields": result.missing_fields,
            "file_errors": [e["code"] for e in result.file_errors],
            "row_error_count": result.row_error_count,
            **upload_links(upload),
        },
    )


def failure_summary(upload: Upload) -> str:
    """One sentence for Wade: missing columns, other file problems, how many
    rows are wrong and where the first ones are."""
    parts = []
    if upload.missing_fields:
        parts.append(_("缺少欄位 %(columns)s") % {"columns": "、".join(upload.missing_fields)})
    others = [e["message"] for e in upload.file_errors if e["code"] != "missing_column"]
    parts.extend(others)
    if upload.row_error_count:
        first = sorted({e["row"] for e in upload.row_errors})[:5]
        parts.append(
            _("%(count)s 筆資料列錯誤（第 %(rows)s 列起）")
            % {"count": f"{upload.row_error_count:,}", "rows": "、".join(str(r) for r in first)}
        )
    return "；".join(parts) + "。" if parts else "。"


def upload_links(upload: Upload) -> dict[str, str]:
    links = {
        "upload_url": absolute(
            reverse("upload-page", args=[upload.data_request_id]) + f"?result={upload.pk}"
        )
    }
    if upload.report_path:
        links["report_xlsx_url"] = absolute(reverse("upload-report", args=[upload.pk, "xlsx"]))
        links["report_csv_url"] = absolute(reverse("upload-report", args=[upload.pk, "csv"]))
    return links


def report_file(upload: Upload, fmt: str) -> Path | None:
    """The report of an upload in `fmt` (xlsx/csv), when it has one."""
    if not upload.report_path or fmt not in ("xlsx", "csv"):
        return None
    xlsx, csv = report_paths(upload.pk)
    path = xlsx if fmt == "xlsx" else csv
    return path if path.exists() else None
