"""Reconciliation import: an accepted upload becomes OrderRows
(the history, append-only), one ReconciliationImport with its ImportSummary,
and a step of the project's order book.

1. `classify_frame` (pure pandas/Arrow) gives every row of the file its class
   (paid / pending / refunded / duplicate — a repeat inside the file), its
   rebuy link and its export exception, and counts them.
2. `import_frame`, in one transaction: lock the project's book (imports of a
   project apply one at a time, in import order), classify, fingerprint and
   compare with the book (new / changed / unchanged), insert the
   ReconciliationImport row with its final counts (append-only: written once,
   complete), bulk-insert the OrderRows (executemany on SQLite, COPY on
   PostgreSQL), move the book (services.book), then the summaries (this
   file's, and the book's by services.revenue) and the audit event; Wade and
   Louis are told on commit.
3. Idempotent: the database allows one import per upload (OneToOne); a caller
   that loses the race gets the winner's import.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.bulk import TEXT_COLUMNS, fingerprints, insert_rows
from reconciliation.errors import Conflict, DomainError, NotFound
from reconciliation.models import (
    AuditEvent,
    DataRequest,
    OrderRow,
    ReconciliationImport,
    SettlementImport,
    Upload,
)
from reconciliation.selectors.sync import is_source_request
from reconciliation.services import book, revenue
from reconciliation.services.audit import record_audit
from reconciliation.services.columns import (
    CONTRACT_COLUMNS,
    arrow_text,
    codes,
    utc_naive,
    with_arrow_text,
)
from reconciliation.services.frames import (
    drop_cache,
    load_accepted_frame,
    load_settlement_frame,
)
from reconciliation.services.notify import absolute, sync_import_done
from reconciliation.services.profiles import profile_for
from reconciliation.services.settlement.matching import after_book_change, import_settlement
from reconciliation.timing import Laps

logger = logging.getLogger(__name__)

Classification = OrderRow.Classification
ExceptionCode = revenue.ExceptionCode

# A payment_ref that names a refund (RF-…, …/RF, RFD123, REFUND…, 退款…): on
# a row exported as paid it contradicts the status. RE2 syntax (Arrow).
REFUND_REF_RE2 = r"(?:^|[\s/\-_:#.|])(?:refund|rfd|rf|退款|退刷)(?:$|[\s/\-_:#.|]|\d)"
IMPORT_COUNT_FIELDS = (
    "row_count",
    "paid_count",
    "pending_count",
    "refunded_count",
    "duplicate_count",
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

    `earlier`: the order book's refunded orders (order_id, classification,
    amount, customer_key, program_id, created_at); an order already in the
    book is not a duplicate but a version of it (services.book).

    - duplicate: an order_id already seen earlier in this file; the first
      occurrence keeps its class, a repeat counts only as a duplicate.
    - rebuy: a paid row after a refunded row of the same customer_key and
      program_id (this file or earlier) gets `rebuy_of` = the refunded order_id;
      each refund is re-bought at most once, by the first later paid order.
    - exceptions: amount_mismatch (the same order_id paid with different
      amounts in this file; every such paid row), paid_with_refund_ref (a paid row whose
      payment_ref is a refund reference).

    Vectorised over Arrow arrays and integer codes: a million rows in about
    a second.
    """
    earlier = _empty_earlier() if earlier is None else earlier
    if not frame["row_number"].is_monotonic_increasing:
        frame = frame.sort_values("row_number", kind="stable")
    out = frame.reset_index(drop=True).copy(deep=False)
    n = len(out)
    order = arrow_text(out["order_id"])
    status = arrow_text(out["payment_status"])

    order_codes, _values = codes(order)
    first = np.unique(order_codes, return_index=True)[1]
    duplicate = np.ones(n, dtype=bool)
    duplicate[first] = False
    repeated_in_file = np.bincount(order_codes, minlength=1)[order_codes] > 1 if n else duplicate
    if len(earlier):
        # A refund of an order this file has again is that order's own
        # history (a new version), not something a different order re-buys.
        earlier = earlier[~_in(pa.array(earlier["order_id"].tolist(), pa.string()), _values)]

    exported = np.full(n, CLASS_CODES[Classification.PENDING], dtype=np.int8)
    for value in (Classification.PAID, Classification.REFUNDED):
        exported[_bool(pc.equal(status, value.value))] = CLASS_CODES[value]
    class_code = np.where(duplicate, CLASS_CODES[Classification.DUPLICATE], exported)
    paid_any = exported == CLASS_CODES[Classification.PAID]
    paid = class_code == CLASS_CODES[Classification.PAID]

    exception = np.full(n, "", dtype=object)
    # The same order paid with two amounts: only order_ids that repeat matter.
    repeats = paid_any & repeated_in_file
    if repeats.any():
        where = np.flatnonzero(repeats)
        here = pd.DataFrame(
            {
                "order_id": order.take(pa.array(where)).to_numpy(zero_copy_only=False),
                "amount": out["amount"].to_numpy(np.float64)[where],
            }
        )
        distinct = here.groupby("order_id")["amount"].nunique()
        mismatched = here["order_id"].isin(set(distinct[distinct > 1].index)).to_numpy()
        exception[where[mismatched]] = ExceptionCode.AMOUNT_MISMATCH.value
    if paid.any():
        refund_ref = _bool(
            pc.match_substring_regex(
                arrow_text(out["payment_ref"]), REFUND_REF_RE2, ignore_case=True
            )
        )
        exception[refund_ref & paid & (exception == "")] = ExceptionCode.PAID_WITH_REFUND_REF.value

    out["classification"] = CLASS_LABELS[class_code]
    out["rebuy_of"] = _rebuy_links(out, order, class_code, earlier)
    out["exception_code"] = exception

    counts = {
        "row_count": n,
        "paid_count": int(paid.sum()),
        "pending_count": int((class_code == CLASS_CODES[Classification.PENDING]).sum()),
        "refunded_count": int((class_code == CLASS_CODES[Classification.REFUNDED]).sum()),
        "duplicate_count": int(duplicate.sum()),
    }
    if n == 0:
        import_status = ReconciliationImport.Status.FAILED
    elif (exception != "").any():
        import_status = ReconciliationImport.Status.PARTIAL
    else:
        import_status = ReconciliationImport.Status.ACCEPTED
    return Classified(frame=out, counts=counts, status=import_status)


