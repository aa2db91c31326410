"""Huber's evidence tags: tag orders by order id, by the
queue's filter, or from a validated tag file.

Every action, in one transaction:
1. writes one OrderEvidence per order (the append-only history), in large
   multi-row INSERTs rather than one ORM save per row;
2. moves each order's current tag (OrderTag) to that evidence by a guarded
   upsert — the tag only moves forward to a newer evidence row, so two
   people tagging the same order at once leave the newest tag, whatever the
   commit order;
3. writes one AuditEvent with the count;
4. recomputes the book's revenue summary (`services.revenue`), so the
   scorecard and /latest follow the tags at once, not on the next page view.

Tags belong to the order in the book (Order), not to one file's row: each
evidence row also records the version of the order it was given on
(order_row), and a later changed version marks the tag stale.
The revenue rules themselves live in `services.revenue` only."""

import sqlite3
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation import privacy
from reconciliation.errors import Conflict, InvalidInput
from reconciliation.models import (
    AuditEvent,
    BookSummary,
    Order,
    OrderEvidence,
    OrderTag,
    Project,
)
from reconciliation.selectors.evidence import QueueFilter, queue_rows
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for

REFERENCE_FIELDS = ("payment_ref", "refund_ref", "evidence_ref", "note")
REFERENCE_LIMITS = {"payment_ref": 200, "refund_ref": 200, "evidence_ref": 500, "note": 500}
# A tag that claims something about money names where the proof is.
TAGS_NEEDING_REFERENCE = frozenset(
    {OrderEvidence.Tag.PAID, OrderEvidence.Tag.REFUNDED, OrderEvidence.Tag.REBOUGHT}
)
TAG_VALUES = frozenset(OrderEvidence.Tag.values)
MAX_ORDER_IDS = 200_000


class TagSource:
    ORDER_IDS = "order_ids"
    FILTER = "filter"
    FILE = "file"


@dataclass
class TagResult:
    tagged: int
    tag: str
    project: Project
    audit_event: AuditEvent | None


# --- Checks ---------------------------------------------------------------------


def reference_problems(*, tag: str, refs: dict[str, str]) -> list[tuple[str, str, str]]:
    """(column, code, message) for each problem with a tag and its references."""
    problems = []
    if tag not in TAG_VALUES:
        problems.append(
            ("tag", "invalid_tag", _("標記只能是 paid、refunded、rebought 或 unresolved。"))
        )
    for name in REFERENCE_FIELDS:
        value = refs.get(name, "")
        if len(value) > REFERENCE_LIMITS[name]:
            problems.append(
                (
                    name,
                    "too_long",
                    _("%(field)s 最多 %(n)s 字。") % {"field": name, "n": REFERENCE_LIMITS[name]},
                )
            )
        # Card numbers and payment tokens are stored nowhere.
        for code, masked in privacy.find_sensitive(value)[:1]:
            problems.append(
                (
                    name,
                    code,
                    _("%(field)s 含有卡號或付款 token（%(masked)s）；請勿填寫，只填單號。")
                    % {"field": name, "masked": masked},
                )
            )
    if tag in TAGS_NEEDING_REFERENCE and not any(
        refs.get(name) for name in ("payment_ref", "refund_ref", "evidence_ref")
    ):
        problems.append(
            (
                "evidence_ref",
                "missing_reference",
                _("標為 %(tag)s 時須附 payment_ref、refund_ref 或 evidence_ref 至少一項。")
                % {"tag": tag},
            )
        )
    return problems


# Where the single reference box of a quick (inline) tag goes: a payment for
# paid, a refund for refunded and rebought, a note for unresolved.
INLINE_REFERENCE_FIELD = {
    OrderEvidence.Tag.PAID.value: "payment_ref",
    OrderEvidence.Tag.REFUNDED.value: "refund_ref",
    OrderEvidence.Tag.REBOUGHT.value: "refund_ref",
    OrderEvidence.Tag.UNRESOLVED.value: "note",
}


def inline_references(*, tag: str, ref: str) -> dict[str, str]:
    refs = dict.fromkeys(REFERENCE_FIELDS, "")
    ref = (ref or "").strip()
    if ref:
        refs[INLINE_REFERENCE_FIELD.get(tag, "evidence_ref")] = ref
    return refs


