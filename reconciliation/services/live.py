"""The live streams' stored figures: one row per source_event of the book,
rewritten whole whenever the book's orders change and partly (the tag
columns) whenever Huber tags. Called only from the book's summary
(services.revenue.summary), inside its transaction, so the streams always
match the book version the scorecard shows.

Rules (one place each):

* Every figure is over the book's current orders; a refund is an order whose
  current payment_status is refunded.
* GMV: the amount of every order of the stream (paid, pending and refunded).
  Average order value: GMV / orders.
* A rebuy is a buyer's second or later order in the book (by created_at,
  then arrival), counted in the stream it was placed in.
* A returning buyer of a stream is a buyer whose first order in the book was
  placed in another stream.
* Orders by hour: the Asia/Taipei hour of created_at.
"""

import numpy as np
import pandas as pd
from django.db import connection
from django.utils import timezone

from reconciliation.bulk import db_value, quoted_columns, sql_frame
from reconciliation.models import LiveBookTotals, LiveStreamFigures, Order, OrderTag, Project

_FIELDS = (
    "id",
    "source_event",
    "customer_key",
    "created_at",
    "amount",
    "payment_status",
    "discount_code",
    "program_id",
    "exception_code",
)
# Dimension tables keep the largest entries; a stream seldom sells more.
DIMENSION_LIMIT = 50
STALE_TAGS = "stale_tag"


def _book_orders(project: Project) -> pd.DataFrame:
    quote = connection.ops.quote_name
    return sql_frame(
        f"SELECT {quoted_columns(Order, 'o', _FIELDS)} FROM "  # noqa: S608 - our names
        f"{quote(Order._meta.db_table)} o WHERE o.{quote('project_id')} = %s",
        [db_value(Order, "project", project.pk)],
        _FIELDS,
    )


def _money(value) -> float:
    return round(float(value), 2)


