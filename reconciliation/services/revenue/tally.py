"""The tally: vectorised sums of orders by state (np.bincount over integer
codes), the import-time summary of one file, and the difference Huber's tags
make — computed from the tagged orders only, so recomputing after every
tagging action stays cheap on a 1,000,000-order book."""

import numpy as np
import pandas as pd
from django.db import connection

from reconciliation.bulk import db_value, in_list, quoted_columns, sql_frame
from reconciliation.models import (
    ImportSummary,
    Order,
    OrderTag,
    Project,
    ReconciliationImport,
)
from reconciliation.services import book
from reconciliation.services.columns import codes
from reconciliation.services.revenue.rules import (
    _COUNTING,
    AMOUNT_METRICS,
    DIMENSIONS,
    EVIDENCE_RESOLVES,
    EXCEPTION_LIST_LIMIT,
    METRICS,
    Classification,
    ExceptionCode,
    State,
    Tag,
    exception_owner,
    export_rebuys,
    export_states,
    taipei_days,
)

# --- Tallies ----------------------------------------------------------------

_STATES = len(State)


def _tally(
    frame: pd.DataFrame,
    state: np.ndarray,
    rebuy: np.ndarray,
    weight: np.ndarray | int = 1,
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Metrics of rows (times `weight`, ±1 for a difference): the totals and
    one table per dimension, indexed by the dimension's value. Sums by
    np.bincount over integer codes: no per-row Python work."""
    amount = frame["amount"].to_numpy(np.float64)
    n = len(amount)
    weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), (n,))
    state = np.asarray(state, dtype=np.int64)
    counting = np.asarray(rebuy, dtype=bool) & np.isin(state, _COUNTING)
    rebuy_w = counting * weight
    rebuy_a = np.where(counting & (state == State.RECOGNISED), amount, 0.0) * weight

    def table(keys: np.ndarray, size: int) -> np.ndarray:
        """(size, metrics) matrix of sums per key."""
        slots = keys * _STATES + state
        rows = np.bincount(slots, weights=weight, minlength=size * _STATES).reshape(size, -1)
        money = np.bincount(slots, weights=amount * weight, minlength=size * _STATES).reshape(
            size, -1
        )
        live = [s for s in State if s != State.DUPLICATE]
        columns = {
            "orders": rows[:, live].sum(axis=1),
            "gmv": money[:, live].sum(axis=1),
            "paid_orders": rows[:, State.RECOGNISED],
            "paid_amount": money[:, State.RECOGNISED],
            "held_orders": rows[:, State.HELD],
            "held_amount": money[:, State.HELD],
            "pending_orders": rows[:, State.PENDING],
            "pending_amount": money[:, State.PENDING],
            "refunded_orders": rows[:, State.REFUNDED],
            "refunded_amount": money[:, State.REFUNDED],
            "duplicate_rows": rows[:, State.DUPLICATE],
            "rebuy_orders": np.bincount(keys, weights=rebuy_w, minlength=size),
            "rebuy_amount": np.bincount(keys, weights=rebuy_a, minlength=size),
        }
        return np.column_stack([columns[m] for m in METRICS])

    whole = table(np.zeros(n, dtype=np.int64), 1)[0]
    totals = dict(zip(METRICS, whole.tolist(), strict=True))
    dims = {}
    for field, column in DIMENSIONS.items():
        if column in frame:
            keys, labels = codes(frame[column])
        else:
            keys, labels = np.zeros(n, dtype=np.int64), [""]
        size = max(len(labels), 1)
        dims[field] = pd.DataFrame(
            table(keys, size)[: len(labels)], index=pd.Index(labels, dtype=object), columns=METRICS
        )
    return totals, dims


def _clean_number(name: str, value) -> float | int:
    if name in AMOUNT_METRICS:
        return round(float(value), 2)
    return int(round(float(value)))


def _clean_totals(totals: dict) -> dict:
    return {m: _clean_number(m, totals.get(m, 0)) for m in METRICS}


def _table_to_list(table: pd.DataFrame, field: str) -> list[dict]:
    rows = [
        {"key": str(key), **{m: _clean_number(m, row[m]) for m in METRICS}}
        for key, row in table.iterrows()
    ]
    rows = [r for r in rows if r["orders"] or r["duplicate_rows"]]
    if field == "by_day":
        rows.sort(key=lambda r: r["key"])
    else:
        rows.sort(key=lambda r: (-r["paid_amount"], -r["gmv"], r["key"]))
    return rows


def _list_to_table(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=list(METRICS), dtype=np.float64)
    table = pd.DataFrame(rows).set_index("key")
    return table.reindex(columns=list(METRICS), fill_value=0).astype(np.float64)


# --- Import-time summary -------------------------------------------------------


def import_time_summary(classified: pd.DataFrame) -> dict:
    """The aggregates of an import from the export alone. `classified` has the
    frame's columns plus classification, rebuy_of and exception_code."""
    if len(classified) == 0:
        return {
            "totals": _clean_totals({}),
            "dims": {field: [] for field in DIMENSIONS},
            "exceptions": [],
            "exception_counts": {},
        }
    state = export_states(classified["classification"], classified["exception_code"])
    rebuy = export_rebuys(classified["classification"], classified["rebuy_of"])
    view = classified[["amount", "source_event", "program_id", "discount_code"]].copy(deep=False)
    view["day"] = taipei_days(classified["created_at"])
    totals, dims = _tally(view, state, rebuy)
    flagged = classified.loc[
        classified["exception_code"] != "",
        ["row_number", "order_id", "exception_code", "amount", "program_id"],
    ]
    counts = flagged["exception_code"].value_counts().to_dict()
    exceptions = [
        _exception_entry(row_number, order_id, code, amount, program_id)
        for row_number, order_id, code, amount, program_id in flagged.sort_values("row_number")
        .head(EXCEPTION_LIST_LIMIT)[
            ["row_number", "order_id", "exception_code", "amount", "program_id"]
        ]
        .itertuples(index=False)
    ]
    return {
        "totals": _clean_totals(totals),
        "dims": {field: _table_to_list(table, field) for field, table in dims.items()},
        "exceptions": exceptions,
        "exception_counts": {str(k): int(v) for k, v in counts.items()},
    }


def _exception_entry(row_number, order_id, code, amount, program_id) -> dict:
    return {
        "row_number": int(row_number),
        "order_id": str(order_id),
        "code": str(code),
        "owner": exception_owner(str(code)),
        "amount": round(float(amount), 2),
        "program_id": str(program_id),
    }


def effective_status(import_status: str, exception_count: int) -> str:
    if import_status == ReconciliationImport.Status.FAILED:
        return ReconciliationImport.Status.FAILED
    if exception_count:
        return ReconciliationImport.Status.PARTIAL
    return ReconciliationImport.Status.ACCEPTED


def create_summary(
    *, reconciliation_import: ReconciliationImport, base: dict, book: dict | None = None
) -> ImportSummary:
    """The summary of this file alone, written with the import, and what the
    import did to the order book."""
    summary = ImportSummary(reconciliation_import=reconciliation_import, book=book or {})
    _write(summary, base, base, import_status=reconciliation_import.status)
    summary.save(force_insert=True)
    return summary


def _write(summary, base: dict, current: dict, *, import_status: str) -> None:
    counts = {k: v for k, v in current["exception_counts"].items() if v}
    exception_count = sum(counts.values())
    summary.totals = {
        **current["totals"],
        "exception_counts": counts,
        "exceptions_by_owner": _by_owner(counts),
        "import_time": base,
    }
    for field in DIMENSIONS:
        setattr(summary, field, current["dims"][field])
    summary.exceptions = current["exceptions"]
    summary.exception_count = exception_count
    summary.effective_status = effective_status(import_status, exception_count)


def _by_owner(counts: dict) -> dict:
    owners: dict[str, int] = {}
    for code, n in counts.items():
        owners[exception_owner(code)] = owners.get(exception_owner(code), 0) + n
    return owners


# --- Evidence tags --------------------------------------------------------------

_ROW_FIELDS = (
    "id",
    "row_number",
    "order_id",
    "created_at",
    "customer_key",
    "program_id",
    "amount",
    "source_event",
    "discount_code",
    "classification",
    "rebuy_of",
    "exception_code",
)


def _rows_frame(records, fields=_ROW_FIELDS) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(records), columns=list(fields))
    if "amount" in frame:
        frame["amount"] = frame["amount"].astype(np.float64)
    # SQLite hands back text, PostgreSQL aware datetimes: parsed as a column,
    # not one Django converter call per row.
    frame["created_at"] = pd.to_datetime(
        frame["created_at"], utc=True, format="ISO8601", cache=False
    )
    return frame


