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

import json
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reconciliation.errors import Conflict, Forbidden, InvalidInput
from reconciliation.models import (
    AuditEvent,
    ImportSummary,
    OrderEvidence,
    OrderRow,
    OrderTag,
    Project,
    ReconciliationImport,
    RevenueDecision,
)
from reconciliation.permissions import Action, Role, can
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


def create_summary(*, reconciliation_import: ReconciliationImport, base: dict) -> ImportSummary:
    """The summary written with the import (no tags can exist yet)."""
    summary = ImportSummary(reconciliation_import=reconciliation_import)
    _write(summary, base, base)
    summary.save(force_insert=True)
    return summary


def _write(summary: ImportSummary, base: dict, current: dict) -> None:
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
    summary.effective_status = effective_status(
        summary.reconciliation_import.status, exception_count
    )


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


# Rows are read with plain SQL: these reads run after every tagging action and
# the ORM's per-value converters cost more than the query on 28,000+ rows.


def _sql_rows(sql: str, params: list, fields) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _rows_frame(cursor.fetchall(), fields)


def _column_list(prefix: str, fields) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{prefix}.{quote(OrderRow._meta.get_field(f).column)}" for f in fields)


def _import_param(reconciliation_import) -> object:
    return ReconciliationImport._meta.pk.get_db_prep_value(reconciliation_import.pk, connection)


