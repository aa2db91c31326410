"""The book's summary: kept up to date by every import (new and changed
versions added, the states they replace taken away) and every tagging
action, one version at a time by compare-and-set."""

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from reconciliation.bulk import quoted_columns, sql_frame
from reconciliation.errors import Conflict
from reconciliation.models import (
    BookSummary,
    Order,
    Project,
    ReconciliationImport,
)
from reconciliation.selectors.sync import is_source_request
from reconciliation.services import book, live

# --- The book's summary -------------------------------------------------------
from reconciliation.services.revenue.decision import _tell_louis_if_changed
from reconciliation.services.revenue.rules import (
    DIMENSIONS,
    EXCEPTION_LIST_LIMIT,
    METRICS,
    VERIFIED_IMPORT_STATUSES,
    ExceptionCode,
    export_rebuys,
    export_states,
    taipei_days,
)
from reconciliation.services.revenue.tally import (
    _ROW_FIELDS,
    _apply_difference,
    _apply_tags,
    _clean_totals,
    _exception_entry,
    _list_to_table,
    _missing_entries,
    _project_param,
    _table_to_list,
    _tagged_rows,
    _tally,
    _write,
    import_time_summary,
)


def _empty_base() -> dict:
    return import_time_summary(pd.DataFrame())


def _combine(base: dict, plus: pd.DataFrame, minus: pd.DataFrame) -> dict:
    """The export-only aggregates of the book after `plus` orders entered it
    and the `minus` states they replace left it (a weighted tally: +1, −1)."""
    frames = [f for f in (plus, minus) if f is not None and len(f)]
    if not frames:
        return base
    columns = [
        "amount",
        "source_event",
        "program_id",
        "discount_code",
        "created_at",
        "classification",
        "rebuy_of",
        "exception_code",
        "order_id",
        "row_number",
    ]
    both = pd.concat([f[columns] for f in frames], ignore_index=True)
    weight = np.concatenate(
        [np.ones(len(plus), np.int64), -np.ones(len(minus) if minus is not None else 0, np.int64)]
    )
    state = export_states(both["classification"], both["exception_code"])
    rebuy = export_rebuys(both["classification"], both["rebuy_of"])
    view = both[["amount", "source_event", "program_id", "discount_code"]].copy()
    view["day"] = taipei_days(both["created_at"]).astype(object)
    delta_totals, delta_dims = _tally(view, state, rebuy, weight)
    totals = {m: base["totals"].get(m, 0) + delta_totals.get(m, 0) for m in METRICS}
    dims = {}
    for field in DIMENSIONS:
        table = _list_to_table(base["dims"][field]).add(delta_dims[field], fill_value=0)
        dims[field] = _table_to_list(table, field)
    counts = dict(base["exception_counts"])
    codes_ = both["exception_code"].to_numpy(object)
    for code, n in pd.Series(weight)[codes_ != ""].groupby(codes_[codes_ != ""]).sum().items():
        counts[code] = counts.get(code, 0) + int(n)
    replaced = set(minus["order_id"].astype(str)) if minus is not None else set()
    entries = [e for e in base["exceptions"] if e["order_id"] not in replaced]
    flagged = plus[plus["exception_code"].to_numpy(object) != ""]
    entries += [
        _exception_entry(r.row_number, r.order_id, r.exception_code, r.amount, r.program_id)
        for r in flagged.head(EXCEPTION_LIST_LIMIT).itertuples(index=False)
    ]
    entries.sort(key=lambda e: (e["order_id"], e["code"]))
    return {
        "totals": _clean_totals(totals),
        "dims": dims,
        "exceptions": entries[:EXCEPTION_LIST_LIMIT],
        "exception_counts": {k: v for k, v in counts.items() if v > 0},
    }


def _current(project, base: dict) -> dict:
    """The book's aggregates with Huber's tags and the snapshot gaps."""
    tagged = _tagged_rows(project)
    current = base if tagged.empty else _apply_difference(base, _apply_tags(project, tagged))
    missing = book.missing_count(project)
    if missing:
        counts = dict(current["exception_counts"])
        counts[ExceptionCode.MISSING_FROM_SNAPSHOT.value] = missing
        listed = _missing_entries(book.missing_orders(project, limit=EXCEPTION_LIST_LIMIT))
        current = {
            **current,
            "exception_counts": counts,
            "exceptions": (current["exceptions"] + listed)[:EXCEPTION_LIST_LIMIT],
        }
    return current