# The book is read with plain SQL: these reads run after every tagging action
# and the ORM's per-value converters cost more than the query on 28,000+ rows.


def _project_param(project) -> object:
    return db_value(Order, "project", project.pk)


def _tagged_rows(project) -> pd.DataFrame:
    """The book's tagged orders with their current tag."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quoted_columns(Order, 'o', _ROW_FIELDS)}, t.{quote('tag')} "  # noqa: S608 - our names
        f"FROM {quote(OrderTag._meta.db_table)} t "
        f"JOIN {quote(Order._meta.db_table)} o ON o.{quote('id')} = t.{quote('order_id')} "
        f"WHERE t.{quote('project_id')} = %s"
    )
    return sql_frame(sql, [_project_param(project)], (*_ROW_FIELDS, "tag"))


_CANDIDATE_FIELDS = ("id", "customer_key", "program_id", "created_at", "classification")


def _rebuy_candidates(project, tagged: pd.DataFrame) -> pd.DataFrame:
    """The book's orders of the customers and programmes a rebuy-relevant tag
    names: one scan of those programmes' orders (programme index), handing
    back only the matching customers' orders."""
    relevant = tagged[tagged["tag"].isin([Tag.REBOUGHT, Tag.REFUNDED])]
    if relevant.empty:
        return _rows_frame([], _CANDIDATE_FIELDS)
    quote = connection.ops.quote_name
    programmes, programme_values = in_list(
        f"o.{quote('program_id')}", sorted(set(relevant["program_id"]))
    )
    customers, customer_values = in_list(
        f"o.{quote('customer_key')}", sorted(set(relevant["customer_key"]))
    )
    sql = (
        f"SELECT {quoted_columns(Order, 'o', _CANDIDATE_FIELDS)} "  # noqa: S608 - our names
        f"FROM {quote(Order._meta.db_table)} o "
        f"WHERE o.{quote('project_id')} = %s AND {programmes} AND {customers}"
    )
    return sql_frame(
        sql, [_project_param(project), programme_values, customer_values], _CANDIDATE_FIELDS
    )


