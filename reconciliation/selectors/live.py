"""The live-commerce dashboard as data, for /live/, the stream page, the
exports and `GET /api/kolable/live-streams`. Reads only the stored stream
figures (services.live keeps them with the book), the compliance history
and the viewer figures: never orders, so it costs the same with 28,000 or
1,000,000 orders.

Ratios whose denominator is missing are None (the page says the data is
missing); nothing here invents a viewer count or a settled amount."""

from dataclasses import dataclass, field
from statistics import median
from urllib.parse import urlencode

from django.db.models import Max
from django.urls import reverse

from reconciliation.models import (
    ComplianceRecord,
    LiveBookTotals,
    LiveStreamFigures,
    Project,
    StreamViewers,
)
from reconciliation.selectors.evidence import ALL_PROGRAMS, ALL_TAGS, ANY_DISCOUNT_CODE

# The columns /live/ sorts by (the API's `sort`), and the figures the stream
# page sets beside the period's median stream.
SORT_KEYS = (
    "source_event",
    "gmv",
    "orders",
    "paid_amount",
    "refund_count",
    "refund_amount",
    "refund_rate",
    "rebuys",
    "aov",
    "buyers",
    "returning_buyers",
    "discount_orders",
    "discount_share",
    "viewers",
    "conversion",
    "gmv_per_thousand_viewers",
)
MEDIAN_KEYS = (
    "gmv",
    "orders",
    "paid_amount",
    "refund_count",
    "refund_rate",
    "rebuys",
    "aov",
    "buyers",
    "returning_buyers",
    "discount_share",
    "conversion",
    "gmv_per_thousand_viewers",
)
MONEY_KEYS = frozenset(
    {"gmv", "paid_amount", "refund_amount", "aov", "settled_net", "gmv_per_thousand_viewers"}
)
SUMMED_KEYS = (
    "orders",
    "gmv",
    "paid_orders",
    "paid_amount",
    "refund_count",
    "refund_amount",
    "rebuys",
    "discount_orders",
)


def settled_net(figures_rows) -> dict[str, float] | None:
    """What the provider settled (net) for each stream's orders, from the
    stored figures; None while they were written without a settlement file
    (services.live stores null then) — every page then says the settlement
    file is missing instead of a figure."""
    if all(f.settled_net is None for f in figures_rows):
        return None
    return {
        f.source_event: None if f.settled_net is None else float(f.settled_net)
        for f in figures_rows
    }


def _ratio(numerator, denominator):
    return None if not denominator else float(numerator) / float(denominator)


def queue_link(source_event: str, **narrow) -> str:
    """The evidence queue filtered to the stream's orders (and `narrow`)."""
    params = {"program_id": ALL_PROGRAMS, "tag": ALL_TAGS, "source_event": source_event, **narrow}
    return f"{reverse('evidence')}?{urlencode(params)}"


@dataclass
class StreamRow:
    source_event: str
    figures: dict
    compliance: ComplianceRecord | None
    viewers: StreamViewers | None
    settled_net: float | None
    links: dict = field(default_factory=dict)

    @property
    def is_stream(self) -> bool:
        """Orders without a source_event are listed, but are no stream to
        review."""
        return bool(self.source_event)

    @property
    def compliance_status(self) -> str:
        if not self.is_stream:
            return ""
        return self.compliance.status if self.compliance else ComplianceRecord.Status.PENDING

    @property
    def flagged(self) -> bool:
        """Revenue of a stream whose creative compliance is not `pass`."""
        return self.is_stream and self.compliance_status != ComplianceRecord.Status.PASS

    def get(self, key: str):
        return self.figures.get(key)


def _derived(figures: dict, viewers: StreamViewers | None) -> dict:
    orders = figures["orders"]
    out = {
        **figures,
        "gmv": float(figures["gmv"]),
        "paid_amount": float(figures["paid_amount"]),
        "refund_amount": float(figures["refund_amount"]),
        "refund_rate": _ratio(figures["refund_count"], orders),
        "aov": _ratio(figures["gmv"], orders),
        "discount_share": _ratio(figures["discount_orders"], orders),
        "viewers": viewers.viewers if viewers else None,
        "conversion": _ratio(orders, viewers.viewers) if viewers else None,
        "gmv_per_thousand_viewers": (
            _ratio(float(figures["gmv"]) * 1000, viewers.viewers) if viewers else None
        ),
    }
    return out


def _links(source_event: str) -> dict:
    return {
        "orders": queue_link(source_event),
        "paid": queue_link(source_event, payment_status="paid"),
        "pending": queue_link(source_event, payment_status="pending"),
        "refunds": queue_link(source_event, payment_status="refunded"),
        "discount": queue_link(source_event, discount_code=ANY_DISCOUNT_CODE),
    }


def current_compliance(project: Project, source_events=None) -> dict[str, ComplianceRecord]:
    """The newest compliance entry of each stream (two queries)."""
    latest = ComplianceRecord.objects.filter(project=project)
    if source_events is not None:
        latest = latest.filter(source_event__in=list(source_events))
    ids = latest.values("source_event").annotate(last=Max("id")).values_list("last", flat=True)
    records = ComplianceRecord.objects.filter(id__in=list(ids)).select_related("created_by__user")
    return {r.source_event: r for r in records}


def compliance_flags(project: Project, source_events: list[str]) -> dict[str, str]:
    """{source_event: status} of the named streams whose compliance is not
    `pass` (no entry yet counts as pending); blank source_events are no stream."""
    current = current_compliance(project, source_events)
    passed = ComplianceRecord.Status.PASS
    return {
        name: (current[name].status if name in current else ComplianceRecord.Status.PENDING)
        for name in source_events
        if name and (name not in current or current[name].status != passed)
    }