def _in_list(column: str, values: list) -> tuple[str, object]:
    """`column IN (values)` with one parameter, whatever the number of values."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", list(values)
    return f"{column} IN (SELECT value FROM json_each(%s))", json.dumps(list(values))  # noqa: S608


def _tagged_rows(reconciliation_import) -> pd.DataFrame:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {_column_list('r', _ROW_FIELDS)}, t.{quote('tag')} "  # noqa: S608 - our names
        f"FROM {quote(OrderTag._meta.db_table)} t "
        f"JOIN {quote(OrderRow._meta.db_table)} r ON r.{quote('id')} = t.{quote('order_row_id')} "
        f"WHERE t.{quote('reconciliation_import_id')} = %s"
    )
    return _sql_rows(sql, [_import_param(reconciliation_import)], (*_ROW_FIELDS, "tag"))


_CANDIDATE_FIELDS = ("id", "customer_key", "program_id", "created_at", "classification")


def _rebuy_candidates(reconciliation_import, tagged: pd.DataFrame) -> pd.DataFrame:
    """Non-duplicate rows of the customers and programmes a rebuy-relevant tag
    names: one scan of those programmes' rows (programme index) in the
    database, handing back only the matching customers' rows."""
    relevant = tagged[tagged["tag"].isin([Tag.REBOUGHT, Tag.REFUNDED])]
    if relevant.empty:
        return _rows_frame([], _CANDIDATE_FIELDS)
    quote = connection.ops.quote_name
    programmes, programme_values = _in_list(
        f"r.{quote('program_id')}", sorted(set(relevant["program_id"]))
    )
    customers, customer_values = _in_list(
        f"r.{quote('customer_key')}", sorted(set(relevant["customer_key"]))
    )
    sql = (
        f"SELECT {_column_list('r', _CANDIDATE_FIELDS)} "  # noqa: S608 - our names
        f"FROM {quote(OrderRow._meta.db_table)} r "
        f"WHERE r.{quote('reconciliation_import_id')} = %s AND {programmes} "
        f"AND r.{quote('classification')} <> %s AND {customers}"
    )
    return _sql_rows(
        sql,
        [
            _import_param(reconciliation_import),
            programme_values,
            Classification.DUPLICATE.value,
            customer_values,
        ],
        _CANDIDATE_FIELDS,
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


def _apply_tags(reconciliation_import, tagged: pd.DataFrame) -> pd.DataFrame:
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

    candidates = _rebuy_candidates(reconciliation_import, tagged)
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
    condition, values = _in_list(f"r.{quote('id')}", sorted(int(i) for i in ids))
    sql = (
        f"SELECT {_column_list('r', _ROW_FIELDS)} "  # noqa: S608 - our names
        f"FROM {quote(OrderRow._meta.db_table)} r WHERE {condition}"
    )
    return _sql_rows(sql, [values], _ROW_FIELDS)


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
    dropped = set(affected.loc[(settled != "") & (kept == ""), "row_number"].astype(int))
    entries = [e for e in base["exceptions"] if e["row_number"] not in dropped]
    new = affected[raised != ""].sort_values("row_number").head(EXCEPTION_LIST_LIMIT)
    entries += [
        _exception_entry(r.row_number, r.order_id, r.tag_exc, r.amount, r.program_id)
        for r in new.itertuples(index=False)
    ]
    entries.sort(key=lambda e: (e["row_number"], e["code"]))
    return {
        "totals": _clean_totals(totals),
        "dims": dims,
        "exceptions": entries[:EXCEPTION_LIST_LIMIT],
        "exception_counts": {k: v for k, v in counts.items() if v > 0},
    }


def open_exceptions(*, reconciliation_import: ReconciliationImport) -> list[dict]:
    """Every open exception of the import, not only the first
    EXCEPTION_LIST_LIMIT the summary keeps (for exports): the export's
    exceptions evidence has not settled, plus those evidence raised."""
    records = (
        OrderRow.objects.filter(reconciliation_import=reconciliation_import)
        .exclude(exception_code="")
        .values_list("id", "row_number", "order_id", "exception_code", "amount", "program_id")
    )
    tagged = _tagged_rows(reconciliation_import)
    settled: set[int] = set()
    entries = []
    if not tagged.empty:
        affected = _apply_tags(reconciliation_import, tagged)
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
    entries.sort(key=lambda e: (e["row_number"], e["code"]))
    return entries


def recompute_summary(*, reconciliation_import: ReconciliationImport) -> ImportSummary:
    """Bring the import's summary up to date with Huber's current tags. Call
    after every tagging action; cost grows with the number of tagged rows,
    not with the size of the import."""
    with transaction.atomic():
        # One recompute at a time per import, so a slower, older one never
        # overwrites a newer one.
        summary = (
            ImportSummary.objects.select_for_update(of=("self",))
            .select_related("reconciliation_import")
            .get(pk=reconciliation_import.pk)
        )
        base = summary.totals["import_time"]
        tagged = _tagged_rows(reconciliation_import)
        current = (
            base
            if tagged.empty
            else _apply_difference(base, _apply_tags(reconciliation_import, tagged))
        )
        _write(summary, base, current)
        summary.save()
    return summary


# --- The guard and Louis's decision ---------------------------------------------------


class RevenueStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("未驗證")
    VERIFIED = "verified", _("已驗證，待認列")
    RECOGNISED = "recognised", _("已認列")
    PAUSED = "paused", _("暫停認列")


def latest_verified_import(project: Project | None) -> ReconciliationImport | None:
    """The newest import whose numbers are verified (accepted or partial).
    None means the period's revenue is unverified (seed test D)."""
    if project is None:
        return None
    return (
        ReconciliationImport.objects.filter(
            data_request__project=project, status__in=VERIFIED_IMPORT_STATUSES
        )
        .select_related("summary", "data_request", "upload")
        # The page shows the file's name; its error lists are not needed.
        .defer("upload__row_errors", "upload__file_errors", "upload__warnings")
        .order_by("-created_at", "-id")
        .first()
    )


def revenue_status(reconciliation_import, decision: RevenueDecision | None) -> str:
    if reconciliation_import is None:
        return RevenueStatus.UNVERIFIED
    if decision is None:
        return RevenueStatus.VERIFIED
    if decision.decision == RevenueDecision.Decision.APPROVE:
        return RevenueStatus.RECOGNISED
    return RevenueStatus.PAUSED


def record_revenue_decision(
    *, decided_by, decision: str, note: str = "", project: Project | None = None
) -> RevenueDecision:
    """Louis approves (recognised) or pauses (paused) recognition of the
    latest verified import. A partial import is approved for its unblocked
    rows only: the decision freezes the recognised amount and the number of
    rows held back."""
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
        reconciliation_import = latest_verified_import(project)
        if reconciliation_import is None:
            raise Conflict(
                "nothing_verified",
                gettext("尚無已驗收的對帳匯入：營收仍未驗證，沒有可以認列或暫停的數字。"),
            )
        summary = recompute_summary(reconciliation_import=reconciliation_import)
        approve = decision == RevenueDecision.Decision.APPROVE
        paid_amount = Decimal(str(summary.totals.get("paid_amount", 0))).quantize(Decimal("0.01"))
        held_rows = int(summary.totals.get("held_orders", 0))
        made = RevenueDecision.objects.create(
            reconciliation_import=reconciliation_import,
            decision=decision,
            note=note,
            recognised_amount=paid_amount if approve else None,
            held_back_rows=held_rows,
            decided_by=actor,
        )
        record_audit(
            verb=AuditEvent.Verb.REVENUE_DECIDED,
            actor=actor,
            data_request=reconciliation_import.data_request,
            message=(
                (
                    gettext("%(actor)s 認列已驗證實收 NT$%(amount)s")
                    % {"actor": actor, "amount": f"{paid_amount:,.0f}"}
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
            import_id=str(reconciliation_import.pk),
            recognised_amount=str(paid_amount) if approve else None,
            held_back_rows=held_rows,
            note=note,
        )
    return made