def _neighbours(
    tagged: pd.DataFrame, candidates: pd.DataFrame, *, direction: str, paid_only: bool
) -> pd.Series:
    """For each tagged row, the id of the nearest other order of the same
    customer and programme later (forward) or earlier (backward) in time."""
    result = pd.Series(np.nan, index=tagged.index)
    pool = candidates
    if paid_only:
        pool = pool[pool["classification"] == Classification.PAID]
    if tagged.empty or pool.empty:
        return result
    left = tagged[["created_at", "customer_key", "program_id"]].copy()
    left["_pos"] = np.arange(len(left))
    left = left.sort_values("created_at", kind="stable")
    right = pool[["created_at", "customer_key", "program_id", "id"]].rename(
        columns={"id": "match_id"}
    )
    right = right.sort_values("created_at", kind="stable")
    merged = pd.merge_asof(
        left,
        right,
        on="created_at",
        by=["customer_key", "program_id"],
        direction=direction,
        allow_exact_matches=False,
    )
    merged = merged.sort_values("_pos")
    result[:] = merged["match_id"].to_numpy(dtype=np.float64)
    return result


def _apply_tags(project, tagged: pd.DataFrame) -> pd.DataFrame:
    """The rows whose state evidence changes: tagged rows plus the rows a
    rebuy tag links to. Columns: the row fields, base/eff state, base/eff
    rebuy, export exception kept or cleared, tag exception."""
    cls = tagged["classification"].to_numpy(object)
    tag = tagged["tag"].to_numpy(object)
    bexc = tagged["exception_code"].to_numpy(object)
    base_state = export_states(tagged["classification"], tagged["exception_code"])
    base_rebuy = export_rebuys(tagged["classification"], tagged["rebuy_of"])
    dup = cls == Classification.DUPLICATE
    paid = cls == Classification.PAID

    # A tag is evidence: it settles the exceptions evidence can settle.
    export_exc = np.where(np.isin(bexc, list(EVIDENCE_RESOLVES)) & ~dup, "", bexc)
    data_blocked = export_exc != ""
    paid_state = np.where(data_blocked, State.HELD, State.RECOGNISED)

    candidates = _rebuy_candidates(project, tagged)
    later_paid = _neighbours(tagged, candidates, direction="forward", paid_only=True)
    earlier = _neighbours(tagged, candidates, direction="backward", paid_only=False)
    rebought = tag == Tag.REBOUGHT
    original = rebought & later_paid.notna().to_numpy()
    rebuy_new = rebought & ~original & paid & earlier.notna().to_numpy()
    unmatched = rebought & ~original & ~rebuy_new

    held_or_base = np.where(paid, State.HELD, base_state)
    state = np.select(
        [
            dup,
            tag == Tag.REFUNDED,
            (tag == Tag.PAID) & paid,
            tag == Tag.PAID,
            tag == Tag.UNRESOLVED,
            original,
            rebuy_new,
            unmatched,
        ],
        [
            State.DUPLICATE,
            State.REFUNDED,
            paid_state,
            State.HELD,
            held_or_base,
            State.REFUNDED,
            paid_state,
            held_or_base,
        ],
        default=base_state,
    ).astype(np.int8)
    tag_exc = np.select(
        [
            dup,
            (tag == Tag.PAID) & ~paid,
            tag == Tag.UNRESOLVED,
            unmatched,
        ],
        [
            "",
            ExceptionCode.TAG_CONFLICT.value,
            ExceptionCode.UNRESOLVED.value,
            ExceptionCode.REBUY_UNMATCHED.value,
        ],
        default="",
    )
    eff_rebuy = (base_rebuy | rebuy_new) & np.isin(state, _COUNTING)

    affected = tagged.assign(
        base_state=base_state,
        state=state,
        base_rebuy=base_rebuy,
        rebuy=eff_rebuy,
        export_exc=export_exc,
        tag_exc=tag_exc,
    )

    # Rows the tags link to (only untagged ones: a row's own tag wins).
    tagged_ids = set(tagged["id"])
    becomes_rebuy = later_paid[(original | (tag == Tag.REFUNDED)) & ~dup].dropna().astype(np.int64)
    replaced = earlier[rebuy_new].dropna().astype(np.int64)
    link_ids = (set(becomes_rebuy) | set(replaced)) - tagged_ids
    if link_ids:
        linked = _fetch_rows(link_ids)
        linked["tag"] = ""
        l_base = export_states(linked["classification"], linked["exception_code"])
        l_rebuy = export_rebuys(linked["classification"], linked["rebuy_of"])
        is_replaced = linked["id"].isin(set(replaced)).to_numpy()
        is_rebuy = linked["id"].isin(set(becomes_rebuy)).to_numpy()
        l_state = np.where(is_replaced & np.isin(l_base, _COUNTING), State.REFUNDED, l_base)
        l_exc = linked["exception_code"].to_numpy(object)
        l_exc = np.where(is_replaced & np.isin(l_exc, list(EVIDENCE_RESOLVES)), "", l_exc)
        linked = linked.assign(
            base_state=l_base,
            state=l_state.astype(np.int8),
            base_rebuy=l_rebuy,
            rebuy=(l_rebuy | (is_rebuy & ~is_replaced)) & np.isin(l_state, _COUNTING),
            export_exc=l_exc,
            tag_exc="",
        )
        affected = pd.concat([affected, linked], ignore_index=True)
    return affected


