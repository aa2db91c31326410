"""Reconciliation import (SPEC §5): an accepted upload becomes OrderRows, one
ReconciliationImport and its ImportSummary.

1. `classify_frame` (pure pandas) gives every row of the accepted frame its
   class (paid / pending / refunded / duplicate), its rebuy link and its
   export exception, and counts them.
2. `import_frame` does, in one transaction: lock the data request (imports of
   one request run one at a time, so "seen in an earlier import" is exact),
   classify and summarise in pandas, insert the ReconciliationImport row with
   its final counts (the table is append-only: it is written once, complete),
   bulk-insert the OrderRows (executemany on SQLite, COPY on PostgreSQL — never
   row by row through the ORM), then the ImportSummary and the audit event.
3. Idempotent: the database allows one import per upload (OneToOne); a caller
   that loses the race gets the winner's import.
"""

import logging
import re
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from reconciliation.errors import Conflict, DomainError, NotFound
from reconciliation.models import (
    AuditEvent,
    DataRequest,
    Notification,
    OrderRow,
    ReconciliationImport,
    Upload,
)
from reconciliation.services import revenue
from reconciliation.services.audit import record_audit
from reconciliation.services.notify import absolute, queue_message
from reconciliation.services.profiles import profile_for

logger = logging.getLogger(__name__)

Classification = OrderRow.Classification
ExceptionCode = revenue.ExceptionCode

# A payment_ref that names a refund (RF-…, RFD123, REFUND…, 退款…, 退刷…): on
# a row exported as paid it contradicts the status.
REFUND_REF = re.compile(r"^\s*(?:refund|rfd|rf|退款|退刷)(?:[\s\-_:#/.]|\d|$)", re.IGNORECASE)
INSERT_BATCH = 20_000
IMPORT_COUNT_FIELDS = (
    "row_count",
    "paid_count",
    "pending_count",
    "refunded_count",
    "duplicate_count",
)

ROW_COLUMNS = (
    "row_number",
    "order_id",
    "created_at",
    "customer_key",
    "program_id",
    "amount",
    "payment_status",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
    "classification",
    "rebuy_of",
    "exception_code",
)


@dataclass
class Classified:
    frame: pd.DataFrame
    counts: dict = field(default_factory=dict)
    status: str = ReconciliationImport.Status.ACCEPTED


def _empty_earlier() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": pd.Series([], dtype=object),
            "classification": pd.Series([], dtype=object),
            "amount": pd.Series([], dtype=np.float64),
            "customer_key": pd.Series([], dtype=object),
            "program_id": pd.Series([], dtype=object),
            "created_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )


def classify_frame(frame: pd.DataFrame, *, earlier: pd.DataFrame | None = None) -> Classified:
    """Classify an accepted frame (the uploads contract: row_number, order_id,
    created_at, customer_key, program_id, amount, payment_status, payment_ref,
    discount_code, source_event, owner_note).

    `earlier`: the non-duplicate rows of earlier imports of the same request
    (order_id, classification, amount, customer_key, program_id, created_at).

    - duplicate: an order_id already seen earlier in this file or in an earlier
      import; the first occurrence keeps its class, a repeat counts only as a
      duplicate.
    - rebuy: a paid row after a refunded row of the same customer_key and
      program_id (this file or earlier) gets `rebuy_of` = the refunded order_id;
      each refund is re-bought at most once, by the first later paid order.
    - exceptions: amount_mismatch (the same order_id paid with different
      amounts; every such paid row), paid_with_refund_ref (a paid row whose
      payment_ref is a refund reference).
    """
    earlier = _empty_earlier() if earlier is None else earlier
    if not frame["row_number"].is_monotonic_increasing:
        frame = frame.sort_values("row_number", kind="stable")
    out = frame.reset_index(drop=True).copy(deep=False)
    n = len(out)
    order_id = out["order_id"]
    status = out["payment_status"].to_numpy(object)

    duplicate = order_id.duplicated(keep="first").to_numpy()
    if len(earlier):
        duplicate |= order_id.isin(set(earlier["order_id"])).to_numpy()
    classification = np.where(duplicate, Classification.DUPLICATE.value, status).astype(object)
    paid_any = status == Classification.PAID
    paid = classification == Classification.PAID

    exception = np.full(n, "", dtype=object)
    # The same order paid with two amounts: look only at order_ids that repeat.
    earlier_paid = earlier.loc[earlier["classification"] == Classification.PAID]
    repeats = paid_any & (
        order_id.duplicated(keep=False).to_numpy()
        | order_id.isin(set(earlier_paid["order_id"])).to_numpy()
    )
    if repeats.any():
        amounts = pd.concat(
            [
                out.loc[repeats, ["order_id", "amount"]],
                earlier_paid[earlier_paid["order_id"].isin(set(order_id[repeats]))][
                    ["order_id", "amount"]
                ],
            ]
        )
        distinct = amounts.groupby("order_id")["amount"].nunique()
        mismatched = set(distinct[distinct > 1].index)
        exception[repeats & order_id.isin(mismatched).to_numpy()] = (
            ExceptionCode.AMOUNT_MISMATCH.value
        )
    if paid.any():
        refund_ref = np.zeros(n, dtype=bool)
        refund_ref[paid] = (
            out.loc[paid, "payment_ref"].astype(str).str.match(REFUND_REF).to_numpy(bool)
        )
        exception[refund_ref & (exception == "")] = ExceptionCode.PAID_WITH_REFUND_REF.value

    out["classification"] = classification
    out["rebuy_of"] = _rebuy_links(out, classification, earlier)
    out["exception_code"] = exception

    counts = {
        "row_count": n,
        "paid_count": int(paid.sum()),
        "pending_count": int((classification == Classification.PENDING).sum()),
        "refunded_count": int((classification == Classification.REFUNDED).sum()),
        "duplicate_count": int(duplicate.sum()),
    }
    if n == 0:
        import_status = ReconciliationImport.Status.FAILED
    elif (exception != "").any():
        import_status = ReconciliationImport.Status.PARTIAL
    else:
        import_status = ReconciliationImport.Status.ACCEPTED
    return Classified(frame=out, counts=counts, status=import_status)