def clean_references(*, tag: str, **refs) -> dict[str, str]:
    cleaned = {name: (refs.get(name) or "").strip() for name in REFERENCE_FIELDS}
    problems = reference_problems(tag=tag, refs=cleaned)
    if problems:
        raise InvalidInput(
            problems[0][1],
            {
                "message": problems[0][2],
                "errors": [{"field": f, "code": c, "message": m} for f, c, m in problems],
            },
        )
    return cleaned


# --- Writing ----------------------------------------------------------------------


def _params_per_statement() -> int:
    """How many parameters one INSERT may carry. Django assumes SQLite's old
    999, which would cut 28,000 rows into hundreds of statements; ask the
    library for its real limit."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return min(connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 30000)
    return 30000


def _prep(model, field_name: str, value):
    return model._meta.get_field(field_name).get_db_prep_save(value, connection)


_EVIDENCE_COLUMNS = (
    "order_id",
    "order_row_id",
    "tag",
    "payment_ref",
    "refund_ref",
    "evidence_ref",
    "note",
    "created_by_id",
    "created_at",
)
_TAG_COLUMNS = ("order_id", "project_id", "tag", "evidence_id", "stale", "updated_at")


def _values(columns: tuple, rows: int, mark: str) -> str:
    return ",".join(["(" + ",".join([mark] * len(columns)) + ")"] * rows)


def _raw_cursor(cursor):
    """(driver cursor, placeholder). Statements of 30,000 parameters go to the
    driver directly: Django's SQLite wrapper rewrites every %s to ? with a
    regex, a measurable share of a 28,000-row action. Values are adapted
    for the backend beforehand (_prep, adapt_datetimefield_value)."""
    if connection.vendor == "sqlite":
        return cursor.cursor, "?"
    return cursor, "%s"


def write_evidence(
    *,
    project: Project,
    entries: list[tuple[int, int, str, str, str, str, str]],
    profile,
) -> int:
    """Append one OrderEvidence per (order pk, current row id, tag,
    payment_ref, refund_ref, evidence_ref, note) entry and move each order's
    OrderTag to it. Each order appears once. Returns the number of evidence
    rows written. Call inside a transaction."""
    if not entries:
        return 0
    # In row order, so two concurrent actions lock OrderTag rows in the same
    # order (no deadlock on PostgreSQL).
    entries = sorted(entries)
    quote = connection.ops.quote_name
    now_db = connection.ops.adapt_datetimefield_value(timezone.now())
    profile_db = _prep(OrderEvidence, "created_by", profile.pk)
    table = quote(OrderEvidence._meta.db_table)
    columns = ",".join(quote(c) for c in _EVIDENCE_COLUMNS)
    returning = f"{quote('id')}, {quote('order_id')}, {quote('tag')}"
    written: list[tuple[int, int, str]] = []  # (order pk, evidence_id, tag)
    with connection.cursor() as wrapper:
        cursor, mark = _raw_cursor(wrapper)
        if connection.vendor == "postgresql":
            # One statement whatever the count: the columns as arrays.
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT u.*, %s, %s FROM unnest("  # noqa: S608 - names are ours, values are parameters
                "%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::text[]) AS u "
                f"RETURNING {returning}",
                [profile_db, now_db, *(list(column) for column in zip(*entries, strict=True))],
            )
            chunks = [cursor.fetchall()]
        else:
            chunks = []
            batch = max(_params_per_statement() // len(_EVIDENCE_COLUMNS), 1)
            stamp = (profile_db, now_db)
            for start in range(0, len(entries), batch):
                chunk = entries[start : start + batch]
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES {_values(_EVIDENCE_COLUMNS, len(chunk), mark)} "  # noqa: S608 - names are ours, values are parameters
                    f"RETURNING {returning}",
                    [value for entry in chunk for value in (*entry, *stamp)],
                )
                chunks.append(cursor.fetchall())
        # RETURNING order is not guaranteed; each order appears once per
        # action, so (order, evidence) pairs are unambiguous anyway.
        for rows in chunks:
            written.extend((row_id, evidence_id, tag) for evidence_id, row_id, tag in rows)
    written.sort()
    move_current_tags(project=project, written=written)
    return len(written)


def move_current_tags(*, project: Project, written: list[tuple[int, int, str]]) -> None:
    """Point each order's OrderTag at its evidence row, given as (order pk,
    evidence_id, tag); a new tag is not stale. Compare-and-set: an OrderTag
    only ever moves to a newer evidence row, so a slower concurrent action
    (which commits after a newer one) cannot put an older tag back."""
    quote = connection.ops.quote_name
    now_db = connection.ops.adapt_datetimefield_value(timezone.now())
    project_db = _prep(OrderTag, "project", project.pk)
    fresh = _prep(OrderTag, "stale", False)
    table = quote(OrderTag._meta.db_table)
    columns = ",".join(quote(c) for c in _TAG_COLUMNS)
    updates = ", ".join(
        f"{quote(c)} = excluded.{quote(c)}" for c in _TAG_COLUMNS if c != "order_id"
    )
    guard = f"{table}.{quote('evidence_id')} < excluded.{quote('evidence_id')}"
    upsert = f"ON CONFLICT ({quote('order_id')}) DO UPDATE SET {updates} WHERE {guard}"
    with connection.cursor() as wrapper:
        cursor, mark = _raw_cursor(wrapper)
        if connection.vendor == "postgresql":
            row_ids, evidence_ids, tags = (list(c) for c in zip(*written, strict=True))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT u.r, %s, u.t, u.e, %s, %s FROM unnest("  # noqa: S608 - names are ours, values are parameters
                f"%s::bigint[], %s::text[], %s::bigint[]) AS u(r, t, e) {upsert}",
                [project_db, fresh, now_db, row_ids, tags, evidence_ids],
            )
            return
        batch = max(_params_per_statement() // len(_TAG_COLUMNS), 1)
        for start in range(0, len(written), batch):
            chunk = written[start : start + batch]
            params = []
            for row_id, evidence_id, tag in chunk:
                params.extend((row_id, project_db, tag, evidence_id, fresh, now_db))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {_values(_TAG_COLUMNS, len(chunk), mark)} "  # noqa: S608 - names are ours, values are parameters
                f"{upsert}",
                params,
            )


PLANNER_REFRESH_ROWS = 5000


def _refresh_planner_statistics(written: int) -> None:
    """After a large action, let PostgreSQL's planner see the new OrderTag
    rows at once rather than at autovacuum's next pass: with stale numbers it
    picks plans for an empty table and the next queue pages and counts pay
    for it. Runs after commit, outside the action's locks."""
    if connection.vendor != "postgresql" or written < PLANNER_REFRESH_ROWS:
        return

    def analyze():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(OrderTag._meta.db_table)}")

    transaction.on_commit(analyze)