def _fetch_rows(ids) -> pd.DataFrame:
    quote = connection.ops.quote_name
    condition, values = in_list(f"o.{quote('id')}", sorted(int(i) for i in ids))
    sql = (
        f"SELECT {quoted_columns(Order, 'o', _ROW_FIELDS)} "  # noqa: S608 - our names
        f"FROM {quote(Order._meta.db_table)} o WHERE {condition}"
    )
    return sql_frame(sql, [values], _ROW_FIELDS)


def _apply_difference(base: dict, affected: pd.DataFrame) -> dict:
    view = affected[["amount", "source_event", "program_id", "discount_code"]].copy()
    view["day"] = taipei_days(affected["created_at"]).astype(object)
    both = pd.concat([view, view], ignore_index=True)
    state = np.concatenate([affected["state"].to_numpy(np.int8), affected["base_state"]])
    rebuy = np.concatenate([affected["rebuy"].to_numpy(bool), affected["base_rebuy"]])
    weight = np.concatenate([np.ones(len(view), np.int64), -np.ones(len(view), np.int64)])
    delta_totals, delta_dims = _tally(both, state.astype(np.int8), rebuy.astype(bool), weight)

    totals = {m: base["totals"].get(m, 0) + delta_totals.get(m, 0) for m in METRICS}
    dims = {}
    for field in DIMENSIONS:
        table = _list_to_table(base["dims"][field]).add(delta_dims[field], fill_value=0)
        dims[field] = _table_to_list(table, field)

    # Exceptions: the import-time list and counts, minus what evidence
    # settled, plus what evidence raised.
    counts = dict(base["exception_counts"])
    settled = affected["exception_code"].to_numpy(object)
    kept = affected["export_exc"].to_numpy(object)
    raised = affected["tag_exc"].to_numpy(object)
    for found, sign in ((settled, -1), (kept, 1), (raised, 1)):
        for code, n in pd.Series(found)[pd.Series(found) != ""].value_counts().items():
            counts[code] = counts.get(code, 0) + sign * int(n)
    dropped = set(affected.loc[(settled != "") & (kept == ""), "order_id"].astype(str))
    entries = [e for e in base["exceptions"] if e["order_id"] not in dropped]
    new = affected[raised != ""].sort_values("row_number").head(EXCEPTION_LIST_LIMIT)
    entries += [
        _exception_entry(r.row_number, r.order_id, r.tag_exc, r.amount, r.program_id)
        for r in new.itertuples(index=False)
    ]
    entries.sort(key=lambda e: (e["order_id"], e["code"]))
    return {
        "totals": _clean_totals(totals),
        "dims": dims,
        "exceptions": entries[:EXCEPTION_LIST_LIMIT],
        "exception_counts": {k: v for k, v in counts.items() if v > 0},
    }