def _dimension(frame: pd.DataFrame, column: str, paid: np.ndarray) -> list[dict]:
    """[{key, orders, gmv, paid_amount}] of one stream's orders, largest GMV first."""
    grouped = (
        pd.DataFrame(
            {
                "key": frame[column].to_numpy(object),
                "amount": frame["amount"].to_numpy(np.float64),
                "paid": np.where(paid, frame["amount"].to_numpy(np.float64), 0.0),
            }
        )
        .groupby("key", sort=False)
        .agg(orders=("amount", "size"), gmv=("amount", "sum"), paid_amount=("paid", "sum"))
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


def stream_figures(orders: pd.DataFrame) -> tuple[list[dict], dict]:
    """(one dict per source_event, the period's totals) of the book's orders,
    vectorised: sums by np.bincount over stream codes, rebuys and returning
    buyers from one sort by (buyer, created_at, id)."""
    n = len(orders)
    stream_codes, streams = pd.factorize(orders["source_event"].to_numpy(object))
    size = len(streams)
    buyer_codes, _buyers = pd.factorize(orders["customer_key"].to_numpy(object))
    amount = orders["amount"].to_numpy(np.float64)
    status = orders["payment_status"].to_numpy(object)
    paid = status == "paid"
    refunded = status == "refunded"
    coded = orders["discount_code"].to_numpy(object) != ""
    created = pd.DatetimeIndex(orders["created_at"])
    created_ns = created.asi8 if n else np.zeros(0, np.int64)

    order = np.lexsort((orders["id"].to_numpy(np.int64), created_ns, buyer_codes))
    first_of_buyer = np.ones(n, dtype=bool)
    if n:
        first_of_buyer[order[1:]] = buyer_codes[order[1:]] != buyer_codes[order[:-1]]
    rebuy = ~first_of_buyer
    first_stream = np.empty(len(_buyers), dtype=np.int64)
    first_stream[buyer_codes[first_of_buyer]] = stream_codes[first_of_buyer]
    pairs = np.unique(buyer_codes.astype(np.int64) * max(size, 1) + stream_codes)
    pair_buyer, pair_stream = pairs // max(size, 1), pairs % max(size, 1)
    returning = first_stream[pair_buyer] != pair_stream

    def count(mask=None):
        weights = None if mask is None else mask.astype(np.float64)
        return np.bincount(stream_codes, weights=weights, minlength=size)

    def money(mask=None):
        weights = amount if mask is None else np.where(mask, amount, 0.0)
        return np.bincount(stream_codes, weights=weights, minlength=size)

    local_hours = (
        created.tz_convert(timezone.get_default_timezone_name()).hour.to_numpy(np.float64)
        if n
        else np.zeros(0, np.int64)
    )
    known = ~created.isna() if n else np.zeros(0, bool)
    hours = np.bincount(
        stream_codes[known] * 24 + np.asarray(local_hours)[known].astype(np.int64),
        minlength=size * 24,
    ).reshape(size, 24)
    columns = {
        "orders": count(),
        "gmv": money(),
        "paid_orders": count(paid),
        "paid_amount": money(paid),
        "pending_orders": count(status == "pending"),
        "refund_count": count(refunded),
        "refund_amount": money(refunded),
        "rebuys": count(rebuy),
        "discount_orders": count(coded),
        "buyers": np.bincount(pair_stream, minlength=size),
        "returning_buyers": np.bincount(pair_stream, weights=returning, minlength=size),
    }
    exception_codes = orders["exception_code"].to_numpy(object)
    frame_codes = pd.Series(stream_codes)
    first_at = pd.Series(created_ns).where(known).groupby(frame_codes).min()
    last_at = pd.Series(created_ns).where(known).groupby(frame_codes).max()
    rows = []
    # Each stream's row positions: one stable sort, then slices.
    grouped = np.argsort(stream_codes, kind="stable")
    starts = np.searchsorted(stream_codes[grouped], np.arange(size + 1))
    for index, name in enumerate(streams):
        positions = grouped[starts[index] : starts[index + 1]]
        part = orders.iloc[positions]
        flagged = exception_codes[positions]
        flagged = flagged[flagged != ""]
        codes_, counts = np.unique(flagged.astype(str), return_counts=True)
        rows.append(
            {
                "source_event": name,
                **{
                    key: (
                        _money(values[index])
                        if key.endswith(("gmv", "amount"))
                        else int(values[index])
                    )
                    for key, values in columns.items()
                },
                "first_order_at": _stamp(first_at.get(index)),
                "last_order_at": _stamp(last_at.get(index)),
                "by_hour": hours[index].tolist(),
                "programs": _dimension(part, "program_id", paid[positions]),
                "discount_codes": [
                    d for d in _dimension(part, "discount_code", paid[positions]) if d["key"] != ""
                ],
                "exceptions": dict(zip(codes_.tolist(), counts.tolist(), strict=True)),
            }
        )
    stream_count = np.bincount(pair_buyer, minlength=len(_buyers))
    totals = {
        "streams": int(size),
        "orders": int(n),
        "gmv": _money(amount.sum()),
        "paid_orders": int(paid.sum()),
        "paid_amount": _money(amount[paid].sum()),
        "pending_orders": int((status == "pending").sum()),
        "refund_count": int(refunded.sum()),
        "refund_amount": _money(amount[refunded].sum()),
        "rebuys": int(rebuy.sum()),
        "discount_orders": int(coded.sum()),
        "buyers": int(len(_buyers)),
        # Buyers who bought in more than one stream.
        "returning_buyers": int((stream_count > 1).sum()),
    }
    return rows, totals


def _stamp(nanos):
    if nanos is None or pd.isna(nanos):
        return None
    return pd.Timestamp(int(nanos), tz="UTC").to_pydatetime()


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
    rows, totals = stream_figures(_book_orders(project))
    LiveStreamFigures.objects.filter(project=project).delete()
    LiveStreamFigures.objects.bulk_create(
        [
            LiveStreamFigures(project=project, book_version=book_version, **_with_tags(row, tags))
            for row in rows
        ]
    )
    LiveBookTotals.objects.update_or_create(
        project=project, defaults={"book_version": book_version, "totals": totals}
    )