def _rebuy_links(out: pd.DataFrame, classification: np.ndarray, earlier: pd.DataFrame):
    rebuy_of = np.full(len(out), "", dtype=object)
    keys = ["customer_key", "program_id"]
    refunds = out.loc[classification == Classification.REFUNDED, [*keys, "created_at", "order_id"]]
    prior = earlier.loc[earlier["classification"] == Classification.REFUNDED]
    if len(prior):
        refunds = pd.concat([prior[[*keys, "created_at", "order_id"]], refunds])
    paid_rows = out.loc[classification == Classification.PAID, [*keys, "created_at"]]
    if refunds.empty or paid_rows.empty:
        return rebuy_of
    refunds = refunds[refunds["customer_key"].isin(set(paid_rows["customer_key"]))]
    if refunds.empty:
        return rebuy_of
    paid_rows = paid_rows[paid_rows["customer_key"].isin(set(refunds["customer_key"]))]
    right = paid_rows.assign(position=paid_rows.index.to_numpy()).sort_values(
        "created_at", kind="stable"
    )
    left = refunds.sort_values("created_at", kind="stable")
    matched = pd.merge_asof(
        left,
        right,
        on="created_at",
        by=keys,
        direction="forward",
        allow_exact_matches=False,
    ).dropna(subset=["position"])
    # Two refunds before one purchase: the purchase re-buys the later refund.
    matched = matched.drop_duplicates("position", keep="last")
    rebuy_of[matched["position"].astype(np.int64).to_numpy()] = matched["order_id"].to_numpy()
    return rebuy_of


# --- Writing ----------------------------------------------------------------------


def _earlier_orders(data_request_id) -> pd.DataFrame:
    records = (
        OrderRow.objects.filter(reconciliation_import__data_request_id=data_request_id)
        .exclude(classification=Classification.DUPLICATE)
        .values_list(
            "order_id", "classification", "amount", "customer_key", "program_id", "created_at"
        )
        .iterator(chunk_size=20_000)
    )
    frame = pd.DataFrame.from_records(list(records), columns=list(_empty_earlier().columns))
    if frame.empty:
        return _empty_earlier()
    frame["amount"] = frame["amount"].astype(np.float64)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def _timestamps(created_at: pd.Series, *, postgres: bool) -> np.ndarray:
    """UTC timestamps as the text each backend stores (Django's own format on
    SQLite, so ORM filters compare like for like), formatted in C."""
    utc = pd.to_datetime(created_at, utc=True).dt.tz_localize(None).to_numpy()
    with_micro = bool((utc.astype("datetime64[us]") != utc.astype("datetime64[s]")).any())
    text = np.datetime_as_string(utc, unit="us" if with_micro else "s")
    width = 26 if with_micro else 19
    raw = text.astype(f"S{width}")
    raw.view(np.uint8).reshape(-1, width)[:, 10] = ord(" ")
    text = raw.astype(f"U{width}")
    if postgres:
        text = np.char.add(text, "+00")
    return text.astype(object)


