"""Revenue rules (SPEC §5, seed test D) — the one place they live.

Every imported row ends in one revenue *state*:

    recognised  a paid row, not a duplicate, nothing blocking it: verified paid revenue
    held        a paid row (or a row Huber's evidence calls paid) with an open exception:
                recognition is blocked for this row only (the import is `partial`)
    pending     never counts
    refunded    never counts (also a refunded-then-rebought original: the money
                counts once, on the new paid order)
    duplicate   a repeat of an order seen earlier; counts only as a duplicate

The state comes from the export (the row's classification and exception code,
fixed at import time) and then from Huber's evidence tag (OrderTag, the newest
OrderEvidence):

    refunded    removes the order from recognisable revenue
    paid        confirms a paid row (and clears an evidence exception on it); on a row
                the export calls refunded or pending it contradicts the export:
                held, exception `tag_conflict` owned by Louis
    unresolved  holds the order back (exception `unresolved`, owner Huber)
    rebought    links a refund to the later paid order so it counts once: with a
                later paid order of the same customer and programme the tagged
                order is the refunded original (refunded, the later one is the
                rebuy); otherwise a paid tagged order with an earlier order of the
                same customer and programme is the rebuy and that earlier order is
                the refunded original; with neither, exception `rebuy_unmatched`

Aggregates are computed in two layers so that re-computing after every tagging
action stays cheap on a 1,000,000-row import: the import-time aggregates (the
export alone) are computed once in pandas and kept in ImportSummary.totals
["import_time"]; `recompute_summary` reads only the tagged rows (and the rows a
rebuy tag links to), computes their change of state and adds the difference.
"""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reconciliation.bulk import db_value, in_list, quoted_columns, sql_frame
from reconciliation.errors import Conflict, Forbidden, InvalidInput
from reconciliation.models import (
    AuditEvent,
    BookSummary,
    ImportSummary,
    Order,
    OrderEvidence,
    OrderRow,
    OrderTag,
    Project,
    ReconciliationImport,
    RevenueDecision,
)
from reconciliation.permissions import Action, Role, can
from reconciliation.services import book
from reconciliation.services.audit import record_audit
from reconciliation.services.columns import codes, utc_naive
from reconciliation.services.profiles import profile_for

Classification = OrderRow.Classification
Tag = OrderEvidence.Tag

# Imports whose numbers are verified (a failed import verifies nothing).
VERIFIED_IMPORT_STATUSES = (
    ReconciliationImport.Status.ACCEPTED,
    ReconciliationImport.Status.PARTIAL,
)
EXCEPTION_LIST_LIMIT = 200


class State(models.IntegerChoices):
    RECOGNISED = 0, _("已驗證實收")
    HELD = 1, _("保留待決")
    PENDING = 2, _("待付款")
    REFUNDED = 3, _("已退款")
    DUPLICATE = 4, _("重複")


class ExceptionCode(models.TextChoices):
    AMOUNT_MISMATCH = "amount_mismatch", _("同一訂單編號重複付款但金額不同")
    PAID_WITH_REFUND_REF = "paid_with_refund_ref", _("付款狀態為已付款，付款單號卻是退款單號")
    UNRESOLVED = "unresolved", _("Huber 標記待釐清")
    REBUY_UNMATCHED = "rebuy_unmatched", _("標記重買，但找不到同客戶同課程的另一筆訂單")
    TAG_CONFLICT = "tag_conflict", _("佐證與匯出檔矛盾（佐證已付款，匯出為已退款或待付款）")
    MISSING_FROM_SNAPSHOT = "missing_from_snapshot", _("訂單在訂單簿裡，最新的完整快照卻沒有它")


@dataclass(frozen=True)
class ExceptionRule:
    owner: Role
    # Evidence can settle it (Huber's tag clears it); a data error needs a new file.
    evidence_resolves: bool


# Owners: Wade for data errors, Huber for evidence, Louis for decisions.
EXCEPTION_RULES: dict[str, ExceptionRule] = {
    ExceptionCode.AMOUNT_MISMATCH: ExceptionRule(Role.WADE, evidence_resolves=False),
    ExceptionCode.PAID_WITH_REFUND_REF: ExceptionRule(Role.HUBER, evidence_resolves=True),
    ExceptionCode.UNRESOLVED: ExceptionRule(Role.HUBER, evidence_resolves=False),
    ExceptionCode.REBUY_UNMATCHED: ExceptionRule(Role.HUBER, evidence_resolves=False),
    ExceptionCode.TAG_CONFLICT: ExceptionRule(Role.LOUIS, evidence_resolves=False),
    ExceptionCode.MISSING_FROM_SNAPSHOT: ExceptionRule(Role.WADE, evidence_resolves=False),
}
EVIDENCE_RESOLVES = frozenset(c for c, r in EXCEPTION_RULES.items() if r.evidence_resolves)