CLASS_ORDER = (
    Classification.PAID,
    Classification.PENDING,
    Classification.REFUNDED,
    Classification.DUPLICATE,
)
CLASS_CODES = {value: code for code, value in enumerate(CLASS_ORDER)}
CLASS_LABELS = np.array([value.value for value in CLASS_ORDER], dtype=object)


def _bool(array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _in(values: pa.Array, candidates) -> np.ndarray:
    candidates = pa.array(list(candidates), pa.string())
    return _bool(pc.is_in(values, value_set=candidates))


def _rebuy_links(out: pd.DataFrame, order: pa.Array, class_code: np.ndarray, earlier):
    """rebuy_of for every row ('' unless the row is the first paid order after
    a refund of the same customer and programme)."""
    rebuy_of = np.full(len(out), "", dtype=object)
    refunded = np.flatnonzero(class_code == CLASS_CODES[Classification.REFUNDED])
    paid = np.flatnonzero(class_code == CLASS_CODES[Classification.PAID])
    prior = earlier.loc[earlier["classification"] == Classification.REFUNDED]
    if paid.size == 0 or (refunded.size == 0 and prior.empty):
        return rebuy_of
    # One integer per (customer_key, program_id) of this file.
    customers = pc.dictionary_encode(arrow_text(out["customer_key"]))
    programmes = pc.dictionary_encode(arrow_text(out["program_id"]))
    width = max(len(programmes.dictionary), 1)
    pair = customers.indices.to_numpy(zero_copy_only=False).astype(np.int64) * width + (
        programmes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    )
    stamps = utc_naive(out["created_at"]).view(np.int64)
    left = pd.DataFrame(
        {
            "pair": pair[refunded],
            "at": stamps[refunded],
            "refund": order.take(pa.array(refunded)).to_numpy(zero_copy_only=False),
        }
    )
    if len(prior):
        # Refunds of earlier imports, coded with this file's dictionaries (a
        # customer or programme absent here cannot be re-bought here).
        c = pc.index_in(arrow_text(prior["customer_key"]), value_set=customers.dictionary)
        p = pc.index_in(arrow_text(prior["program_id"]), value_set=programmes.dictionary)
        known = _bool(pc.and_(pc.is_valid(c), pc.is_valid(p)))
        if known.any():
            c = pc.fill_null(c, 0).to_numpy(zero_copy_only=False).astype(np.int64)
            p = pc.fill_null(p, 0).to_numpy(zero_copy_only=False).astype(np.int64)
            left = pd.concat(
                [
                    pd.DataFrame(
                        {
                            "pair": (c * width + p)[known],
                            "at": utc_naive(prior["created_at"]).view(np.int64)[known],
                            "refund": prior["order_id"].to_numpy(object)[known],
                        }
                    ),
                    left,
                ],
                ignore_index=True,
            )
    left = left[np.isin(left["pair"].to_numpy(), pair[paid])]
    if left.empty:
        return rebuy_of
    right = pd.DataFrame({"pair": pair[paid], "at": stamps[paid], "position": paid})
    right = right[np.isin(right["pair"].to_numpy(), left["pair"].to_numpy())]
    matched = pd.merge_asof(
        left.sort_values("at", kind="stable"),
        right.sort_values("at", kind="stable"),
        on="at",
        by="pair",
        direction="forward",
        allow_exact_matches=False,
    ).dropna(subset=["position"])
    # Two refunds before one purchase: the purchase re-buys the later refund.
    matched = matched.drop_duplicates("position", keep="last")
    rebuy_of[matched["position"].astype(np.int64).to_numpy()] = matched["refund"].to_numpy()
    return rebuy_of


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
            data_request = (
                DataRequest.objects.select_for_update()
                .select_related("project")
                .get(pk=upload.data_request_id)
            )
            existing = ReconciliationImport.objects.filter(upload=upload).first()
            if existing is not None:
                return existing
            project = data_request.project
            book_summary = book.lock(project)
            clock = Laps()
            # Counted once: the book is locked, its size holds for this import.
            book_orders = book.order_count(project)
            earlier = book.refunded_orders(project, frame, book_orders=book_orders)
            classified = classify_frame(with_arrow_text(frame, TEXT_COLUMNS), earlier=earlier)
            classified.frame["fingerprint"] = fingerprints(classified.frame)
            versions = book.compare(project, classified.frame, book_orders=book_orders)
            clock.lap("classify")
            base = revenue.import_time_summary(classified.frame)
            clock.lap("aggregate")
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
            insert_rows(reconciliation_import, classified.frame)
            clock.lap("insert")
            book_step = book.apply(
                project=project,
                reconciliation_import=reconciliation_import,
                versions=versions,
                mode=upload.mode,
            )
            clock.lap("book")
            revenue.create_summary(
                reconciliation_import=reconciliation_import, base=base, book=book_step
            )
            revenue.advance_book(
                book_summary=book_summary,
                reconciliation_import=reconciliation_import,
                versions=versions,
                actor=creator,
            )
            after_book_change(project=project, reconciliation_import=reconciliation_import)
            _record_import(
                reconciliation_import, data_request, creator, base, book_step, book_summary.totals
            )
        clock.lap("commit")
    except IntegrityError:
        winner = ReconciliationImport.objects.filter(upload=upload).first()
        if winner is None:
            raise
        return winner
    # Where a big import spends its time, for the log and `bench_reconcile`.
    reconciliation_import.timings = clock.laps
    logger.info(
        "import %s: %s rows, %s",
        reconciliation_import.pk,
        reconciliation_import.row_count,
        str(clock),
    )
    return reconciliation_import


def _record_import(
    reconciliation_import, data_request, creator, base, book_step, book_totals
) -> None:
    counts = {k: getattr(reconciliation_import, k) for k in IMPORT_COUNT_FIELDS}
    book_counts = {k: book_step[k] for k in BOOK_COUNT_FIELDS}
    record_audit(
        verb=AuditEvent.Verb.IMPORT_DONE,
        actor=creator,
        data_request=data_request,
        message=_(
            "對帳匯入完成（%(status)s）：%(rows)s 列，已付款 %(paid)s、待付款 %(pending)s、"
            "已退款 %(refunded)s、檔內重複 %(duplicates)s；訂單簿新增 %(new)s、變更 %(changed)s、"
            "未變 %(unchanged)s 筆訂單。"
        )
        % {
            "status": reconciliation_import.get_status_display(),
            "rows": f"{reconciliation_import.row_count:,}",
            "paid": f"{reconciliation_import.paid_count:,}",
            "pending": f"{reconciliation_import.pending_count:,}",
            "refunded": f"{reconciliation_import.refunded_count:,}",
            "duplicates": f"{reconciliation_import.duplicate_count:,}",
            "new": f"{book_step['new_orders']:,}",
            "changed": f"{book_step['changed_orders']:,}",
            "unchanged": f"{book_step['unchanged_orders']:,}",
        }
        + (
            _("快照缺少訂單簿裡的 %(n)s 筆訂單。")
            % {"n": f"{book_step['missing_from_snapshot']:,}"}
            if book_step["missing_from_snapshot"]
            else ""
        ),
        import_id=str(reconciliation_import.pk),
        upload_id=str(reconciliation_import.upload_id),
        status=reconciliation_import.status,
        exception_counts=base["exception_counts"],
        mode=book_step["mode"],
        **counts,
        **book_counts,
    )
    # A source's imports are told in the run's digest, one per owner.
    if reconciliation_import.status != ReconciliationImport.Status.FAILED and not (
        is_source_request(data_request.pk)
    ):
        sync_import_done(
            reconciliation_import,
            book_step=book_step,
            book_totals=book_totals,
        )


BOOK_COUNT_FIELDS = ("new_orders", "changed_orders", "unchanged_orders", "missing_from_snapshot")


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
                message=_("對帳匯入失敗：%(reason)s") % {"reason": reason},
                import_id=str(reconciliation_import.pk),
                upload_id=str(upload.pk),
                status=reconciliation_import.status,
            )
    except IntegrityError:
        return ReconciliationImport.objects.get(upload=upload)
    return reconciliation_import


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in CONTRACT_COLUMNS})
    frame["row_number"] = frame["row_number"].astype(np.int64)
    frame["amount"] = frame["amount"].astype(np.float64)
    frame["created_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return frame


# --- Entry points -------------------------------------------------------------------


def queue_import(*, upload_id) -> None:
    """Start the import of an accepted upload in the django-q2 worker. Called
    from `transaction.on_commit`, so the worker sees the accepted upload.

    A broker that is down must not turn Wade's accepted upload into an error
    page (the upload is already committed): the failure is logged and
    `import_stalled_uploads` picks the upload up once a worker runs again."""
    from django_q.tasks import async_task

    try:
        async_task(
            "reconciliation.tasks.import_upload", str(upload_id), task_name=f"import-{upload_id}"
        )
    except Exception:  # noqa: BLE001 - any broker failure; the sweep retries
        logger.exception(
            "queue_import: could not queue the import of %s; the sweep will", upload_id
        )


def import_stalled_uploads(*, now=None) -> list[str]:
    """Import accepted uploads that have had no import for a while (the
    `kolable-import-stalled` schedule). Covers a task that was never queued
    (broker down) or was lost with its worker (SIGKILL; the Redis broker does
    not redeliver). `import_upload` is idempotent, so a late original task
    and this sweep still make one import."""
    now = now or timezone.now()
    stalled = (
        Upload.objects.filter(
            schema_status=Upload.SchemaStatus.ACCEPTED,
            reconciliation_import__isnull=True,
            settlement_import__isnull=True,
            created_at__lt=now - timedelta(minutes=settings.IMPORT_STALL_MINUTES),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:5]
    )
    done = []
    for upload_id in list(stalled):
        try:
            if import_upload(upload_id=upload_id) is not None:
                done.append(str(upload_id))
        except Exception:  # noqa: BLE001 - one bad upload must not block the others
            logger.exception("import_stalled_uploads: %s cannot be imported", upload_id)
    return done


def import_upload(*, upload_id, actor=None) -> ReconciliationImport | SettlementImport | None:
    """The import of `upload_id`, created on first call. Returns None when
    the upload no longer exists (a queued task outliving its upload)."""
    existing = ReconciliationImport.objects.filter(upload_id=upload_id).first()
    if existing is None:
        existing = SettlementImport.objects.filter(upload_id=upload_id).first()
    if existing is not None:
        return existing
    upload = Upload.objects.filter(pk=upload_id).select_related("data_request").first()
    if upload is None:
        logger.info("import_upload: upload %s no longer exists", upload_id)
        return None
    if upload.schema_status != Upload.SchemaStatus.ACCEPTED:
        raise Conflict(
            "upload_not_accepted",
            _("檔案 %(name)s 尚未通過欄位驗證（%(status)s），不能對帳。")
            % {"name": upload.original_name, "status": upload.get_schema_status_display()},
        )
    if upload.data_request.kind == DataRequest.Kind.SETTLEMENT:
        return _import_settlement(upload, actor)
    started = time.perf_counter()
    try:
        frame = load_accepted_frame(upload, arrow_text=True)
    except (FileNotFoundError, ValueError, DomainError) as exc:
        logger.exception("import_upload: upload %s cannot be read", upload_id)
        return _record_failed(upload=upload, actor=actor, reason=str(exc))
    loaded = time.perf_counter() - started
    result = import_frame(upload=upload, frame=frame, actor=actor)
    _drop_cache_on_commit(upload)
    if hasattr(result, "timings"):
        result.timings = {"load": loaded, **result.timings}
    return result


def _import_settlement(upload: Upload, actor) -> SettlementImport:
    frame = load_settlement_frame(upload)
    result = import_settlement(upload=upload, frame=frame, layout=upload.layout, actor=actor)
    _drop_cache_on_commit(upload)
    return result


def _drop_cache_on_commit(upload: Upload) -> None:
    """The import is the cache's only reader; once it is committed the kept
    bytes are the record (a caller's outer transaction rolled back keeps it)."""
    upload_id = upload.pk
    transaction.on_commit(lambda: drop_cache(upload_id))


def import_for_request(*, data_request_id, actor) -> ReconciliationImport:
    """The API's import: the request's newest accepted upload, imported once."""
    data_request = DataRequest.objects.filter(pk=data_request_id).first()
    if data_request is None:
        raise NotFound("not_found", _("找不到這個資料請求。"))
    upload = (
        data_request.uploads.filter(schema_status=Upload.SchemaStatus.ACCEPTED)
        .order_by("-created_at")
        .first()
    )
    if upload is None:
        latest = data_request.uploads.order_by("-created_at").first()
        if latest is None:
            reason = _("這個資料請求還沒有任何上傳檔案。")
        elif latest.missing_fields:
            reason = _("最新的檔案 %(name)s 欄位不符（缺少 %(fields)s），沒有通過驗證的檔案。") % {
                "name": latest.original_name,
                "fields": "、".join(latest.missing_fields),
            }
        else:
            reason = _("最新的檔案 %(name)s 沒有通過驗證（%(status)s）。") % {
                "name": latest.original_name,
                "status": latest.get_schema_status_display(),
            }
        raise Conflict(
            "no_accepted_upload",
            {
                "message": _("沒有已驗收的上傳檔案，不能對帳：%(reason)s") % {"reason": reason},
                "data_request_id": str(data_request.pk),
                "request_status": data_request.status,
            },
        )
    return import_upload(upload_id=upload.pk, actor=actor)