def _recompute_revenue(project: Project, cause: dict) -> None:
    from reconciliation.services.revenue import recompute_summary
    from reconciliation.services.settlement.matching import after_book_change

    recompute_summary(project=project, cause=cause)
    after_book_change(project=project)


def _book_request(project: Project):
    """The request of the import the book was last moved by (the timeline
    the tagging shows up on)."""
    book = BookSummary.objects.filter(pk=project.pk).select_related("as_of_import").first()
    return book.as_of_import.data_request if book and book.as_of_import else None


def rows_for_order_ids(
    project: Project, order_ids: list[str]
) -> tuple[dict[str, list[tuple[int, int]]], list[str]]:
    """{order_id: [(order pk, current row id)]} for the order ids found in
    the book, and the order ids not found, in given order. Probes the
    (project, order_id) unique index in long IN lists sent to the driver (an
    array on PostgreSQL): 28,000 ids in ~0.1 s."""
    found: dict[str, list[tuple[int, int]]] = {}
    wanted = list(dict.fromkeys(order_ids))
    quote = connection.ops.quote_name
    table = quote(Order._meta.db_table)
    import_db = _prep(Order, "project", project.pk)
    head = (
        f"SELECT {quote('id')}, {quote('current_row_id')}, {quote('order_id')} FROM {table} "  # noqa: S608 - names are ours, values are parameters
        f"WHERE {quote('project_id')} = "
    )
    with connection.cursor() as wrapper:
        cursor, mark = _raw_cursor(wrapper)
        if connection.vendor == "postgresql":
            cursor.execute(head + f"%s AND {quote('order_id')} = ANY(%s)", [import_db, wanted])
            rows = cursor.fetchall()
        else:
            rows = []
            size = _params_per_statement() - 1
            for start in range(0, len(wanted), size):
                chunk = wanted[start : start + size]
                marks = ",".join([mark] * len(chunk))
                cursor.execute(
                    head + f"{mark} AND {quote('order_id')} IN ({marks})", [import_db, *chunk]
                )
                rows.extend(cursor.fetchall())
    for pk, row_id, order_id in rows:
        found.setdefault(order_id, []).append((pk, row_id))
    unknown = [order_id for order_id in wanted if order_id not in found]
    return found, unknown


