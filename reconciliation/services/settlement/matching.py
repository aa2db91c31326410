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
3. Every order's result is rebuilt in SQL from all its counted lines (this
   file's and earlier ones', so a refund settling in a later file moves the
   order) and the live manual matches: see `rebuild_order_settlements`.

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
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from reconciliation.bulk import db_value, insert_columns, sql_frame
from reconciliation.models import (
    AuditEvent,
    DataRequest,
    Order,
    OrderSettlement,
    SettlementAcceptance,
    SettlementClaim,
    SettlementImport,
    SettlementLine,
    SettlementMatch,
    Upload,
)
from reconciliation.services import book, live
from reconciliation.services.audit import record_audit
from reconciliation.services.columns import arrow_text, utc_naive
from reconciliation.services.notify import absolute
from reconciliation.services.profiles import profile_for
from reconciliation.services.settlement import claims
from reconciliation.services.settlement.claims import OrderSubset
from reconciliation.timing import Laps

logger = logging.getLogger(__name__)

LineState = SettlementLine.State
OrderState = OrderSettlement.State
MISMATCH_STATES = (OrderState.OVER_AMOUNT, OrderState.AMOUNT_MISMATCH)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


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
    _analyze(SettlementLine)


def _analyze(model) -> None:
    """Fresh statistics for a table a bulk write just grew, so the SQL that
    follows in the same transaction gets a sensible plan (PostgreSQL has
    none for a million rows it has not seen yet)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_q(model._meta.db_table)}")  # noqa: S608 - fixed name


_TEXT = (
    "payment_ref",
    "ref_key",
    "provider_txn_id",
    "txn_type",
    "payout_id",
    "settlement_status",
    "provider",
)


def rebuild_order_settlements(*, project, only: OrderSubset | None = None) -> int:
    """The settlement result of every order (or of `only` these; the other
    orders' rows are left alone) from its counted lines, in SQL: lines
    matched on arrival, orphans an order that came later claims, and orphans
    a person matched (and not undone; a manual match wins over a claim);
    duplicate lines never count. Only lines the provider reports settled
    move money; an order whose lines are all unsettled or on hold stays
    `expected`. A difference is accepted by a manual match that accepted it,
    or by Louis's live acceptance of the same settled gross. Returns how
    many orders of the project now disagree with their lines."""
    lines = _q(SettlementLine._meta.db_table)
    matches = _q(SettlementMatch._meta.db_table)
    claimed = _q(SettlementClaim._meta.db_table)
    acceptances = _q(SettlementAcceptance._meta.db_table)
    orders = _q(Order._meta.db_table)
    results = _q(OrderSettlement._meta.db_table)
    project_id = db_value(OrderSettlement, "project", project.pk)
    subset_params = only.params if only is not None else []
    # Only the lines that can count for the subset: by the line's order (its
    # index), its claim or its manual match.
    some_lines = (
        f"AND (l.{_q('order_id')} IN ({only.sql}) OR c.{_q('order_id')} IN ({only.sql}) "
        f"OR m.{_q('order_id')} IN ({only.sql}))"
        if only is not None
        else ""
    )
    counted = (
        f"SELECT COALESCE(m.{_q('order_id')}, l.{_q('order_id')}, c.{_q('order_id')}) "  # noqa: S608 - fixed names
        f"AS order_pk, l.{_q('gross_amount')} AS gross, l.{_q('fee_amount')} AS fee, "
        f"l.{_q('net_amount')} AS net, l.{_q('settlement_status')} AS status, "
        f"CASE WHEN m.{_q('accept_difference')} THEN 1 ELSE 0 END AS accepted "
        f"FROM {lines} l LEFT JOIN {matches} m ON m.{_q('line_id')} = l.{_q('id')} "
        f"AND m.{_q('undone_at')} IS NULL "
        f"LEFT JOIN {claimed} c ON c.{_q('line_id')} = l.{_q('id')} "
        f"WHERE l.{_q('project_id')} = %s AND l.{_q('line_state')} <> 'duplicate_line' "
        f"{some_lines}"
    )
    settled = "CASE WHEN c.status = 'settled' THEN {} ELSE 0 END"
    in_subset = f"AND c.order_pk IN ({only.sql})" if only is not None else ""
    sums = (
        f"SELECT c.order_pk, SUM({settled.format('c.gross')}) AS gross, "  # noqa: S608 - fixed names
        f"SUM({settled.format('c.fee')}) AS fee, SUM({settled.format('c.net')}) AS net, "
        f"SUM({settled.format('CASE WHEN c.gross < 0 THEN -c.gross ELSE 0 END')}) AS refund, "
        f"SUM(CASE WHEN c.status = 'settled' THEN 0 ELSE c.gross END) AS unsettled, "
        f"SUM(CASE WHEN c.status = 'settled' THEN 1 ELSE 0 END) AS settled_lines, "
        f"COUNT(*) AS line_count, MAX(c.accepted) AS accepted "
        f"FROM ({counted}) c WHERE c.order_pk IS NOT NULL {in_subset} GROUP BY c.order_pk"
    )
    same = "ABS(s.gross - o.{amount}) < 0.005".format(amount=_q("amount"))
    accepted_here = (
        f"(s.accepted = 1 OR (a.{_q('id')} IS NOT NULL "
        f"AND ABS(s.gross - a.{_q('settled_gross')}) < 0.005))"
    )
    state = (
        "CASE WHEN s.settled_lines = 0 THEN 'expected' "
        f"WHEN {same} THEN 'settled' "
        "WHEN ABS(s.gross) < 0.005 AND s.refund > 0 THEN 'refund_settled' "
        f"WHEN {accepted_here} THEN 'settled' "
        f"WHEN s.gross > o.{_q('amount')} THEN 'over_amount' "
        "WHEN s.gross > 0 AND s.refund > 0 THEN 'partially_refunded' "
        "ELSE 'amount_mismatch' END"
    )
    accepted = f"CASE WHEN {accepted_here} AND NOT ({same}) THEN %s ELSE %s END"
    names = ", ".join(
        _q(c)
        for c in (
            "order_id",
            "project_id",
            "state",
            "settled_gross",
            "settled_fee",
            "settled_net",
            "refund_settled",
            "unsettled_gross",
            "line_count",
            "difference_accepted",
        )
    )
    line_project = db_value(SettlementLine, "project", project.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {results} WHERE {_q('project_id')} = %s "  # noqa: S608
            + (f"AND {_q('order_id')} IN ({only.sql})" if only is not None else ""),
            [project_id, *subset_params],
        )
        cursor.execute(
            f"INSERT INTO {results} ({names}) "  # noqa: S608
            f"SELECT s.order_pk, %s, {state}, s.gross, s.fee, s.net, s.refund, s.unsettled, "
            f"s.line_count, {accepted} "
            f"FROM ({sums}) s JOIN {orders} o ON o.{_q('id')} = s.order_pk "
            f"LEFT JOIN {acceptances} a ON a.{_q('order_id')} = s.order_pk "
            f"AND a.{_q('undone_at')} IS NULL",
            [
                project_id,
                True,
                False,
                line_project,
                *(subset_params * 3),
                *subset_params,
            ],
        )
    if only is None:
        _analyze(OrderSettlement)
    return OrderSettlement.objects.filter(project=project, state__in=MISMATCH_STATES).count()


def after_settlement_change(*, project, cause: dict) -> None:
    """The stored settlement summary refreshed, and the book's version moved
    (Louis's decision shows it changed since he took it)."""
    from reconciliation.services import revenue
    from reconciliation.services.settlement.summary import refresh_summary

    refresh_summary(project=project)
    book_summary = revenue.recompute_summary(project=project, cause=cause)
    if book_summary is not None:
        # The streams' settled money follows (a whole rewrite, after commit).
        live.after_import(project=project, book_version=book_summary.version)


def after_book_change(*, project, reconciliation_import=None) -> None:
    """An order import or a tag changed the book: once the project has a
    settlement file, the summary follows (an amount that changed, an order
    no longer paid, a tag that makes it recognisable). An order import also
    moves the results of the orders it brought or changed, which may claim
    orphan lines; a tag moves no result (states read amounts, not tags)."""
    from reconciliation.services.settlement.summary import refresh_summary

    if not SettlementImport.objects.filter(project=project).exists():
        return
    if reconciliation_import is not None:
        touched = claims.touched_by(reconciliation_import)
        claims.claim_orphans(project=project, only=touched)
        rebuild_order_settlements(project=project, only=touched)
    refresh_summary(project=project)


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
