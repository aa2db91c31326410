"""What people record about a live stream: Louis's creative-compliance
checklist (an append-only history; the newest entry is the status) and the
viewer figures of a platform export (read by readers.py like any upload)."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reconciliation import schema
from reconciliation.error_codes import describe
from reconciliation.errors import DomainError, InvalidInput, NotFound
from reconciliation.inputs import NUL, max_length
from reconciliation.models import ComplianceRecord, LiveStreamFigures, Project, StreamViewers
from reconciliation.readers import FileProblem, read_upload
from reconciliation.services.profiles import profile_for
from reconciliation.values import parse_datetimes

# The checklist, in the order Louis reads it.
COMPLIANCE_CHECKS = {
    "claims_reviewed": gettext_lazy("宣稱內容已審閱"),
    "sponsorship_disclosed": gettext_lazy("業配／合作關係已揭露"),
    "offer_terms_disclosed": gettext_lazy("優惠條件已完整說明"),
    "refund_notice_shown": gettext_lazy("已事先告知七日鑑賞期與退款規定"),
    "testimonials_genuine": gettext_lazy("見證與推薦內容真實"),
    "regulated_claims_ok": gettext_lazy("未逾越法規允許的宣稱（療效、保證獲利等）"),
}
VIEWER_MAX_ROWS = 10_000
VIEWER_MAX_BYTES = 5 * 1_048_576
VIEWER_ERROR_LIMIT = 50


def known_stream(project: Project, source_event: str) -> bool:
    return LiveStreamFigures.objects.filter(project=project, source_event=source_event).exists()


def check_source_event(source_event: str) -> str:
    """A source_event from a URL or a cell: no NUL, no longer than the column."""
    limit = max_length(ComplianceRecord, "source_event")
    if not source_event or NUL in source_event or len(source_event) > limit:
        raise InvalidInput(
            "invalid_source_event",
            _("直播場次須為 1 到 %(limit)s 個字，且不可包含 NUL。") % {"limit": limit},
        )
    return source_event


def record_compliance(
    *,
    actor,
    project: Project,
    source_event: str,
    checks: dict[str, bool],
    status: str,
    evidence_ref: str = "",
    note: str = "",
) -> ComplianceRecord:
    """Append one entry to the stream's compliance history. `pass` needs
    every check ticked; the stream must be one of the book's."""
    check_source_event(source_event)
    if status not in ComplianceRecord.Status.values:
        raise InvalidInput("invalid_status", _("狀態只能是 pass、fail 或 pending。"))
    unknown = set(checks) - set(COMPLIANCE_CHECKS)
    if unknown:
        raise InvalidInput(
            "invalid_checks",
            _("不認得的檢查項目：%(names)s") % {"names": ", ".join(sorted(unknown))},
        )
    ticked = {name: bool(checks.get(name, False)) for name in COMPLIANCE_CHECKS}
    if status == ComplianceRecord.Status.PASS and not all(ticked.values()):
        raise InvalidInput("checks_incomplete", _("每一項都勾選後才能標為通過。"))
    for field, value in (("evidence_ref", evidence_ref), ("note", note)):
        if NUL in value or len(value) > max_length(ComplianceRecord, field):
            raise InvalidInput(
                "invalid_input",
                {
                    "field": field,
                    "message": _("最多 %(limit)s 個字，且不可包含 NUL。")
                    % {"limit": max_length(ComplianceRecord, field)},
                },
            )
    if not known_stream(project, source_event):
        raise NotFound("unknown_stream", _("訂單簿裡沒有這個直播場次。"))
    with transaction.atomic():
        return ComplianceRecord.objects.create(
            project=project,
            source_event=source_event,
            status=status,
            checks=ticked,
            evidence_ref=evidence_ref,
            note=note,
            created_by=profile_for(actor),
        )


# --- Viewer figures ------------------------------------------------------------------


def _viewer_frame(raw) -> tuple[pd.DataFrame, list[dict]]:
    """The file's columns under their viewer-schema names, and the file's
    problems (a required column missing)."""
    names = {}
    for index, header in enumerate(raw.headers):
        name = schema.VIEWER_HEADER_ALIASES.get(schema.normalize_header(header))
        if name and name not in names.values():
            names[index] = name
    missing = [c.name for c in schema.VIEWER_COLUMNS if c.required and c.name not in names.values()]
    frame = raw.frame[list(names)].rename(columns=names) if names else pd.DataFrame()
    return frame, missing


def _errors(mask: np.ndarray, row_numbers: np.ndarray, column: str, message: str) -> list[dict]:
    return [
        {"row": int(r), "column": column, "message": message}
        for r in row_numbers[np.asarray(mask, dtype=bool)][:VIEWER_ERROR_LIMIT]
    ]


