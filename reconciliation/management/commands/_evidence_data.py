"""Imports made straight from a frame, for the evidence tests and
`bench_evidence`: no file, no upload pipeline, but the import's own
classification and revenue summary (services.imports / services.revenue), and
the rows inserted in bulk as the import does."""

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import connection, transaction

from reconciliation.models import DataRequest, OrderRow, Project, ReconciliationImport, Upload
from reconciliation.services import revenue
from reconciliation.services.imports import ROW_COLUMNS, classify_frame
from reconciliation.services.profiles import profile_for

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
                status == "pending", "", np.char.add("PAY-", np.array(numbers))
            ).astype(object),
            "discount_code": np.where(draw < 0.3, "LIVE512", "").astype(object),
            "source_event": np.char.add("LIVE-", np.array(day, dtype=str)).astype(object),
            "owner_note": "",
        }
    )


def _request_for(project: Project) -> DataRequest:
    existing = project.data_requests.exclude(status=DataRequest.Status.CLOSED).first()
    if existing is not None:
        return existing
    owner = project.data_owner_profile
    return DataRequest.objects.create(
        project=project,
        period_start=datetime(2026, 5, 12).date(),
        period_end=datetime(2026, 5, 21).date(),
        data_owner_profile=owner,
        requested_by_profile=project.owner_profile or owner,
        status=DataRequest.Status.ACCEPTED,
    )


def _db_times(created_at: pd.Series) -> list:
    """UTC timestamps as text each backend reads: Django's own SQLite form
    (so ORM filters compare like for like), an explicit offset for COPY."""
    utc = pd.to_datetime(created_at, utc=True)
    suffix = "+00" if connection.vendor == "postgresql" else ""
    return utc.dt.strftime(f"%Y-%m-%d %H:%M:%S{suffix}").tolist()


def _insert(reconciliation_import: ReconciliationImport, frame: pd.DataFrame) -> None:
    import_id = ReconciliationImport._meta.pk.get_db_prep_value(
        reconciliation_import.pk, connection
    )
    columns = ["reconciliation_import_id", *ROW_COLUMNS]
    table = OrderRow._meta.db_table
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for start in range(0, len(frame), 50_000):
            part = frame.iloc[start : start + 50_000]
            values = [
                part["row_number"].astype(np.int64).tolist(),
                part["order_id"].tolist(),
                _db_times(part["created_at"]),
                part["customer_key"].tolist(),
                part["program_id"].tolist(),
                part["amount"].astype(np.float64).round(2).tolist(),
                *(part[c].tolist() for c in ROW_COLUMNS[6:]),
            ]
            rows = list(zip([import_id] * len(part), *values, strict=True))
            if connection.vendor == "postgresql":
                with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608 - fixed names
                    for row in rows:
                        copy.write_row(row)
            else:
                placeholders = ", ".join("?" * len(columns))
                raw.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608 - fixed names
                    rows,
                )


def import_from_frame(
    frame: pd.DataFrame, *, project: Project | None = None, actor=None
) -> ReconciliationImport:
    """An accepted import of `frame`: classified and summarised by the import's
    own rules, written complete (the import table is append-only)."""
    project = project or Project.objects.order_by("created_at").first()
    with transaction.atomic():
        data_request = _request_for(project)
        uploader = data_request.data_owner_profile
        upload = Upload.objects.create(
            data_request=data_request,
            uploaded_by=uploader,
            original_name="orders.csv",
            size=len(frame),
            sha256=uuid.uuid4().hex + uuid.uuid4().hex,
            storage_path="",
            schema_status=Upload.SchemaStatus.ACCEPTED,
            row_count=len(frame),
        )
        classified = classify_frame(frame)
        base = revenue.import_time_summary(classified.frame)
        reconciliation_import = ReconciliationImport.objects.create(
            data_request=data_request,
            upload=upload,
            status=classified.status,
            created_by=profile_for(actor) if actor is not None else None,
            **classified.counts,
        )
        _insert(reconciliation_import, classified.frame)
        revenue.create_summary(reconciliation_import=reconciliation_import, base=base)
    return reconciliation_import