def _insert_rows(reconciliation_import: ReconciliationImport, frame: pd.DataFrame) -> None:
    postgres = connection.vendor == "postgresql"
    import_id = ReconciliationImport._meta.pk.get_db_prep_value(
        reconciliation_import.pk, connection
    )
    table = OrderRow._meta.db_table
    columns = ["reconciliation_import_id", *ROW_COLUMNS]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the driver's cursor: no per-row wrapper work
        if postgres:
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608 - fixed names
                for batch in _batches(frame, import_id, postgres=True):
                    for row in batch:
                        copy.write_row(row)
        else:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 - fixed names
            for batch in _batches(frame, import_id, postgres=False):
                raw.executemany(sql, batch)


def _batches(frame: pd.DataFrame, import_id, *, postgres: bool):
    for start in range(0, len(frame), INSERT_BATCH):
        part = frame.iloc[start : start + INSERT_BATCH]
        values = [
            part["row_number"].astype(np.int64).tolist(),
            part["order_id"].tolist(),
            _timestamps(part["created_at"], postgres=postgres).tolist(),
            part["customer_key"].tolist(),
            part["program_id"].tolist(),
            part["amount"].astype(np.float64).round(2).tolist(),
            *(part[c].tolist() for c in ROW_COLUMNS[6:]),
        ]
        yield list(zip([import_id] * len(part), *values, strict=True))


def scorecard_url(reconciliation_import: ReconciliationImport) -> str:
    return absolute(f"{reverse('scorecard')}?import={reconciliation_import.pk}")


def import_frame(*, upload: Upload, frame: pd.DataFrame, actor=None) -> ReconciliationImport:
    """Import an accepted upload's frame (idempotent per upload)."""
    existing = ReconciliationImport.objects.filter(upload=upload).first()
    if existing is not None:
        return existing
    creator = profile_for(actor) if actor is not None else None
    try:
        with transaction.atomic():
            # Imports of one request one at a time: the duplicate check
            # against earlier imports must see every earlier import.
            data_request = DataRequest.objects.select_for_update().get(pk=upload.data_request_id)
            existing = ReconciliationImport.objects.filter(upload=upload).first()
            if existing is not None:
                return existing
            classified = classify_frame(frame, earlier=_earlier_orders(data_request.pk))
            base = revenue.import_time_summary(classified.frame)
            reconciliation_import = ReconciliationImport(
                id=uuid.uuid4(),
                data_request=data_request,
                upload=upload,
                status=classified.status,
                created_by=creator,
                **classified.counts,
            )
            reconciliation_import.scorecard_ref = scorecard_url(reconciliation_import)
            reconciliation_import.save(force_insert=True)
            _insert_rows(reconciliation_import, classified.frame)
            revenue.create_summary(reconciliation_import=reconciliation_import, base=base)
            _record_import(reconciliation_import, data_request, creator, base)
    except IntegrityError:
        winner = ReconciliationImport.objects.filter(upload=upload).first()
        if winner is None:
            raise
        return winner
    return reconciliation_import


def _record_import(reconciliation_import, data_request, creator, base) -> None:
    totals = base["totals"]
    counts = {k: getattr(reconciliation_import, k) for k in IMPORT_COUNT_FIELDS}
    status_label = reconciliation_import.get_status_display()
    record_audit(
        verb=AuditEvent.Verb.IMPORT_DONE,
        actor=creator,
        data_request=data_request,
        message=(
            f"對帳匯入完成（{status_label}）：{reconciliation_import.row_count} 列，"
            f"已付款 {reconciliation_import.paid_count}、待付款 {reconciliation_import.pending_count}、"
            f"已退款 {reconciliation_import.refunded_count}、重複 {reconciliation_import.duplicate_count}。"
        ),
        import_id=str(reconciliation_import.pk),
        upload_id=str(reconciliation_import.upload_id),
        status=reconciliation_import.status,
        exception_counts=base["exception_counts"],
        **counts,
    )
    louis = data_request.project.owner_profile
    if louis is None or reconciliation_import.status == ReconciliationImport.Status.FAILED:
        return
    held = totals["held_orders"]
    queue_message(
        recipient=louis,
        kind=Notification.Kind.INFO,
        subject=f"{data_request.project.name} 對帳完成，等你決定是否認列",
        body=(
            f"{louis}：{data_request.project.name} 的訂單付款檔已完成對帳，"
            f"已驗證實收 NT${totals['paid_amount']:,.0f}（{totals['paid_orders']} 筆）"
            + (f"，另有 {held} 筆因例外保留、不認列" if held else "")
            + f"。請在成績單上決定認列或暫停。\n{reconciliation_import.scorecard_ref}"
        ),
        data_request=data_request,
        payload={
            "import_id": str(reconciliation_import.pk),
            "status": reconciliation_import.status,
        },
        dedupe_key=f"import:{reconciliation_import.pk}:owner",
    )


