"""Huber's tag files: validated against the book, all errors in one pass,
applied whole, or their valid rows only when he asks; the kept file lets
him apply the valid rows without sending it again."""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from reconciliation import privacy
from reconciliation.error_codes import file_error
from reconciliation.models import (
    AuditEvent,
    Project,
)
from reconciliation.services.audit import record_audit
from reconciliation.services.evidence import (
    REFERENCE_FIELDS,
    REFERENCE_LIMITS,
    TAGS_NEEDING_REFERENCE,
    TagSource,
    _book_request,
    _recompute_revenue,
    _refresh_planner_statistics,
    reference_problems,
    rows_for_order_ids,
    write_evidence,
)
from reconciliation.services.evidence_files import canonical_tag, read_tag_table
from reconciliation.services.profiles import profile_for


@dataclass
class TagFileReport:
    """What a tag file held and what was done with it."""

    original_name: str
    sha256: str
    row_count: int = 0
    valid_count: int = 0
    applied: int = 0
    applied_rows: int = 0
    file_errors: list[dict] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    row_errors: list[dict] = field(default_factory=list)
    row_error_count: int = 0
    error_row_count: int = 0
    unknown_order_ids: list[str] = field(default_factory=list)
    unknown_count: int = 0
    apply_valid_only: bool = False

    ROW_ERRORS_KEPT = 500
    UNKNOWN_KEPT = 500

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.row_error_count

    @property
    def status(self) -> str:
        if self.applied and self.ok:
            return "applied"
        if self.applied:
            return "applied_valid_rows"
        return "rejected"

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "original_name": self.original_name,
            "sha256": self.sha256,
            "row_count": self.row_count,
            "valid_count": self.valid_count,
            "applied": self.applied,
            "file_errors": self.file_errors,
            "missing_columns": self.missing_columns,
            "row_errors": self.row_errors,
            "row_error_count": self.row_error_count,
            "error_row_count": self.error_row_count,
            "unknown_order_ids": self.unknown_order_ids,
            "unknown_count": self.unknown_count,
        }


# --- Tag files --------------------------------------------------------------------


def _kept_path(digest: str) -> Path:
    return Path(settings.DATA_DIR) / "evidence_files" / digest


