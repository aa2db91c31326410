"""Sample orders for the tests and `bench_evidence`: hand-made or synthetic
frames, uploaded as CSV through the real upload and import services."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile

from reconciliation.bulk import ROW_COLUMNS
from reconciliation.models import DataRequest, Project, ReconciliationImport, Upload
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from reconciliation.services.uploads import receive_upload, validate_pending_upload

TRAINING_PROGRAM = "TRAIN-28000"
OTHER_PROGRAMS = ("LIVE-BASIC-990", "LIVE-VIP-4800", "COACH-12000")
OTHER_AMOUNTS = (990.0, 4800.0, 12000.0)
PERIOD_START = datetime(2026, 5, 12, 4, 0, tzinfo=UTC)  # 12:00 Taipei
PERIOD_SECONDS = 10 * 24 * 3600 - 8 * 3600
FRAME_COLUMNS = ROW_COLUMNS[:11]


def frame_from_rows(rows: list[dict]) -> pd.DataFrame:
    """An accepted frame (the uploads contract) from a few hand-made rows;
    missing fields get plain defaults."""
    records = []
    for index, row in enumerate(rows):
        records.append(
            {
                "row_number": index + 2,
                "order_id": row["order_id"],
                "created_at": row.get("created_at", PERIOD_START),
                "customer_key": row.get("customer_key", f"{index + 1:064x}"),
                "program_id": row.get("program_id", TRAINING_PROGRAM),
                "amount": float(row.get("amount", 28000)),
                "payment_status": row.get("payment_status", "paid"),
                "payment_ref": row.get("payment_ref", f"PAY-{index + 1}"),
                "discount_code": row.get("discount_code", ""),
                "source_event": row.get("source_event", "LIVE-0512"),
                "owner_note": row.get("owner_note", ""),
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
    frame["row_number"] = frame["row_number"].astype(np.int64)
    frame["amount"] = frame["amount"].astype(np.float64)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def synthetic_frame(
    total: int, *, training: int, seed: int = 28000, prefix: str = "KOL"
) -> pd.DataFrame:
    """`total` orders over 5/12-5/21, `training` of them (spread evenly) in the
    NT$28,000 training programme; 90 % paid, 5 % pending, 5 % refunded."""
    rng = np.random.default_rng(seed)
    index = np.arange(total)
    is_training = np.zeros(total, dtype=bool)
    if training:
        is_training[np.linspace(0, total - 1, training).astype(np.int64)] = True
    other = rng.integers(0, len(OTHER_PROGRAMS), total)
    program = np.where(is_training, TRAINING_PROGRAM, np.array(OTHER_PROGRAMS, dtype=object)[other])
    amount = np.where(is_training, 28000.0, np.array(OTHER_AMOUNTS)[other])
    draw = rng.random(total)
    status = np.where(draw < 0.90, "paid", np.where(draw < 0.95, "pending", "refunded")).astype(
        object
    )
    seconds = np.sort(rng.integers(0, PERIOD_SECONDS, total))
    created = pd.to_datetime(PERIOD_START) + pd.to_timedelta(seconds, unit="s")
    day = created.tz_convert("Asia/Taipei").strftime("%m%d")
    numbers = [f"{i:07d}" for i in index]
    return pd.DataFrame(
        {
            "row_number": (index + 2).astype(np.int64),
            "order_id": [f"{prefix}-{n}" for n in numbers],
            "created_at": created,
            "customer_key": [f"{seed:08x}{i:056x}" for i in index],
            "program_id": program,
            "amount": amount,
            "payment_status": status,
            "payment_ref": np.where(
                status == "pending",
                np.char.add("PEND-", np.array(numbers)),
                np.char.add("PAY-", np.array(numbers)),
            ).astype(object),
            "discount_code": np.where(draw < 0.3, "LIVE512", "").astype(object),
            "source_event": np.char.add("LIVE-", np.array(day, dtype=str)).astype(object),
            "owner_note": "",
        }
    )


def _open_request(project: Project) -> DataRequest:
    """The project's open orders request, else a new one through the real
    service (as Louis would make it)."""
    existing = (
        project.data_requests.filter(kind=DataRequest.Kind.ORDERS)
        .exclude(status=DataRequest.Status.CLOSED)
        .first()
    )
    if existing is not None:
        return existing
    louis = project.owner_profile or project.data_owner_profile
    return create_data_request(requested_by=louis.user, project=project)


def frame_csv(frame: pd.DataFrame) -> bytes:
    """The frame as the CSV Wade would upload (the schema's ten columns)."""
    out = frame[list(FRAME_COLUMNS[1:])].copy()
    out["created_at"] = pd.to_datetime(out["created_at"], utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%S+00:00"
    )
    out["amount"] = out["amount"].map(lambda v: f"{v:.2f}")
    return out.to_csv(index=False).encode()


def import_from_frame(
    frame: pd.DataFrame,
    *,
    project: Project | None = None,
    actor=None,
    name: str = "orders.csv",
    mode: str = Upload.Mode.SNAPSHOT,
    data_request: DataRequest | None = None,
) -> ReconciliationImport:
    """Upload `frame` as a CSV to the project's open request and import it —
    the app's own upload, validation and import services, nothing else."""
    project = project or Project.objects.order_by("created_at").first()
    data_request = data_request or _open_request(project)
    uploader = actor or data_request.data_owner_profile.user
    outcome = receive_upload(
        data_request=data_request,
        uploaded_by=uploader,
        file=SimpleUploadedFile(name, frame_csv(frame), content_type="text/csv"),
        original_name=name,
        content_type="text/csv",
        mode=mode,
    )
    # A file above UPLOAD_SYNC_MAX_MB is validated by the worker's task.
    upload = validate_pending_upload(upload_id=outcome.upload.pk)
    if upload.schema_status != Upload.SchemaStatus.ACCEPTED:
        raise ValueError(f"sample upload refused: {upload.file_errors or upload.row_errors[:3]}")
    return import_upload(upload_id=upload.pk, actor=uploader)
