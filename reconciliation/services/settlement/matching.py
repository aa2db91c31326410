"""The settlement import: an accepted settlement upload becomes
SettlementLines (append-only), one SettlementImport, and a rebuilt
settlement result for the orders of the book.

1. Lines are keyed: the provider's transaction id (case-folded) when the
   file has one, else payment_ref + day + amount + type. A key seen before
   (earlier in this file, or in any earlier file of the project) makes the
   line a `duplicate_line`: stored, reported, never counted.
2. The other lines are grouped by payment_ref (trimmed, case-folded) and
   matched to the book's order carrying that payment_ref (`matched`), or to
   none (`orphan`). Vectorised: one read of the book's references, one
   index lookup, one bulk insert.
3. Earlier orphans are claimed by the orders that came after them
   (settlement.claims), then every order's result is rebuilt in SQL from
   all its counted lines (this file's and earlier ones', so a refund
   settling in a later file moves the order), the claims and the live
   manual matches: see `results.rebuild_order_settlements`. Louis's and Wade's
   messages are written in the same transaction (settlement.notices).

One transaction, with the project's book locked: settlement and order
imports of a project apply one at a time. One import per upload (OneToOne):
the same file twice imports once.
"""

import logging
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from reconciliation.bulk import analyze_table, db_value, insert_columns, sql_frame
from reconciliation.bulk import q as _q
from reconciliation.models import (
    AuditEvent,
    DataRequest,
    OrderSettlement,
    SettlementImport,
    SettlementLine,
    Upload,
)
from reconciliation.selectors.settlement import settlement_figures
from reconciliation.services import book
from reconciliation.services.audit import record_audit
from reconciliation.services.columns import arrow_text, utc_naive
from reconciliation.services.notify import absolute
from reconciliation.services.profiles import profile_for
from reconciliation.services.settlement import claims, notices
from reconciliation.services.settlement.results import (
    MISMATCH_STATES,
    after_book_change,
    after_settlement_change,
    rebuild_order_settlements,
)
from reconciliation.timing import Laps

# Order imports call after_book_change through this module.
__all__ = ["MISMATCH_STATES", "after_book_change", "import_settlement", "rebuild_order_settlements"]

logger = logging.getLogger(__name__)

LineState = SettlementLine.State
OrderState = OrderSettlement.State


def line_keys(frame: pd.DataFrame) -> pa.Array:
    """The identity of each line (see the module docstring, step 1)."""
    txn = pc.utf8_lower(arrow_text(frame["provider_txn_id"]))
    days = pd.Series(utc_naive(frame["txn_date"]).astype("datetime64[D]")).astype(str)
    cents = np.rint(frame["gross_amount"].to_numpy(np.float64) * 100).astype(np.int64)
    fallback = pc.binary_join_element_wise(
        arrow_text(frame["ref_key"]),
        pa.array(days.to_numpy(object), pa.string()),
        pc.cast(pa.array(cents), pa.string()),
        arrow_text(frame["txn_type"]),
        "|",
    )
    return pc.if_else(pc.equal(txn, ""), fallback, pc.binary_join_element_wise("txn", txn, ":"))


def _earlier_keys(project) -> pa.Array:
    frame = sql_frame(
        f"SELECT {_q('line_key')} FROM {_q(SettlementLine._meta.db_table)} "  # noqa: S608
        f"WHERE {_q('project_id')} = %s",
        [db_value(SettlementLine, "project", project.pk)],
        ["line_key"],
    )
    return arrow_text(frame["line_key"])


def classify_lines(frame: pd.DataFrame, *, references: pd.Series, earlier: pa.Array):
    """(line_key, state, order id or null) of every line, vectorised."""
    keys = line_keys(frame)
    n = len(frame)
    repeat = pd.Index(keys.to_numpy(zero_copy_only=False)).duplicated(keep="first")
    seen = (
        np.asarray(pc.is_in(keys, value_set=earlier).to_numpy(zero_copy_only=False), dtype=bool)
        if len(earlier)
        else np.zeros(n, dtype=bool)
    )
    duplicate = repeat | seen
    position = references.index.get_indexer(arrow_text(frame["ref_key"]).to_numpy(False))
    found = (position >= 0) & ~duplicate
    order_ids = pa.array(
        np.where(found, references.to_numpy()[np.maximum(position, 0)], 0), pa.int64()
    )
    order_ids = pc.if_else(pa.array(found), order_ids, pa.scalar(None, pa.int64()))
    state = np.where(
        duplicate,
        LineState.DUPLICATE_LINE.value,
        np.where(found, LineState.MATCHED, LineState.ORPHAN),
    )
    return keys, pa.array(state.astype(object), pa.string()), order_ids


