"""The order book: one current state per (project, order_id), fed by every
accepted import of the project in import order.

A file's row for an order is, against the book:

    new        the order is not in the book yet: it enters with this version
    changed    the order is in the book with other field values (pending→paid,
               paid→refunded, 28000→26000, …): this version replaces it, the
               order's tag (if any) is marked stale for Huber
    unchanged  the same values: the book keeps the version it has
    duplicate  a repeat inside the file (classified before the book is asked)

A snapshot lists the book's orders the file does not have as
`missing_from_snapshot` (owner Wade); they stay in the book as they were.

The steps run inside the import's transaction, after `lock` took the
project's BookSummary row: imports of one project apply one at a time, and
the version compare-and-set in services.revenue is the second guarantee.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction

from reconciliation.bulk import (
    TRACKED_CHANGES,
    analyze_table,
    db_value,
    in_list,
    quoted_columns,
    sql_frame,
)
from reconciliation.bulk import (
    q as _q,
)
from reconciliation.models import (
    BookSummary,
    Order,
    OrderRow,
    OrderTag,
    Project,
    ReconciliationImport,
    Upload,
)
from reconciliation.services.columns import arrow_text

Classification = OrderRow.Classification

# The fields an Order copies from its current version (OrderRow).
COPIED = (
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
    "fingerprint",
)
# The fields of an order the revenue tally and the change record read.
STATE_FIELDS = (
    "id",
    "row_number",
    "order_id",
    "created_at",
    "customer_key",
    "program_id",
    "amount",
    "payment_status",
    "payment_ref",
    "source_event",
    "discount_code",
    "owner_note",
    "classification",
    "rebuy_of",
    "exception_code",
)
CHANGE_EXAMPLES = 50
# A file with fewer orders than 1/8 of the book's reads only its own orders
# (and customers) from the book; a bigger one reads the book whole, which
# is then cheaper than a long id list.
SELECTIVE_READ_FACTOR = 8
# The book's statistics are refreshed when an import adds more than 1/10 of it.
GROWTH_TO_ANALYZE = 10


@dataclass
class Versions:
    """What a classified file is against the book, before anything is written."""

    new_orders: int = 0
    changed_orders: int = 0
    unchanged_orders: int = 0
    # Orders in the book before this file, and how many of them are
    # currently listed as missing from a snapshot.
    book_orders: int = 0
    book_missing: int = 0
    changed_ids: list = field(default_factory=list)
    # The file's rows that enter the book (new and changed), and the book's
    # states they replace (changed only): the revenue tally adds the first
    # and takes away the second.
    incoming: pd.DataFrame | None = None
    previous: pd.DataFrame | None = None
    changes: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)


def lock(project: Project) -> BookSummary:
    """The project's BookSummary, locked until the transaction ends."""
    assert transaction.get_connection().in_atomic_block
    BookSummary.objects.get_or_create(
        project=project, defaults={"effective_status": ReconciliationImport.Status.ACCEPTED}
    )
    return BookSummary.objects.select_for_update().get(pk=project.pk)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def order_count(project: Project) -> int:
    return Order.objects.filter(project=project).count()


def _reads_only_the_file(rows: int, book_orders: int) -> bool:
    """Whether a file is small beside the book (a daily sync, a top-up): then
    the book is read for the file's orders and customers only, not whole."""
    return rows * SELECTIVE_READ_FACTOR < book_orders


def refunded_orders(
    project: Project, frame: pd.DataFrame | None = None, *, book_orders: int | None = None
) -> pd.DataFrame:
    """The book's refunded orders (a later paid order of the same customer
    and programme re-buys one of them) — of the frame's customers only when
    the frame is small beside the book."""
    columns = ("order_id", "classification", "amount", "customer_key", "program_id", "created_at")
    sql = (
        f"SELECT {quoted_columns(Order, 'o', columns)} FROM {_table(Order)} o "  # noqa: S608
        # The class written out, not a parameter: SQLite uses the partial
        # index of refunded orders only when it can see the condition.
        f"WHERE o.{_q('project_id')} = %s AND o.{_q('classification')} = "
        f"'{Classification.REFUNDED.value}'"
    )
    params = [db_value(Order, "project", project.pk)]
    if book_orders is None:
        book_orders = order_count(project)
    if frame is not None and _reads_only_the_file(len(frame), book_orders):
        condition, values = in_list(f"o.{_q('customer_key')}", _distinct(frame["customer_key"]))
        sql += f" AND {condition}"
        params.append(values)
    return sql_frame(sql, params, columns)


def _distinct(values) -> list[str]:
    return pc.unique(arrow_text(values)).to_pylist()