def _record_failed(*, upload: Upload, actor, reason: str) -> ReconciliationImport:
    """Nothing could be classified (the kept bytes cannot be read any more):
    a failed import, so the request shows why and PLS does not retry forever."""
    creator = profile_for(actor) if actor is not None else None
    try:
        with transaction.atomic():
            reconciliation_import = ReconciliationImport(
                id=uuid.uuid4(),
                data_request_id=upload.data_request_id,
                upload=upload,
                status=ReconciliationImport.Status.FAILED,
                created_by=creator,
            )
            reconciliation_import.scorecard_ref = scorecard_url(reconciliation_import)
            reconciliation_import.save(force_insert=True)
            revenue.create_summary(
                reconciliation_import=reconciliation_import,
                base=revenue.import_time_summary(classify_frame(_empty_frame()).frame),
            )
            record_audit(
                verb=AuditEvent.Verb.IMPORT_DONE,
                actor=creator,
                data_request=upload.data_request,
                message=f"對帳匯入失敗：{reason}",
                import_id=str(reconciliation_import.pk),
                upload_id=str(upload.pk),
                status=reconciliation_import.status,
            )
    except IntegrityError:
        return ReconciliationImport.objects.get(upload=upload)
    return reconciliation_import


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in ROW_COLUMNS[:11]})
    frame["row_number"] = frame["row_number"].astype(np.int64)
    frame["amount"] = frame["amount"].astype(np.float64)
    frame["created_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return frame


# --- Entry points -------------------------------------------------------------------


def queue_import(*, upload_id) -> None:
    """Start the import of an accepted upload in the django-q2 worker. Called
    from `transaction.on_commit`, so the worker sees the accepted upload."""
    from django_q.tasks import async_task

    async_task(
        "reconciliation.tasks.import_upload", str(upload_id), task_name=f"import-{upload_id}"
    )


def import_upload(*, upload_id, actor=None) -> ReconciliationImport | None:
    """The import of `upload_id`, created on first call. Returns None when
    the upload no longer exists (a queued task outliving its upload)."""
    existing = ReconciliationImport.objects.filter(upload_id=upload_id).first()
    if existing is not None:
        return existing
    upload = Upload.objects.filter(pk=upload_id).select_related("data_request").first()
    if upload is None:
        logger.info("import_upload: upload %s no longer exists", upload_id)
        return None
    if upload.schema_status != Upload.SchemaStatus.ACCEPTED:
        raise Conflict(
            "upload_not_accepted",
            f"檔案 {upload.original_name} 尚未通過欄位驗證（{upload.get_schema_status_display()}），不能對帳。",
        )
    from reconciliation.services.uploads import load_accepted_frame

    try:
        frame = load_accepted_frame(upload)
    except (FileNotFoundError, ValueError, DomainError) as exc:
        logger.exception("import_upload: upload %s cannot be read", upload_id)
        return _record_failed(upload=upload, actor=actor, reason=str(exc))
    return import_frame(upload=upload, frame=frame, actor=actor)


def import_for_request(*, data_request_id, actor) -> ReconciliationImport:
    """The API's import: the request's newest accepted upload, imported once."""
    data_request = DataRequest.objects.filter(pk=data_request_id).first()
    if data_request is None:
        raise NotFound("not_found", "找不到這個資料請求。")
    upload = (
        data_request.uploads.filter(schema_status=Upload.SchemaStatus.ACCEPTED)
        .order_by("-created_at")
        .first()
    )
    if upload is None:
        latest = data_request.uploads.order_by("-created_at").first()
        reason = (
            "這個資料請求還沒有任何上傳檔案。"
            if latest is None
            else f"最新的檔案 {latest.original_name} 欄位不符"
            + (f"（缺少 {'、'.join(latest.missing_fields)}）" if latest.missing_fields else "")
            + "，沒有通過驗證的檔案。"
        )
        raise Conflict(
            "no_accepted_upload",
            {
                "message": f"沒有已驗收的上傳檔案，不能對帳：{reason}",
                "data_request_id": str(data_request.pk),
                "request_status": data_request.status,
            },
        )
    return import_upload(upload_id=upload.pk, actor=actor)