METRICS = (
    "orders",
    "gmv",
    "paid_orders",
    "paid_amount",
    "held_orders",
    "held_amount",
    "pending_orders",
    "pending_amount",
    "refunded_orders",
    "refunded_amount",
    "duplicate_rows",
    "rebuy_orders",
    "rebuy_amount",
)
AMOUNT_METRICS = frozenset(m for m in METRICS if m.endswith("amount") or m == "gmv")
# ImportSummary field → the column it groups by.
DIMENSIONS = {
    "by_day": "day",
    "by_source_event": "source_event",
    "by_program": "program_id",
    "by_discount_code": "discount_code",
}
_STATE_OF_CLASS = {
    Classification.PAID: State.RECOGNISED,
    Classification.PENDING: State.PENDING,
    Classification.REFUNDED: State.REFUNDED,
    Classification.DUPLICATE: State.DUPLICATE,
}
_COUNTING = (State.RECOGNISED, State.HELD)


def exception_owner(code: str) -> str:
    rule = EXCEPTION_RULES.get(code)
    return rule.owner.value if rule else Role.LOUIS.value


# --- Row states -------------------------------------------------------------


def export_states(classification: pd.Series, exception_code: pd.Series) -> np.ndarray:
    """The state a row has from the export alone."""
    state = (
        pd.Series(classification, copy=False)
        .map(_STATE_OF_CLASS)
        .fillna(State.PENDING)
        .to_numpy(np.int8)
    )
    held = (state == State.RECOGNISED) & (np.asarray(exception_code) != "")
    state[held] = State.HELD
    return state


def export_rebuys(classification: pd.Series, rebuy_of: pd.Series) -> np.ndarray:
    return (np.asarray(classification) == Classification.PAID) & (np.asarray(rebuy_of) != "")


def taipei_days(created_at: pd.Series) -> pd.Series:
    """'YYYY-MM-DD' of each timestamp in Asia/Taipei (formatting only the
    distinct days, not a million timestamps)."""
    if len(created_at) == 0:
        return pd.Series([], index=created_at.index, dtype=object)
    local = (
        pd.DatetimeIndex(utc_naive(created_at))
        .tz_localize("UTC")
        .tz_convert(timezone.get_default_timezone_name())
        .tz_localize(None)
    )
    days = local.to_numpy().astype("datetime64[D]")
    found, uniques = pd.factorize(days)
    labels = np.datetime_as_string(uniques, unit="D")
    return pd.Series(pd.Categorical.from_codes(found, categories=labels), index=created_at.index)


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


# --- The book's summary -------------------------------------------------------


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
    _tell_louis_if_changed(
        book_summary,
        cause=gettext("%(name)s 匯入了新版本")
        % {"name": reconciliation_import.upload.original_name},
    )
    return book_summary


def recompute_summary(*, project: Project, cause: str = "") -> BookSummary | None:
    """Bring the book's summary up to date with Huber's current tags. Call
    after every tagging action; cost grows with the number of tagged orders,
    not with the size of the book."""
    with transaction.atomic():
        book_summary = BookSummary.objects.select_for_update().filter(pk=project.pk).first()
        if book_summary is None:
            return None
        base = book_summary.totals.get("import_time") or _empty_base()
        _save_book(book_summary, base, _current(project, base))
        _tell_louis_if_changed(book_summary, cause=cause or gettext("佐證標記有變更"))
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
    return book_summary


# --- The guard and Louis's decision ---------------------------------------------------


class RevenueStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("未驗證")
    VERIFIED = "verified", _("已驗證，待認列")
    RECOGNISED = "recognised", _("已認列")
    PAUSED = "paused", _("暫停認列")


def book_for(project: Project | None) -> BookSummary | None:
    """The project's book when a verified (accepted or partial) import built
    it. None means the period's revenue is unverified (seed test D)."""
    if project is None:
        return None
    summary = (
        BookSummary.objects.filter(project=project)
        .select_related("as_of_import__data_request", "as_of_import__upload", "project")
        .defer(
            "as_of_import__upload__row_errors",
            "as_of_import__upload__file_errors",
            "as_of_import__upload__warnings",
        )
        .first()
    )
    if summary is None or summary.effective_status == ReconciliationImport.Status.FAILED:
        return None
    return summary


def latest_decision(project: Project | None) -> RevenueDecision | None:
    if project is None:
        return None
    return (
        RevenueDecision.objects.filter(project=project)
        .select_related("decided_by__user")
        .order_by("-created_at", "-id")
        .first()
    )


def revenue_status(book_summary, decision: RevenueDecision | None) -> str:
    if book_summary is None:
        return RevenueStatus.UNVERIFIED
    if decision is None:
        return RevenueStatus.VERIFIED
    if decision.decision == RevenueDecision.Decision.APPROVE:
        return RevenueStatus.RECOGNISED
    return RevenueStatus.PAUSED