def import_settlement(*, upload: Upload, frame: pd.DataFrame, layout: str, actor=None):
    """Import an accepted settlement frame (idempotent per upload)."""
    existing = SettlementImport.objects.filter(upload=upload).first()
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
            existing = SettlementImport.objects.filter(upload=upload).first()
            if existing is not None:
                return existing
            project = data_request.project
            book.lock(project)
            laps = Laps()
            before = settlement_figures(project)
            references = claims.book_references(project)
            keys, states, order_ids = classify_lines(
                frame, references=references, earlier=_earlier_keys(project)
            )
            laps.lap("classify")
            state_values = states.to_numpy(zero_copy_only=False)
            import_id = uuid.uuid4()
            # The lines first (no FK constraint), then the import row with its
            # final counts: the row is append-only, written once, complete.
            _insert_lines(import_id, project, frame, keys, states, order_ids)
            laps.lap("insert")
            claims.claim_orphans(project=project, references=references)
            mismatches = rebuild_order_settlements(project=project)
            laps.lap("rebuild")
            settlement_import = SettlementImport.objects.create(
                id=import_id,
                project=project,
                data_request=data_request,
                upload=upload,
                status=SettlementImport.Status.ACCEPTED,
                layout=layout,
                line_count=len(frame),
                matched_count=int((state_values == LineState.MATCHED).sum()),
                orphan_count=int((state_values == LineState.ORPHAN).sum()),
                duplicate_line_count=int((state_values == LineState.DUPLICATE_LINE).sum()),
                mismatch_count=mismatches,
                scorecard_ref=absolute(reverse("scorecard")),
                created_by=creator,
            )
            _record(settlement_import, data_request, creator, mismatches)
            after_settlement_change(
                project=project, cause={"kind": "import", "file_name": upload.original_name}
            )
            notices.settlement_import_done(
                settlement_import, before=before, after=settlement_figures(project)
            )
            laps.lap("summary")
    except IntegrityError:
        winner = SettlementImport.objects.filter(upload=upload).first()
        if winner is None:
            raise
        return winner
    laps.lap("commit")
    settlement_import.timings = laps.laps
    logger.info(
        "settlement import %s: %s lines, %s",
        settlement_import.pk,
        settlement_import.line_count,
        str(laps),
    )
    return settlement_import


def _insert_lines(import_id, project, frame, keys, states, order_ids) -> None:
    """All lines in one bulk insert, ordered by the order they matched
    (orphans and duplicates last): line ids follow the order, row_number
    keeps the file's order."""
    n = len(frame)
    ranked = pc.fill_null(order_ids, np.iinfo(np.int64).max).to_numpy(zero_copy_only=False)
    order = np.argsort(ranked, kind="stable")
    take = pa.array(order)
    frame = frame.iloc[order].reset_index(drop=True)
    keys, states, order_ids = keys.take(take), states.take(take), order_ids.take(take)
    text = {name: arrow_text(frame[name]) for name in _TEXT}
    project_id = str(db_value(SettlementLine, "project", project.pk))
    import_ref = str(db_value(SettlementLine, "settlement_import", import_id))
    columns = {
        "project_id": pa.array([project_id] * n, pa.string()),
        "settlement_import_id": pa.array([import_ref] * n, pa.string()),
        "row_number": frame["row_number"].to_numpy(np.int64),
        **text,
        "line_key": keys,
        "gross_amount": frame["gross_amount"].to_numpy(np.float64),
        "fee_amount": frame["fee_amount"].to_numpy(np.float64),
        "net_amount": frame["net_amount"].to_numpy(np.float64),
        "txn_date": utc_naive(frame["txn_date"]),
        "settlement_date": utc_naive(frame["settlement_date"]),
        "line_state": states,
        "order_id": order_ids,
    }
    insert_columns(SettlementLine._meta.db_table, columns)
    analyze_table(SettlementLine)


_TEXT = (
    "payment_ref",
    "ref_key",
    "provider_txn_id",
    "txn_type",
    "payout_id",
    "settlement_status",
    "provider",
)


def _record(settlement_import, data_request, creator, mismatches) -> None:
    record_audit(
        verb=AuditEvent.Verb.SETTLEMENT_IMPORTED,
        actor=creator,
        data_request=data_request,
        message=_(
            "撥款對帳完成：%(lines)s 筆撥款明細，對上訂單 %(matched)s、找不到訂單 %(orphans)s、"
            "重複 %(duplicates)s；金額不符的訂單 %(mismatches)s 筆。"
        )
        % {
            "lines": f"{settlement_import.line_count:,}",
            "matched": f"{settlement_import.matched_count:,}",
            "orphans": f"{settlement_import.orphan_count:,}",
            "duplicates": f"{settlement_import.duplicate_line_count:,}",
            "mismatches": f"{mismatches:,}",
        },
        settlement_import_id=str(settlement_import.pk),
        upload_id=str(settlement_import.upload_id),
        line_count=settlement_import.line_count,
        matched_count=settlement_import.matched_count,
        orphan_count=settlement_import.orphan_count,
        duplicate_line_count=settlement_import.duplicate_line_count,
        mismatch_count=mismatches,
    )
