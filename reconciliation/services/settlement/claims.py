"""Orphan lines claimed by orders that arrived later. A settlement line is
append-only: an orphan keeps its stored state and no order id even when a
later order import brings the order carrying its payment_ref. Matching
derives the link instead (SettlementClaim), with the same reference key the
settlement import matches on (trimmed, case-folded):

1. The claims of the orders the import touched are dropped (a changed order
   may no longer carry the reference).
2. The orphan lines without a claim and without a live manual match are
   looked up among the touched orders' references; each found line is
   claimed by the first such order (earliest created_at, then order_id),
   as on arrival.

Untouched orders cannot gain or lose a claim: an order only newly carries a
reference when it is new or changed."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from django.db.models.expressions import RawSQL

from reconciliation.bulk import db_value, sql_frame
from reconciliation.bulk import q as _q
from reconciliation.models import (
    Order,
    OrderRow,
    SettlementClaim,
    SettlementLine,
    SettlementMatch,
)
from reconciliation.services.columns import arrow_text


@dataclass(frozen=True)
class OrderSubset:
    """Some orders of a project, as SQL selecting their ids (for `IN (…)`)."""

    sql: str
    params: list


def touched_by(project, reconciliation_import) -> OrderSubset:
    """The orders an order import brought or changed: their current version
    is one of the import's rows (an unchanged order keeps its older one).
    The import's rows carry the highest row ids of the project (its imports
    apply one at a time, under the book's lock), so "one of the import's
    rows" is "at least its first row's id". Walks the import's rows and the
    book's (project, order_id) index."""
    orders, rows = _q(Order._meta.db_table), _q(OrderRow._meta.db_table)
    import_db = db_value(OrderRow, "reconciliation_import", reconciliation_import.pk)
    in_import = f"FROM {rows} r WHERE r.{_q('reconciliation_import_id')} = %s"
    return OrderSubset(
        sql=(
            f"SELECT o.{_q('id')} FROM {orders} o "  # noqa: S608 - fixed names
            f"WHERE o.{_q('project_id')} = %s "
            f"AND o.{_q('order_id')} IN (SELECT r.{_q('order_id')} {in_import}) "
            f"AND o.{_q('current_row_id')} >= (SELECT MIN(r.{_q('id')}) {in_import})"
        ),
        params=[db_value(Order, "project", project.pk), import_db, import_db],
    )


def one_order(order) -> OrderSubset:
    return OrderSubset(
        sql=f"SELECT {_q('id')} FROM {_q(Order._meta.db_table)} WHERE {_q('id')} = %s",  # noqa: S608
        params=[order.pk],
    )


def reference_key(values) -> np.ndarray:
    """The matching key of payment references: trimmed, case-folded."""
    return pc.utf8_lower(pc.utf8_trim_whitespace(arrow_text(values))).to_numpy(zero_copy_only=False)


def book_references(project, only: OrderSubset | None = None) -> pd.Series:
    """{payment_ref key: Order id} of the book, or of `only` of its orders.
    When two orders carry the same reference the earliest created (then the
    smaller order_id) has it: a rule of the data, not of the row ids, which
    SQLite and PostgreSQL hand out in different orders for one file."""
    sql = (
        f"SELECT {_q('id')}, {_q('payment_ref')} FROM {_q(Order._meta.db_table)} "  # noqa: S608
        f"WHERE {_q('project_id')} = %s AND {_q('payment_ref')} <> ''"
    )
    params = [db_value(Order, "project", project.pk)]
    if only is not None:
        sql += f" AND {_q('id')} IN ({only.sql})"
        params += only.params
    order = f" ORDER BY {_q('created_at')}, {_q('order_id')}"
    frame = sql_frame(sql + order, params, ["id", "payment_ref"])
    index = pd.Index(reference_key(frame["payment_ref"]))
    first = ~index.duplicated()
    return pd.Series(frame["id"].to_numpy(np.int64)[first], index=index[first])


def unplaced_orphans(project):
    """Orphan lines counted for no order: no claim, no live manual match."""
    live = SettlementMatch.objects.filter(undone_at__isnull=True).values("line_id")
    return SettlementLine.objects.filter(
        project=project, line_state=SettlementLine.State.ORPHAN, claim__isnull=True
    ).exclude(pk__in=live)


def claim_orphans(
    *, project, only: OrderSubset | None = None, references: pd.Series | None = None
) -> int:
    """Rewrite the claims of `only` (every order when None) from the book
    (`references`: the book's, when the caller has read them already);
    returns how many lines they claim now (see the module docstring)."""
    claims = SettlementClaim.objects.filter(project=project)
    if only is not None:
        # The subset SQL is built from fixed names here, never from input.
        claims = claims.filter(order_id__in=RawSQL(only.sql, only.params))  # noqa: S611
    claims.delete()
    orphans = list(unplaced_orphans(project).values_list("id", "ref_key"))
    if not orphans:
        return 0
    if references is None:
        references = book_references(project, only)
    if references.empty:
        return 0
    line_ids = np.array([line_id for line_id, _key in orphans], dtype=np.int64)
    position = references.index.get_indexer(reference_key(pd.Series([k for _i, k in orphans])))
    found = position >= 0
    order_ids = references.to_numpy()[position[found]]
    SettlementClaim.objects.bulk_create(
        SettlementClaim(line_id=int(line), project=project, order_id=int(order))
        for line, order in zip(line_ids[found], order_ids, strict=True)
    )
    return int(found.sum())