def open_exceptions(*, project: Project) -> list[dict]:
    """Every open exception of the book, not only the first
    EXCEPTION_LIST_LIMIT the summary keeps (for exports): the export's
    exceptions evidence has not settled, those evidence raised, and the
    orders a snapshot lacked."""
    records = (
        Order.objects.filter(project=project)
        .exclude(exception_code="")
        .values_list("id", "row_number", "order_id", "exception_code", "amount", "program_id")
    )
    tagged = _tagged_rows(project)
    settled: set[int] = set()
    entries = []
    if not tagged.empty:
        affected = _apply_tags(project, tagged)
        cleared = (affected["exception_code"] != "") & (affected["export_exc"] == "")
        settled = set(affected.loc[cleared, "id"].astype(int))
        entries = [
            _exception_entry(r.row_number, r.order_id, r.tag_exc, r.amount, r.program_id)
            for r in affected[affected["tag_exc"] != ""].itertuples(index=False)
        ]
    entries += [
        _exception_entry(row_number, order_id, code, amount, program_id)
        for row_id, row_number, order_id, code, amount, program_id in records.iterator()
        if row_id not in settled
    ]
    entries += _missing_entries(book.missing_orders(project))
    entries.sort(key=lambda e: (e["order_id"], e["code"]))
    return entries


def _missing_entries(missing: pd.DataFrame) -> list[dict]:
    return [
        _exception_entry(
            r.row_number, r.order_id, ExceptionCode.MISSING_FROM_SNAPSHOT, r.amount, r.program_id
        )
        for r in missing.itertuples(index=False)
    ]