def decision_delta(book_summary: BookSummary | None, decision: RevenueDecision | None) -> dict:
    """Whether the book moved since Louis's decision, and by how much."""
    if book_summary is None or decision is None:
        return {"changed_since_decision": False, "delta": None}
    changed = decision.book_version is None or decision.book_version < book_summary.version
    paid_amount = round(float(book_summary.totals.get("paid_amount", 0)), 2)
    paid_orders = int(book_summary.totals.get("paid_orders", 0))
    before_amount = float(decision.verified_amount or 0)
    before_orders = int(decision.verified_orders or 0)
    return {
        "changed_since_decision": changed,
        "delta": {
            "paid_amount": round(paid_amount - before_amount, 2),
            "paid_orders": paid_orders - before_orders,
            "book_versions": book_summary.version - (decision.book_version or 0),
        }
        if changed
        else None,
    }


def _tell_louis_if_changed(book_summary: BookSummary, *, cause: str) -> None:
    decision = latest_decision(book_summary.project)
    if decision is None:
        return
    state = decision_delta(book_summary, decision)
    if not state["changed_since_decision"]:
        return
    from reconciliation.services.notify import sync_book_changed

    sync_book_changed(
        project=book_summary.project,
        louis=book_summary.project.owner_profile or decision.decided_by,
        version=book_summary.version,
        delta=state["delta"],
        cause=cause,
    )


def record_revenue_decision(
    *,
    decided_by,
    decision: str,
    note: str = "",
    project: Project | None = None,
    expected_version: int | None = None,
) -> RevenueDecision:
    """Louis approves (recognised) or pauses (paused) recognition of the
    book as it is now. Partial books are approved for their unblocked orders
    only: the decision freezes the book version, the recognised amount, the
    verified orders and the number held back. With `expected_version` (the
    version the page showed him) a book that moved since is refused (409):
    he approves what he saw."""
    if not can(decided_by, Action.DECIDE_REVENUE):
        raise Forbidden("forbidden", gettext("只有 Louis 能決定營收認列。"))
    if decision not in RevenueDecision.Decision.values:
        raise InvalidInput("invalid_decision", gettext("decision 必須是 approve 或 pause。"))
    note = (note or "").strip()
    if project is None:
        from reconciliation.services.requests import default_project

        project = default_project()
    actor = profile_for(decided_by)
    with transaction.atomic():
        if book_for(project) is None:
            raise Conflict(
                "nothing_verified",
                gettext("尚無已驗收的對帳匯入：營收仍未驗證，沒有可以認列或暫停的數字。"),
            )
        book_summary = BookSummary.objects.select_for_update().get(pk=project.pk)
        if expected_version is not None and expected_version != book_summary.version:
            raise Conflict(
                "book_changed",
                gettext("你看到的數字之後訂單簿又變了，請重新檢視再決定。"),
            )
        approve = decision == RevenueDecision.Decision.APPROVE
        paid_amount = Decimal(str(book_summary.totals.get("paid_amount", 0))).quantize(
            Decimal("0.01")
        )
        paid_orders = int(book_summary.totals.get("paid_orders", 0))
        held_rows = int(book_summary.totals.get("held_orders", 0))
        made = RevenueDecision.objects.create(
            reconciliation_import=book_summary.as_of_import,
            project=project,
            book_version=book_summary.version,
            verified_amount=paid_amount,
            verified_orders=paid_orders,
            decision=decision,
            note=note,
            recognised_amount=paid_amount if approve else None,
            held_back_rows=held_rows,
            decided_by=actor,
        )
        record_audit(
            verb=AuditEvent.Verb.REVENUE_DECIDED,
            actor=actor,
            data_request=book_summary.as_of_import.data_request,
            message=(
                (
                    gettext("%(actor)s 認列已驗證實收 NT$%(amount)s（%(orders)s 筆）")
                    % {
                        "actor": actor,
                        "amount": f"{paid_amount:,.0f}",
                        "orders": f"{paid_orders:,}",
                    }
                    + (
                        gettext("，保留 %(n)s 筆待釐清訂單") % {"n": f"{held_rows:,}"}
                        if held_rows
                        else ""
                    )
                )
                if approve
                else gettext("%(actor)s 暫停認列營收") % {"actor": actor}
            )
            + (gettext("。備註：%(note)s") % {"note": note} if note else "。"),
            decision=decision,
            import_id=str(book_summary.as_of_import_id),
            book_version=book_summary.version,
            recognised_amount=str(paid_amount) if approve else None,
            verified_orders=paid_orders,
            held_back_rows=held_rows,
            note=note,
        )
    return made