def _book_status(project) -> str:
    """Failed only when no import of the project verified anything."""
    verified = ReconciliationImport.objects.filter(
        data_request__project=project, status__in=VERIFIED_IMPORT_STATUSES
    ).exists()
    return ReconciliationImport.Status.ACCEPTED if verified else ReconciliationImport.Status.FAILED


def _save_book(book_summary: BookSummary, base: dict, current: dict, **fields) -> int:
    """Write the book's summary and move its version forward by one,
    compare-and-set on the version read under the lock. Returns the new
    version."""
    version = book_summary.version
    _write(book_summary, base, current, import_status=_book_status(book_summary.project))
    changed = BookSummary.objects.filter(pk=book_summary.pk, version=version).update(
        version=version + 1,
        effective_status=book_summary.effective_status,
        totals=book_summary.totals,
        by_day=book_summary.by_day,
        by_source_event=book_summary.by_source_event,
        by_program=book_summary.by_program,
        by_discount_code=book_summary.by_discount_code,
        exceptions=book_summary.exceptions,
        exception_count=book_summary.exception_count,
        updated_at=timezone.now(),
        **fields,
    )
    if changed != 1:
        raise Conflict("book_moved", gettext("訂單簿剛被另一個動作更新，請重試。"))
    book_summary.version = version + 1
    return book_summary.version


def advance_book(
    *, book_summary: BookSummary, reconciliation_import: ReconciliationImport, versions, actor=None
) -> BookSummary:
    """The book's summary after an import moved the book (called inside the
    import's transaction, the book locked)."""
    base = book_summary.totals.get("import_time") or _empty_base()
    base = _combine(base, versions.incoming, versions.previous)
    # Repeats inside a file never enter the book; the book still counts
    # every repeated row its files had.
    base["totals"]["duplicate_rows"] = (
        base["totals"].get("duplicate_rows", 0) + reconciliation_import.duplicate_count
    )
    current = _current(book_summary.project, base)
    _save_book(book_summary, base, current, as_of_import=reconciliation_import)
    book_summary.as_of_import = reconciliation_import
    live.after_import(project=book_summary.project, book_version=book_summary.version)
    # A sync's change reaches Louis in the run's digest, not a second message.
    if not is_source_request(reconciliation_import.data_request_id):
        _tell_louis_if_changed(
            book_summary,
            cause={"kind": "import", "file_name": reconciliation_import.upload.original_name},
        )
    return book_summary


def recompute_summary(*, project: Project, cause: dict | None = None) -> BookSummary | None:
    """Bring the book's summary up to date with Huber's current tags. Call
    after every tagging action; cost grows with the number of tagged orders,
    not with the size of the book."""
    with transaction.atomic():
        book_summary = BookSummary.objects.select_for_update().filter(pk=project.pk).first()
        if book_summary is None:
            return None
        base = book_summary.totals.get("import_time") or _empty_base()
        _save_book(book_summary, base, _current(project, base))
        live.refresh_live_streams(
            project=project, book_version=book_summary.version, orders_changed=False
        )
        _tell_louis_if_changed(book_summary, cause=cause or {"kind": "tags", "count": 0})
    return book_summary


def rebuild_book_summary(*, project: Project) -> BookSummary:
    """The book's summary computed from every order of the book (after the
    migration that built the book, or to check the incremental one)."""
    with transaction.atomic():
        book_summary = book.lock(project)
        orders = sql_frame(
            f"SELECT {quoted_columns(Order, 'o', _ROW_FIELDS)} FROM "  # noqa: S608
            f"{connection.ops.quote_name(Order._meta.db_table)} o "
            f"WHERE o.{connection.ops.quote_name('project_id')} = %s",
            [_project_param(project)],
            _ROW_FIELDS,
        )
        base = _combine(_empty_base(), orders, None)
        latest = (
            ReconciliationImport.objects.filter(data_request__project=project)
            .order_by("-created_at", "-id")
            .first()
        )
        _save_book(book_summary, base, _current(project, base), as_of_import=latest)
        live.refresh_live_streams(
            project=project, book_version=book_summary.version, orders_changed=True
        )
    return book_summary