def _rows(project: Project, figures_rows) -> list[StreamRow]:
    names = [f.source_event for f in figures_rows]
    compliance = current_compliance(project, names)
    viewers = {
        v.source_event: v
        for v in StreamViewers.objects.filter(project=project, source_event__in=names)
    }
    settled = settled_net(figures_rows)
    return [
        StreamRow(
            source_event=f.source_event,
            figures=_derived(_as_dict(f), viewers.get(f.source_event)),
            compliance=compliance.get(f.source_event),
            viewers=viewers.get(f.source_event),
            settled_net=None if settled is None else settled.get(f.source_event),
            links=_links(f.source_event),
        )
        for f in figures_rows
    ]


_STORED = (
    "orders",
    "gmv",
    "paid_orders",
    "paid_amount",
    "pending_orders",
    "refund_count",
    "refund_amount",
    "rebuys",
    "buyers",
    "returning_buyers",
    "discount_orders",
    "first_order_at",
    "last_order_at",
)


def _as_dict(figures: LiveStreamFigures) -> dict:
    return {key: getattr(figures, key) for key in _STORED}


def _sort_value(row: StreamRow, key: str):
    value = row.source_event if key == "source_event" else row.get(key)
    # Missing figures sort last whichever the direction.
    return (value is None, value if value is not None else 0)


@dataclass
class Dashboard:
    project: Project | None
    rows: list[StreamRow]
    totals: dict | None
    book_version: int
    sort: str
    descending: bool
    settlement_missing: bool
    # An import changed the book and the worker is rewriting the figures.
    behind: bool = False

    @property
    def has_book(self) -> bool:
        return self.totals is not None

    @property
    def flagged_rows(self) -> list[StreamRow]:
        return [r for r in self.rows if r.flagged]

    @property
    def flagged_gmv(self) -> float:
        return round(sum(r.get("gmv") for r in self.flagged_rows), 2)

    @property
    def viewers_missing(self) -> bool:
        return not any(r.viewers for r in self.rows)


def dashboard(project: Project | None, *, sort: str = "gmv", descending: bool = True) -> Dashboard:
    """Every stream of the book with its figures, sorted; the period's totals."""
    sort = sort if sort in SORT_KEYS else "gmv"
    stored = LiveBookTotals.objects.filter(project=project).first() if project else None
    if stored is None or not stored.totals:
        behind = stored is not None and stored.behind_since is not None
        return Dashboard(project, [], None, 0, sort, descending, True, behind=behind)
    rows = _rows(
        project,
        list(
            LiveStreamFigures.objects.filter(project=project).defer(
                "by_hour", "programs", "discount_codes", "refund_tags", "exceptions"
            )
        ),
    )
    present = [r for r in rows if r.get(sort) is not None or sort == "source_event"]
    absent = [r for r in rows if r not in present]
    present.sort(key=lambda r: _sort_value(r, sort), reverse=descending)
    totals = dict(stored.totals)
    totals["refund_rate"] = _ratio(totals.get("refund_count", 0), totals.get("orders", 0))
    totals["aov"] = _ratio(totals.get("gmv", 0), totals.get("orders", 0))
    totals["discount_share"] = _ratio(totals.get("discount_orders", 0), totals.get("orders", 0))
    totals["flagged_gmv"] = round(sum(r.get("gmv") for r in rows if r.flagged), 2)
    totals["flagged_streams"] = sum(1 for r in rows if r.flagged)
    return Dashboard(
        project,
        present + absent,
        totals,
        stored.book_version,
        sort,
        descending,
        "settled_net" not in stored.totals,
        behind=stored.behind_since is not None,
    )


def period_medians(rows: list[StreamRow]) -> dict:
    """The median stream of the period, figure by figure (streams that have
    the figure; orders without a source_event are no stream)."""
    out = {}
    streams = [r for r in rows if r.is_stream]
    for key in MEDIAN_KEYS:
        values = [r.get(key) for r in streams if r.get(key) is not None]
        out[key] = median(values) if values else None
    return out


@dataclass
class StreamPage:
    row: StreamRow
    figures: LiveStreamFigures
    medians: dict
    streams: int
    history: list[ComplianceRecord]
    settlement_missing: bool
    behind: bool = False

    @property
    def hours(self) -> list[int]:
        return self.figures.by_hour or [0] * 24


def stream_page(project: Project | None, source_event: str) -> StreamPage | None:
    """One stream beside the period's median stream, or None when the book
    has no such stream."""
    if project is None:
        return None
    figures = LiveStreamFigures.objects.filter(project=project, source_event=source_event).first()
    if figures is None:
        return None
    everyone = _rows(
        project,
        list(
            LiveStreamFigures.objects.filter(project=project).defer(
                "by_hour", "programs", "discount_codes", "refund_tags", "exceptions"
            )
        ),
    )
    row = next(r for r in everyone if r.source_event == source_event)
    history = list(
        ComplianceRecord.objects.filter(project=project, source_event=source_event)
        .select_related("created_by__user")
        .order_by("-id")[:100]
    )
    return StreamPage(
        row=row,
        figures=figures,
        medians=period_medians(everyone),
        streams=sum(1 for r in everyone if r.is_stream),
        history=history,
        settlement_missing=row.settled_net is None,
        behind=LiveBookTotals.objects.filter(project=project, behind_since__isnull=False).exists(),
    )