def keep_tag_file(data: bytes) -> Path:
    """Keep the bytes Huber sent (named by sha256) so every applied tag can be
    traced to its file, and a rejected file can be applied later without a
    second upload."""
    path = _kept_path(hashlib.sha256(data).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return path


def forget_tag_file(digest: str) -> None:
    if re.fullmatch(r"[0-9a-f]{64}", digest or ""):
        _kept_path(digest).unlink(missing_ok=True)


def kept_tag_file(digest: str) -> bytes | None:
    if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
        return None
    path = _kept_path(digest)
    return path.read_bytes() if path.exists() else None


def _pylist(series) -> list:
    # Arrow's own conversion: iterating an Arrow-backed Series cell by cell
    # costs ~10x more.
    return (
        pa.array(series.array).to_pylist()
        if hasattr(series.array, "_pa_array")
        else series.tolist()
    )


def import_tag_file(
    *,
    actor,
    project: Project,
    data: bytes,
    original_name: str = "",
    apply_valid_only: bool = False,
) -> TagFileReport:
    """Validate a tag file (`order_id, tag, payment_ref, refund_ref,
    evidence_ref, note`) against the book, all errors in one pass, and
    apply it: all of it when it is clean; its valid rows only when
    `apply_valid_only`; otherwise nothing."""
    report = TagFileReport(
        original_name=original_name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        apply_valid_only=apply_valid_only,
    )
    if len(data) > settings.MAX_UPLOAD_MB * 1024 * 1024:
        report.file_errors.append(
            file_error(
                "too_large",
                size_mb=round(len(data) / 1_048_576, 1),
                limit_mb=settings.MAX_UPLOAD_MB,
            )
        )
        return report
    table = read_tag_table(keep_tag_file(data))
    report.file_errors = table.file_errors
    report.missing_columns = table.missing_columns
    if table.frame is None:
        return report

    frame = table.frame
    numbers = table.row_numbers
    report.row_count = len(frame)
    errors: list[dict] = []
    bad_rows: set[int] = set()

    def error(index: int, column: str, code: str, message: str):
        bad_rows.add(index)
        errors.append({"row": numbers[index], "column": column, "code": code, "message": message})

    # Vectorised masks pick the rows that may have a problem; only those go
    # through the per-row checks (the same ones a single tagging action
    # runs), so a clean 28,000-row file costs a few column operations.
    order_id_col = frame["order_id"]
    tag_of = {value: canonical_tag(value) or "" for value in frame["tag"].unique()}
    tag_col = frame["tag"].map(tag_of)
    blank = (order_id_col == "").to_numpy()
    repeated = (order_id_col.duplicated() & ~(order_id_col == "")).to_numpy()
    suspect = blank | repeated | (tag_col == "").to_numpy()
    for name in REFERENCE_FIELDS:
        suspect |= (frame[name].str.len() > REFERENCE_LIMITS[name]).to_numpy()
    # Rows that may hold a card number or token (one RE2 pass over all the
    # reference cells); the exact check runs on those rows only.
    suspect[privacy.candidate_rows([frame[name] for name in REFERENCE_FIELDS])] = True
    no_reference = (
        (frame["payment_ref"] == "") & (frame["refund_ref"] == "") & (frame["evidence_ref"] == "")
    )
    suspect |= (tag_col.isin(TAGS_NEEDING_REFERENCE) & no_reference).to_numpy()

    order_ids = _pylist(order_id_col)
    tags = _pylist(tag_col)
    ref_columns = {name: _pylist(frame[name]) for name in REFERENCE_FIELDS}
    first_seen: dict[str, int] = {}
    for index in (~blank & ~repeated).nonzero()[0].tolist():
        first_seen[order_ids[index]] = index
    for index in suspect.nonzero()[0].tolist():
        order_id = order_ids[index]
        if blank[index]:
            error(index, "order_id", "blank_order_id", _("order_id 空白。"))
        elif repeated[index]:
            error(
                index,
                "order_id",
                "duplicate_order_id",
                _("order_id 與第 %(row)s 列重複。") % {"row": numbers[first_seen[order_id]]},
            )
        if not tags[index]:
            error(
                index,
                "tag",
                "invalid_tag",
                _("無法辨識的標記「%(value)s」：請填 paid、refunded、rebought 或 unresolved。")
                % {"value": privacy.redact(frame["tag"].iat[index][:40])},
            )
        else:
            refs = {name: ref_columns[name][index] for name in REFERENCE_FIELDS}
            for column, code, message in reference_problems(tag=tags[index], refs=refs):
                error(index, column, code, message)

    found, unknown = rows_for_order_ids(project, list(first_seen))
    unknown_set = set(unknown)
    for order_id in unknown:
        error(
            first_seen[order_id],
            "order_id",
            "unknown_order_id",
            _("訂單編號 %(id)s 不在訂單簿裡。") % {"id": privacy.redact(order_id[:100])},
        )
    errors.sort(key=lambda e: e["row"])
    if any(e["code"] in privacy.SENSITIVE_CODES for e in errors):
        # A file holding card numbers or tokens is not kept (nor re-appliable).
        forget_tag_file(report.sha256)
    report.row_error_count = len(errors)
    report.error_row_count = len(bad_rows)
    report.row_errors = errors[: TagFileReport.ROW_ERRORS_KEPT]
    report.unknown_count = len(unknown)
    report.unknown_order_ids = [privacy.redact(o) for o in unknown[: TagFileReport.UNKNOWN_KEPT]]
    valid = [
        index
        for order_id, index in first_seen.items()
        if index not in bad_rows and order_id not in unknown_set
    ]
    report.valid_count = len(valid)
    if errors and not apply_valid_only:
        return report
    if not valid:
        return report

    payment_refs, refund_refs, evidence_refs, notes = (ref_columns[n] for n in REFERENCE_FIELDS)
    entries = [
        (pk, row_id, tags[i], payment_refs[i], refund_refs[i], evidence_refs[i], notes[i])
        for i in sorted(valid)
        for pk, row_id in found[order_ids[i]]
    ]
    profile = profile_for(actor)
    with transaction.atomic():
        report.applied_rows = write_evidence(project=project, entries=entries, profile=profile)
        _refresh_planner_statistics(report.applied_rows)
        report.applied = len(valid)
        counts: dict[str, int] = {}
        for index in valid:
            counts[tags[index]] = counts.get(tags[index], 0) + 1
        record_audit(
            verb=AuditEvent.Verb.EVIDENCE_TAGGED,
            actor=profile,
            project=project,
            data_request=_book_request(project),
            message=_("%(actor)s 以標記檔 %(name)s 標記 %(n)s 筆訂單。")
            % {
                "actor": profile,
                "name": report.original_name or report.sha256[:12],
                "n": f"{report.applied:,}",
            },
            count=report.applied,
            source=TagSource.FILE,
            by_tag=counts,
            skipped_rows=report.error_row_count,
            file_sha256=report.sha256,
            original_name=report.original_name,
        )
        _recompute_revenue(
            project,
            {"kind": "tags", "count": report.applied},
        )
    return report
