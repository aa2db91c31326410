"""The live streams' stored figures: one row per source_event of the book,
rewritten whole whenever the book's orders change and partly (the tag
columns) whenever Huber tags. Called only from the book's summary
(services.revenue.summary).

A whole rewrite scans the book (seconds on a million orders), so an import
does not wait for it: the import marks the figures behind, and after it
commits the worker rewrites them (``refresh_behind``; the schedule's sweep
catches a lost task). Until then the pages say the figures are being
brought up to date. With LIVE_FIGURES_INLINE the rewrite happens inside
the import's transaction instead (small books, the tests).

Rules (one place each):

* Every figure is over the book's current orders; a refund is an order whose
  current payment_status is refunded.
* GMV: the amount of every order of the stream (paid, pending and refunded).
  Average order value: GMV / orders.
* A rebuy is a buyer's second or later order in the book (by created_at),
  counted in the stream it was placed in. Every buyer has one first order:
  when a buyer's earliest orders in two streams share a timestamp, the
  stream whose name sorts first has it.
* A returning buyer of a stream is a buyer whose first order in the book was
  placed in another stream.
* Orders by hour: the Asia/Taipei hour of created_at.
"""

import logging
from datetime import timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from reconciliation.bulk import db_value
from reconciliation.models import (
    BookSummary,
    LiveBookTotals,
    LiveStreamFigures,
    Order,
    OrderSettlement,
    OrderTag,
    Project,
    SettlementImport,
)

logger = logging.getLogger(__name__)

# Dimension tables keep the largest entries; a stream seldom sells more.
DIMENSION_LIMIT = 50
STALE_TAGS = "stale_tag"
_GROUPS = ("source_event", "program_id", "discount_code", "exception_code", "payment_status")