def _tag_label(tag: str) -> str:
    return str(OrderEvidence.Tag(tag).label)


def tag_orders(
    *,
    actor,
    project: Project,
    tag: str,
    order_ids: list[str] | None = None,
    queue_filter: QueueFilter | None = None,
    payment_ref: str = "",
    refund_ref: str = "",
    evidence_ref: str = "",
    note: str = "",
    expected_count: int | None = None,
) -> TagResult:
    """Tag the given orders, or every order matching the queue filter, with
    one tag and its references. Unknown order ids refuse the whole action
    (nothing half-done); a filter that now matches more orders than the
    person saw (`expected_count`) is refused too."""
    if (order_ids is None) == (queue_filter is None):
        raise InvalidInput("order_ids_or_filter", _("請給 order_ids 或 filter 其中之一。"))
    refs = clean_references(
        tag=tag,
        payment_ref=payment_ref,
        refund_ref=refund_ref,
        evidence_ref=evidence_ref,
        note=note,
    )
    if order_ids is not None:
        order_ids = [str(o).strip() for o in order_ids if str(o).strip()]
        if not order_ids:
            raise InvalidInput("no_orders", _("沒有選取任何訂單。"))
        if len(order_ids) > MAX_ORDER_IDS:
            raise InvalidInput(
                "too_many_orders", _("一次最多 %(n)s 筆訂單。") % {"n": f"{MAX_ORDER_IDS:,}"}
            )
    profile = profile_for(actor)
    with transaction.atomic():
        if order_ids is not None:
            found, unknown = rows_for_order_ids(project, order_ids)
            if unknown:
                raise InvalidInput(
                    "unknown_order_ids",
                    {
                        "message": _("有 %(n)s 個訂單編號不在訂單簿裡，未標記任何訂單。")
                        % {"n": len(unknown)},
                        # Masked: a card number pasted as an order id is never echoed.
                        "order_ids": [privacy.redact(o) for o in unknown[:500]],
                        "count": len(unknown),
                    },
                )
            row_ids = [row_id for ids in found.values() for row_id in ids]
            source = TagSource.ORDER_IDS
        else:
            row_ids = list(queue_rows(project, queue_filter).values_list("id", "current_row_id"))
            source = TagSource.FILTER
            if not row_ids:
                raise InvalidInput("no_orders_matched", _("沒有訂單符合這個篩選。"))
            if expected_count is not None and len(row_ids) > expected_count:
                raise Conflict(
                    "filter_changed",
                    {
                        "message": _(
                            "符合篩選的訂單已從 %(seen)s 筆變成 %(now)s 筆；請重新整理後再確認。"
                        )
                        % {"seen": f"{expected_count:,}", "now": f"{len(row_ids):,}"},
                        "expected_count": expected_count,
                        "count": len(row_ids),
                    },
                )
        count = write_evidence(
            project=project,
            entries=[(pk, row_id, tag, *refs.values()) for pk, row_id in row_ids],
            profile=profile,
        )
        _refresh_planner_statistics(count)
        audit = record_audit(
            verb=AuditEvent.Verb.EVIDENCE_TAGGED,
            actor=profile,
            project=project,
            data_request=_book_request(project),
            message=_("%(actor)s 將 %(n)s 筆訂單標為「%(tag)s」。")
            % {"actor": profile, "n": f"{count:,}", "tag": _tag_label(tag)},
            count=count,
            tag=tag,
            source=source,
            filter=queue_filter.as_params() if queue_filter is not None else None,
            order_ids=order_ids[:20] if order_ids is not None else None,
            **{name: value for name, value in refs.items() if value},
        )
        _recompute_revenue(
            project,
            {"kind": "tags", "count": count, "tag": tag},
        )
    return TagResult(tagged=count, tag=tag, project=project, audit_event=audit)