def compare(project: Project, frame: pd.DataFrame, *, book_orders: int | None = None) -> Versions:
    """Sort a classified frame (with its `fingerprint` column) into new,
    changed and unchanged orders against the book."""
    first = frame[frame["classification"].to_numpy(object) != Classification.DUPLICATE]
    ids = arrow_text(first["order_id"])
    sql = (
        f"SELECT {_q('order_id')}, {_q('fingerprint')}, "  # noqa: S608
        f"{_q('missing_import_id')} IS NOT NULL FROM {_table(Order)} "
        f"WHERE {_q('project_id')} = %s"
    )
    params = [db_value(Order, "project", project.pk)]
    if book_orders is None:
        book_orders = order_count(project)
    if _reads_only_the_file(len(first), book_orders):
        condition, values = in_list(_q("order_id"), ids.to_pylist())
        sql += f" AND {condition}"
        params.append(values)
    book = sql_frame(sql, params, ("order_id", "fingerprint", "missing"))
    if not book_orders:
        return Versions(new_orders=len(first), incoming=first, previous=first.iloc[:0])
    # Of the book's orders missing from an earlier snapshot, those this file has.
    book_missing = int(book["missing"].astype(bool).sum())
    position = pc.index_in(ids, value_set=pa.array(book["order_id"].tolist(), pa.string()))
    known = np.asarray(pc.is_valid(position).to_numpy(zero_copy_only=False), dtype=bool)
    where = pc.fill_null(position, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    # Read for the file's orders only, the book may have none of them (a new
    # day's file): every order is then new, and there is nothing to index.
    stored = book["fingerprint"].to_numpy()[where] if len(book) else np.full(len(first), None)
    # A book state without a fingerprint (imported before the book) compares
    # as changed: its fields are read and compared below.
    changed = known & ~(pd.Series(stored).eq(first["fingerprint"].to_numpy()).to_numpy())
    incoming = first[~known | changed]
    changed_rows = first[changed]
    previous = _states(project, changed_rows["order_id"].tolist())
    versions = Versions(
        new_orders=int((~known).sum()),
        changed_orders=int(changed.sum()),
        unchanged_orders=int((known & ~changed).sum()),
        book_orders=book_orders,
        book_missing=book_missing,
        changed_ids=changed_rows["order_id"].tolist(),
        incoming=incoming,
        previous=previous,
    )
    versions.changes, versions.examples = _describe_changes(previous, changed_rows)
    return versions


def _states(project: Project, order_ids: list) -> pd.DataFrame:
    """The book's current states of these orders."""
    if not order_ids:
        return pd.DataFrame(columns=list(STATE_FIELDS))
    condition, values = in_list(f"o.{_q('order_id')}", order_ids)
    sql = (
        f"SELECT {quoted_columns(Order, 'o', STATE_FIELDS)} FROM {_table(Order)} o "  # noqa: S608
        f"WHERE o.{_q('project_id')} = %s AND {condition}"
    )
    return sql_frame(sql, [db_value(Order, "project", project.pk), values], STATE_FIELDS)


def _describe_changes(previous: pd.DataFrame, current: pd.DataFrame) -> tuple[dict, list]:
    """Counts of what changed (status transitions, amounts, other fields) and
    the first few changes in full."""
    if previous.empty:
        return {}, []
    before = previous.set_index("order_id")
    after = current.drop_duplicates("order_id").set_index("order_id").reindex(before.index)
    changes: dict[str, int] = {}
    status_changed = before["payment_status"].to_numpy(object) != after["payment_status"].to_numpy(
        object
    )
    transitions = (
        pd.Series(before["payment_status"].astype(str) + "→" + after["payment_status"].astype(str))
        .loc[status_changed]
        .value_counts()
    )
    for transition, n in transitions.items():
        changes[f"payment_status:{transition}"] = int(n)
    amount_changed = ~np.isclose(
        before["amount"].to_numpy(np.float64), after["amount"].to_numpy(np.float64)
    )
    if amount_changed.any():
        changes["amount"] = int(amount_changed.sum())
    other = ~(status_changed | amount_changed)
    if other.any():
        changes["other"] = int(other.sum())
    examples = []
    for order_id in before.index[:CHANGE_EXAMPLES]:
        old, new = before.loc[order_id], after.loc[order_id]
        fields = {}
        for name in (
            *TRACKED_CHANGES,
            "payment_ref",
            "program_id",
            "source_event",
            "discount_code",
        ):
            a, b = old[name], new[name]
            if name == "amount":
                a, b = round(float(a), 2), round(float(b), 2)
                if a == b:
                    continue
            elif str(a) == str(b):
                continue
            fields[name] = [a if name == "amount" else str(a), b if name == "amount" else str(b)]
        examples.append({"order_id": str(order_id), "fields": fields})
    return changes, examples


def apply(
    *, project: Project, reconciliation_import: ReconciliationImport, versions: Versions, mode: str
) -> dict:
    """Write the import's new and changed versions into the book (SQL over
    the rows just inserted, no Python per row), mark changed orders' tags
    stale, and for a snapshot list the orders it lacks. Returns the import's
    `book` record."""
    project_db = db_value(Order, "project", project.pk)
    import_db = db_value(OrderRow, "reconciliation_import", reconciliation_import.pk)
    rows, orders = _table(OrderRow), _table(Order)
    copied = ", ".join(_q(f) for f in COPIED)
    with connection.cursor() as cursor:
        if versions.new_orders:
            absent = (
                ""
                if not versions.changed_orders and not versions.unchanged_orders
                else f"AND NOT EXISTS (SELECT 1 FROM {orders} o WHERE o.{_q('project_id')} = %s "  # noqa: S608
                f"AND o.{_q('order_id')} = r.{_q('order_id')})"
            )
            cursor.execute(
                f"INSERT INTO {orders} ({_q('project_id')}, {_q('current_row_id')}, "  # noqa: S608
                f"{_q('versions')}, {copied}) "
                f"SELECT %s, r.{_q('id')}, 1, "
                + ", ".join(f"r.{_q(f)}" for f in COPIED)
                + f" FROM {rows} r WHERE r.{_q('reconciliation_import_id')} = %s "
                f"AND r.{_q('classification')} <> %s {absent}",
                [project_db, import_db, Classification.DUPLICATE.value]
                + ([project_db] if absent else []),
            )
        if versions.changed_orders:
            condition, values = in_list(f"r.{_q('order_id')}", versions.changed_ids)
            assignments = ", ".join(f"{_q(f)} = r.{_q(f)}" for f in COPIED if f != "order_id")
            cursor.execute(
                f"UPDATE {orders} SET {assignments}, {_q('current_row_id')} = r.{_q('id')}, "  # noqa: S608
                f"{_q('changed_import_id')} = %s, "
                f"{_q('versions')} = {orders}.{_q('versions')} + 1 "
                f"FROM {rows} r WHERE r.{_q('reconciliation_import_id')} = %s AND {condition} "
                f"AND r.{_q('classification')} <> %s AND {orders}.{_q('project_id')} = %s "
                f"AND {orders}.{_q('order_id')} = r.{_q('order_id')}",
                [
                    import_db,
                    import_db,
                    values,
                    Classification.DUPLICATE.value,
                    project_db,
                ],
            )
            if cursor.rowcount != versions.changed_orders:
                raise RuntimeError(
                    f"book moved under the import: {cursor.rowcount} of "
                    f"{versions.changed_orders} changed orders updated"
                )
            # By the changed orders' ids (the book's unique index), not by a
            # scan of every order for this import.
            condition, values = in_list(f"o.{_q('order_id')}", versions.changed_ids)
            cursor.execute(
                f"UPDATE {_table(OrderTag)} SET {_q('stale')} = %s "  # noqa: S608
                f"WHERE {_q('order_id')} IN (SELECT o.{_q('id')} FROM {orders} o "
                f"WHERE o.{_q('project_id')} = %s AND {condition})",
                [True, project_db, values],
            )
        in_file = (
            f"EXISTS (SELECT 1 FROM {rows} r WHERE r.{_q('reconciliation_import_id')} = %s "  # noqa: S608
            f"AND r.{_q('order_id')} = {orders}.{_q('order_id')})"
        )
        if versions.book_missing:
            cursor.execute(
                f"UPDATE {orders} SET {_q('missing_import_id')} = NULL "  # noqa: S608
                f"WHERE {_q('project_id')} = %s AND {_q('missing_import_id')} IS NOT NULL "
                f"AND {in_file}",
                [project_db, import_db],
            )
        newly_missing = 0
        present = versions.changed_orders + versions.unchanged_orders
        # A snapshot that has every order the book had lacks none: no scan.
        if mode == Upload.Mode.SNAPSHOT and present < versions.book_orders:
            cursor.execute(
                f"UPDATE {orders} SET {_q('missing_import_id')} = %s "  # noqa: S608
                f"WHERE {_q('project_id')} = %s AND NOT {in_file}",
                [import_db, project_db, import_db],
            )
            newly_missing = cursor.rowcount
    if versions.new_orders * GROWTH_TO_ANALYZE > versions.book_orders:
        # The book grew by a large share: without fresh statistics the
        # evidence queue sorts the whole book instead of walking an index.
        analyze_table(Order)
        analyze_table(OrderRow)
    return {
        "mode": mode,
        "new_orders": versions.new_orders,
        "changed_orders": versions.changed_orders,
        "unchanged_orders": versions.unchanged_orders,
        "missing_from_snapshot": newly_missing,
        "changes": versions.changes,
        "examples": versions.examples,
    }


def missing_orders(project: Project, *, limit: int | None = None) -> pd.DataFrame:
    """The book's orders the latest snapshot that should have had them lacked."""
    sql = (
        f"SELECT {quoted_columns(Order, 'o', ('order_id', 'amount', 'program_id', 'row_number'))} "  # noqa: S608
        f"FROM {_table(Order)} o WHERE o.{_q('project_id')} = %s "
        f"AND o.{_q('missing_import_id')} IS NOT NULL ORDER BY o.{_q('id')}"
        + (f" LIMIT {int(limit)}" if limit else "")
    )
    return sql_frame(
        sql,
        [db_value(Order, "project", project.pk)],
        ("order_id", "amount", "program_id", "row_number"),
    )


def missing_count(project: Project) -> int:
    return Order.objects.filter(project=project, missing_import__isnull=False).count()