def _hour_bucket(column: str) -> str:
    """SQL for the UTC hour of a timestamp as 'YYYY-MM-DD HH' text."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"
    return f"substr({column}, 1, 13)"


def _order_groups(project: Project) -> pd.DataFrame:
    """The book's orders counted by stream, programme, code, exception,
    status and UTC hour: one scan in the database, a few thousand rows out."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"o.{quote(c)}" for c in _GROUPS)
    sql = (
        f"SELECT {columns}, {_hour_bucket('o.' + quote('created_at'))}, "  # noqa: S608 - our names
        f"COUNT(*), SUM(o.{quote('amount')}), MIN(o.{quote('created_at')}), "
        f"MAX(o.{quote('created_at')}) FROM {quote(Order._meta.db_table)} o "
        f"WHERE o.{quote('project_id')} = %s GROUP BY {columns}, 6"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [db_value(Order, "project", project.pk)])
        frame = pd.DataFrame.from_records(
            cursor.fetchall(),
            columns=[*_GROUPS, "hour_bucket", "orders", "amount", "first_at", "last_at"],
        )
    for column in ("first_at", "last_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["orders"] = frame["orders"].astype(np.int64)
    frame["amount"] = frame["amount"].astype(np.float64)
    utc = pd.to_datetime(frame["hour_bucket"], format="%Y-%m-%d %H", errors="coerce", utc=True)
    frame["hour"] = utc.dt.tz_convert(timezone.get_default_timezone_name()).dt.hour
    return frame


def _buyer_groups(project: Project) -> pd.DataFrame:
    """Per stream: its buyers, the buyers whose first order in the book is in
    it, and those of them who bought in another stream too (a window over
    the (buyer, stream) pairs, in the database)."""
    quote = connection.ops.quote_name
    c, s, t = quote("customer_key"), quote("source_event"), quote("created_at")
    sql = (
        f"WITH pairs AS (SELECT {c} c, {s} s, MIN({t}) t FROM "  # noqa: S608 - our names
        f"{quote(Order._meta.db_table)} WHERE {quote('project_id')} = %s GROUP BY {c}, {s}), "
        "ranked AS (SELECT s, ROW_NUMBER() OVER (PARTITION BY c ORDER BY t, s) rn, "
        "COUNT(*) OVER (PARTITION BY c) k FROM pairs) "
        "SELECT s, COUNT(*), SUM(CASE WHEN rn = 1 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN rn = 1 AND k > 1 THEN 1 ELSE 0 END) FROM ranked GROUP BY s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [db_value(Order, "project", project.pk)])
        frame = pd.DataFrame.from_records(
            cursor.fetchall(), columns=["source_event", "buyers", "first_buyers", "multi_buyers"]
        )
    return frame.set_index("source_event").astype(np.int64)


def _money(value) -> float:
    return round(float(value), 2)


def _dimension(part: pd.DataFrame, column: str) -> list[dict]:
    """[{key, orders, gmv, paid_amount}] of one stream, largest GMV first."""
    grouped = (
        part.groupby(column, sort=False)
        .agg(orders=("orders", "sum"), gmv=("amount", "sum"), paid_amount=("paid_amount", "sum"))
        .sort_values(["gmv", "orders"], ascending=False)
        .head(DIMENSION_LIMIT)
    )
    return [
        {
            "key": key,
            "orders": int(r.orders),
            "gmv": _money(r.gmv),
            "paid_amount": _money(r.paid_amount),
        }
        for key, r in grouped.iterrows()
    ]


def book_figures(project: Project) -> tuple[list[dict], dict]:
    """(one dict per source_event, the period's totals) of the book's current
    orders. Every buyer has exactly one first order, so a stream's rebuys
    are its orders less its first-time buyers, and its returning buyers its
    buyers less its first-time buyers."""
    groups = _order_groups(project)
    buyers = _buyer_groups(project)
    settled = _settled_by_stream(project)
    status = groups["payment_status"]
    for name, mask in (
        ("paid", status == "paid"),
        ("pending", status == "pending"),
        ("refunded", status == "refunded"),
        ("coded", groups["discount_code"] != ""),
    ):
        groups[f"{name}_orders"] = np.where(mask, groups["orders"], 0)
        groups[f"{name}_amount"] = np.where(mask, groups["amount"], 0.0)
    rows = []
    for name, part in groups.groupby("source_event", sort=False):
        orders = int(part["orders"].sum())
        stream_buyers = buyers.loc[name] if name in buyers.index else None
        first = int(stream_buyers["first_buyers"]) if stream_buyers is not None else 0
        count = int(stream_buyers["buyers"]) if stream_buyers is not None else 0
        known = part[part["hour"].notna()]
        hours = np.bincount(
            known["hour"].astype(np.int64), weights=known["orders"], minlength=24
        ).astype(np.int64)
        flagged = part[part["exception_code"] != ""].groupby("exception_code")["orders"].sum()
        rows.append(
            {
                "source_event": name,
                "orders": orders,
                "gmv": _money(part["amount"].sum()),
                "paid_orders": int(part["paid_orders"].sum()),
                "paid_amount": _money(part["paid_amount"].sum()),
                "pending_orders": int(part["pending_orders"].sum()),
                "refund_count": int(part["refunded_orders"].sum()),
                "refund_amount": _money(part["refunded_amount"].sum()),
                "rebuys": orders - first,
                "buyers": count,
                "returning_buyers": count - first,
                "discount_orders": int(part["coded_orders"].sum()),
                **_settled_of(settled, name),
                "first_order_at": _stamp(part["first_at"].min()),
                "last_order_at": _stamp(part["last_at"].max()),
                "by_hour": hours.tolist(),
                "programs": _dimension(part, "program_id"),
                "discount_codes": _dimension(part[part["discount_code"] != ""], "discount_code"),
                "exceptions": {str(k): int(v) for k, v in flagged.items()},
            }
        )
    totals = {
        "streams": len(rows),
        "orders": int(groups["orders"].sum()),
        "gmv": _money(groups["amount"].sum()),
        "paid_orders": int(groups["paid_orders"].sum()),
        "paid_amount": _money(groups["paid_amount"].sum()),
        "pending_orders": int(groups["pending_orders"].sum()),
        "refund_count": int(groups["refunded_orders"].sum()),
        "refund_amount": _money(groups["refunded_amount"].sum()),
        "rebuys": int(groups["orders"].sum() - buyers["first_buyers"].sum()),
        "discount_orders": int(groups["coded_orders"].sum()),
        "buyers": int(buyers["first_buyers"].sum()),
        # Buyers who bought in more than one stream.
        "returning_buyers": int(buyers["multi_buyers"].sum()),
    }
    if settled is not None:
        totals["settled_net"] = _money(settled["settled_net"].sum())
        totals["refund_settled"] = _money(settled["refund_settled"].sum())
    return rows, totals


def _settled_by_stream(project: Project) -> pd.DataFrame | None:
    """Per stream, what the provider settled for its orders (the orders'
    settlement results); None before any settlement file: no figure then."""
    if not SettlementImport.objects.filter(project=project).exists():
        return None
    quote = connection.ops.quote_name
    sql = (
        f"SELECT o.{quote('source_event')}, SUM(s.{quote('settled_net')}), "  # noqa: S608
        f"SUM(s.{quote('refund_settled')}) FROM {quote(Order._meta.db_table)} o "
        f"JOIN {quote(OrderSettlement._meta.db_table)} s ON s.{quote('order_id')} = o.{quote('id')} "
        f"WHERE o.{quote('project_id')} = %s GROUP BY o.{quote('source_event')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [db_value(Order, "project", project.pk)])
        frame = pd.DataFrame.from_records(
            cursor.fetchall(), columns=["source_event", "settled_net", "refund_settled"]
        )
    return frame.set_index("source_event").astype(np.float64)


def _settled_of(settled: pd.DataFrame | None, source_event: str) -> dict:
    if settled is None:
        return {"settled_net": None, "refund_settled": None}
    if source_event not in settled.index:
        return {"settled_net": 0.0, "refund_settled": 0.0}
    row = settled.loc[source_event]
    return {
        "settled_net": _money(row["settled_net"]),
        "refund_settled": _money(row["refund_settled"]),
    }


def _stamp(value):
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _tag_figures(project: Project) -> dict[str, dict]:
    """{source_event: {refund_tags: {tag: n}, stale_tags: n}} from Huber's
    current tags (cost grows with the tagged orders, not the book)."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT o.{quote('source_event')}, o.{quote('payment_status')}, t.{quote('tag')}, "  # noqa: S608
        f"t.{quote('stale')}, COUNT(*) FROM {quote(OrderTag._meta.db_table)} t "
        f"JOIN {quote(Order._meta.db_table)} o ON o.{quote('id')} = t.{quote('order_id')} "
        f"WHERE t.{quote('project_id')} = %s GROUP BY 1, 2, 3, 4"
    )
    out: dict[str, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [db_value(OrderTag, "project", project.pk)])
        for source_event, payment_status, tag, stale, n in cursor.fetchall():
            entry = out.setdefault(source_event, {"refund_tags": {}, "stale_tags": 0})
            if payment_status == "refunded":
                entry["refund_tags"][tag] = entry["refund_tags"].get(tag, 0) + n
            if stale:
                entry["stale_tags"] += n
    return out


def _with_tags(row: dict, tags: dict) -> dict:
    """The stream's tag columns: refunded orders by tag ('' = not tagged yet)
    and stale tags among its open exceptions."""
    found = tags.get(row["source_event"], {"refund_tags": {}, "stale_tags": 0})
    refund_tags = dict(found["refund_tags"])
    untagged = row["refund_count"] - sum(refund_tags.values())
    if untagged > 0:
        refund_tags[""] = untagged
    exceptions = {k: v for k, v in row["exceptions"].items() if k != STALE_TAGS}
    if found["stale_tags"]:
        exceptions[STALE_TAGS] = found["stale_tags"]
    return {**row, "refund_tags": refund_tags, "exceptions": exceptions}


def refresh_live_streams(*, project: Project, book_version: int, orders_changed: bool) -> None:
    """Rewrite the project's stream figures for `book_version`. With
    `orders_changed` False (a tagging action) only the tag columns are read
    again. Called inside the book's transaction, the book locked."""
    tags = _tag_figures(project)
    if not orders_changed and LiveBookTotals.objects.filter(project=project).exists():
        for stream in LiveStreamFigures.objects.filter(project=project).only(
            "pk", "source_event", "refund_count", "exceptions"
        ):
            row = _with_tags(
                {
                    "source_event": stream.source_event,
                    "refund_count": stream.refund_count,
                    "exceptions": stream.exceptions,
                },
                tags,
            )
            LiveStreamFigures.objects.filter(pk=stream.pk).update(
                refund_tags=row["refund_tags"],
                exceptions=row["exceptions"],
                book_version=book_version,
            )
        LiveBookTotals.objects.filter(project=project).update(book_version=book_version)
        return
    _write(project, *book_figures(project), tags=tags, book_version=book_version)


def _write(project: Project, rows: list, totals: dict, *, tags: dict, book_version: int) -> None:
    LiveStreamFigures.objects.filter(project=project).delete()
    LiveStreamFigures.objects.bulk_create(
        [
            LiveStreamFigures(project=project, book_version=book_version, **_with_tags(row, tags))
            for row in rows
        ]
    )
    LiveBookTotals.objects.update_or_create(
        project=project,
        defaults={"book_version": book_version, "totals": totals, "behind_since": None},
    )


# --- After an import ------------------------------------------------------------------

# A figure left behind this long is rewritten by the sweep (its task was lost).
SWEEP_AFTER = timedelta(minutes=1)


def after_import(*, project: Project, book_version: int) -> None:
    """An import changed the book's orders or their settlement (called inside
    its transaction)."""
    if settings.LIVE_FIGURES_INLINE:
        refresh_live_streams(project=project, book_version=book_version, orders_changed=True)
        return
    mark_behind(project)
    project_id = project.pk
    transaction.on_commit(lambda: queue_refresh(project_id=project_id))


def mark_behind(project: Project) -> None:
    """The streams' figures no longer follow the book: the every-minute sweep
    rewrites them (after SWEEP_AFTER) unless a queued refresh does first."""
    now = timezone.now()
    if not LiveBookTotals.objects.filter(project=project).update(behind_since=now):
        LiveBookTotals.objects.create(project=project, totals={}, behind_since=now)


def queue_refresh(*, project_id) -> None:
    """The rewrite in the worker; a broker that is down leaves it to the sweep."""
    from django_q.tasks import async_task

    try:
        async_task(
            "reconciliation.tasks.refresh_live_figures",
            str(project_id),
            task_name=f"live-{project_id}",
        )
    except Exception:  # noqa: BLE001 - any broker failure; the sweep retries
        logger.exception(
            "could not queue the live figures of project %s; the sweep will", project_id
        )


def refresh_behind(*, project_id) -> bool:
    """Rewrite the figures of a project whose book moved. The book is scanned
    without holding its lock (imports and tagging go on); the figures are
    written only if the book is still at the version scanned — otherwise a
    later import has queued its own rewrite, or the sweep comes back."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return False
    version = BookSummary.objects.filter(pk=project_id).values_list("version", flat=True).first()
    if version is None:
        return False
    rows, totals = book_figures(project)
    with transaction.atomic():
        locked = BookSummary.objects.select_for_update().get(pk=project_id)
        if locked.version != version:
            return False
        _write(project, rows, totals, tags=_tag_figures(project), book_version=version)
    return True


def refresh_all_behind(*, now=None) -> list[str]:
    """The schedule's sweep: figures left behind longer than SWEEP_AFTER."""
    cutoff = (now or timezone.now()) - SWEEP_AFTER
    behind = LiveBookTotals.objects.filter(behind_since__lt=cutoff).values_list(
        "project_id", flat=True
    )
    return [str(pk) for pk in list(behind) if refresh_behind(project_id=pk)]