def parse_viewer_file(data: bytes) -> pd.DataFrame:
    """The viewer rows of a file, validated in one pass over each column;
    InvalidInput lists every problem (first 50)."""
    with tempfile.NamedTemporaryFile(suffix=".upload") as handle:
        handle.write(data)
        handle.flush()
        try:
            raw = read_upload(Path(handle.name), max_rows=VIEWER_MAX_ROWS)
        except FileProblem as problem:
            title, detail = describe(problem.code, problem.params)
            raise InvalidInput(
                "file_error", {"code": problem.code, "message": detail or title}
            ) from None
    frame, missing = _viewer_frame(raw)
    if missing:
        raise InvalidInput(
            "missing_columns",
            {
                "columns": missing,
                "message": _("缺少必要欄位：%(names)s") % {"names": ", ".join(missing)},
            },
        )
    rows = raw.row_numbers
    errors: list[dict] = []
    out = pd.DataFrame(index=frame.index)
    source = frame["source_event"].astype(str).str.strip().to_numpy(object)
    lengths = np.fromiter((len(s) for s in source), dtype=np.int64, count=len(source))
    limit = max_length(StreamViewers, "source_event")
    errors += _errors(lengths == 0, rows, "source_event", _("必填，不可留白。"))
    errors += _errors(
        lengths > limit, rows, "source_event", _("最多 %(limit)s 個字。") % {"limit": limit}
    )
    errors += _errors(
        pd.Series(source).duplicated().to_numpy() & (lengths > 0),
        rows,
        "source_event",
        _("同一場次在檔案裡出現兩次。"),
    )
    out["source_event"] = source
    for column in schema.VIEWER_COLUMNS:
        if column.kind == "count":
            text = (
                frame[column.name].astype(str).str.strip()
                if column.name in frame
                else pd.Series([""] * len(frame))
            )
            blank = (text == "").to_numpy()
            numbers = pd.to_numeric(
                text.str.replace(",", "", regex=False), errors="coerce"
            ).to_numpy(np.float64)
            bad = ~blank & ~(
                np.isfinite(numbers)
                & (numbers >= 0)
                & (numbers == np.floor(numbers))
                & (numbers < 2**31)
            )
            errors += _errors(bad, rows, column.name, _("須為 0 或正整數。"))
            if column.required:
                errors += _errors(blank, rows, column.name, _("必填，不可留白。"))
            out[column.name] = np.where(blank | bad, np.nan, numbers)
        elif column.kind == "datetime":
            if column.name in frame:
                parsed, bad = parse_datetimes(frame[column.name].astype(str))
                errors += _errors(bad, rows, column.name, _("無法辨識的日期時間。"))
                out[column.name] = parsed.set_axis(frame.index)
            else:
                out[column.name] = pd.NaT
    if "started_at" in frame and "ended_at" in frame:
        backwards = (out["ended_at"] < out["started_at"]).to_numpy()
        errors += _errors(backwards, rows, "ended_at", _("結束時間早於開始時間。"))
    if errors:
        errors.sort(key=lambda e: (e["row"], e["column"]))
        raise InvalidInput("invalid_rows", errors[:VIEWER_ERROR_LIMIT])
    if out.empty:
        raise InvalidInput("empty_file", _("檔案沒有任何資料列。"))
    return out


def read_limited(uploaded) -> bytes:
    """The uploaded file's bytes, refused (413) beyond VIEWER_MAX_BYTES."""
    data = uploaded.read(VIEWER_MAX_BYTES + 1)
    if len(data) > VIEWER_MAX_BYTES:
        raise DomainError(
            "too_large",
            _("觀看數字檔最大 %(mb)s MB。") % {"mb": VIEWER_MAX_BYTES // 1_048_576},
            status=413,
        )
    return data


def import_viewers(*, actor, project: Project, data: bytes, file_name: str) -> dict:
    """Replace the viewer figures of every stream the file names (all or
    nothing). Answers how many rows it kept and how many name no stream of
    the book."""
    frame = parse_viewer_file(data)
    uploader = profile_for(actor)
    name = file_name[: max_length(StreamViewers, "file_name")].replace(NUL, "")

    def stamp(value):
        return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()

    def count(value):
        return None if pd.isna(value) else int(value)

    streams = frame["source_event"].tolist()
    with transaction.atomic():
        StreamViewers.objects.filter(project=project, source_event__in=streams).delete()
        StreamViewers.objects.bulk_create(
            StreamViewers(
                project=project,
                source_event=r.source_event,
                started_at=stamp(r.started_at),
                ended_at=stamp(r.ended_at),
                viewers=int(r.viewers),
                peak_concurrent=count(r.peak_concurrent),
                product_clicks=count(r.product_clicks),
                file_name=name,
                uploaded_by=uploader,
            )
            for r in frame.itertuples(index=False)
        )
    known = set(
        LiveStreamFigures.objects.filter(project=project, source_event__in=streams).values_list(
            "source_event", flat=True
        )
    )
    return {"rows": len(streams), "unmatched": sorted(set(streams) - known)}
