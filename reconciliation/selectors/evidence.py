"""Huber's evidence queue: which orders, filtered how, one page at a time.

The queue is the orders (OrderRows) of one accepted import, by default those
of the training programme. Pages are keyset pages on OrderRow.id (an opaque
cursor, never OFFSET), so the 560th page costs what the first does; a page is
one query whatever its size, and the counts per tag are two more.

OrderRows never change (append-only), so facts about an import's rows — which
programme is the training programme, which programmes exist, how many rows a
programme has — are computed once and cached for good; only the tag counts
(OrderTag, which changes) are counted on every view."""

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.errors import Conflict, InvalidInput, NotFound
from reconciliation.inputs import date_range_message, in_year_range, parse_uuid
from reconciliation.models import OrderEvidence, OrderRow, OrderTag, ReconciliationImport

UNTAGGED = "untagged"
ALL_TAGS = "all"
ALL_PROGRAMS = "*"
TAG_FILTERS = (UNTAGGED, *OrderEvidence.Tag.values)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# The fields a filter has; the page's query string, the API's query and the
# API's POST `filter` object all use these names.
FILTER_KEYS = (
    "program_id",
    "tag",
    "payment_status",
    "classification",
    "source_event",
    "discount_code",
    "date_from",
    "date_to",
    "q",
)
# Imports that produced classified rows; a failed import has nothing to tag.
USABLE_IMPORT_STATUSES = (
    ReconciliationImport.Status.ACCEPTED,
    ReconciliationImport.Status.PARTIAL,
)
_CACHE_SECONDS = 60 * 60 * 24


@dataclass(frozen=True)
class QueueFilter:
    """One queue filter. `program_id` None means every programme; `tag` ''
    means any tag (or none), 'untagged' means no OrderTag row."""

    program_id: str | None = None
    tag: str = ""
    payment_status: str = ""
    classification: str = ""
    source_event: str = ""
    discount_code: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    @property
    def narrows_beyond_tag(self) -> bool:
        """True when more than programme and tag restrict the rows (then the
        number of matching rows needs its own count)."""
        return bool(
            self.payment_status
            or self.classification
            or self.source_event
            or self.discount_code
            or self.date_from
            or self.date_to
            or self.q
        )

    def as_params(self) -> dict[str, str]:
        """The filter as query-string/JSON values (blank ones left out)."""
        params = {
            "program_id": ALL_PROGRAMS if self.program_id is None else self.program_id,
            "tag": self.tag or ALL_TAGS,
        }
        for key in ("payment_status", "classification", "source_event", "discount_code", "q"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        for key in ("date_from", "date_to"):
            if getattr(self, key):
                params[key] = getattr(self, key).isoformat()
        return params


@dataclass(slots=True)
class QueueRow:
    """One order of the queue with its current tag, read as plain values:
    building full model instances for a row, its tag, evidence, profile and
    user cost more than the query itself."""

    id: int
    order_id: str
    row_number: int
    created_at: datetime | None
    customer_key: str
    program_id: str
    amount: Decimal
    payment_status: str
    payment_ref: str
    discount_code: str
    source_event: str
    classification: str
    rebuy_of: str
    exception_code: str
    tag: str | None
    ev_payment_ref: str | None
    ev_refund_ref: str | None
    ev_evidence_ref: str | None
    ev_note: str | None
    ev_created_at: datetime | None
    ev_by_name: str | None
    ev_by_username: str | None

    @property
    def tagged_by(self) -> str:
        return self.ev_by_name or self.ev_by_username or ""

    @property
    def evidence_summary(self) -> str:
        """The reference a person looks for first."""
        return (
            self.ev_payment_ref or self.ev_refund_ref or self.ev_evidence_ref or self.ev_note or ""
        )


# QueueRow field → the lookup it is read from.
QUEUE_ROW_FIELDS = {
    **{name: name for name in QueueRow.__dataclass_fields__ if not name.startswith(("tag", "ev_"))},
    "tag": "current_tag__tag",
    "ev_payment_ref": "current_tag__evidence__payment_ref",
    "ev_refund_ref": "current_tag__evidence__refund_ref",
    "ev_evidence_ref": "current_tag__evidence__evidence_ref",
    "ev_note": "current_tag__evidence__note",
    "ev_created_at": "current_tag__evidence__created_at",
    "ev_by_name": "current_tag__evidence__created_by__display_name",
    "ev_by_username": "current_tag__evidence__created_by__user__username",
}


def as_queue_rows(queryset, *, stream: bool = False):
    """QueueRows of an OrderRow queryset (ordering and slicing kept); with
    `stream`, read in chunks (exports of a million rows)."""
    values = queryset.values_list(*QUEUE_ROW_FIELDS.values())
    if stream:
        values = values.iterator(chunk_size=2000)
    return (QueueRow(*row) for row in values)


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    prev_cursor: str | None
    page_size: int


@dataclass
class TagCounts:
    total: int
    by_tag: dict[str, int] = field(default_factory=dict)

    @property
    def tagged(self) -> int:
        return sum(self.by_tag.values())

    @property
    def untagged(self) -> int:
        return max(self.total - self.tagged, 0)

    @property
    def progress(self) -> float:
        """Share of the queue that carries a tag, 0..1."""
        return self.tagged / self.total if self.total else 0.0

    @property
    def percent(self) -> int:
        # Floor, so 27,999 of 28,000 never reads as 100 %.
        return int(self.progress * 100)

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "untagged": self.untagged,
            "tagged": self.tagged,
            **{tag: self.by_tag.get(tag, 0) for tag in OrderEvidence.Tag.values},
            "progress": round(self.progress, 4),
        }


# --- Which import, which programme -------------------------------------------


def latest_accepted_import() -> ReconciliationImport | None:
    return (
        ReconciliationImport.objects.filter(status__in=USABLE_IMPORT_STATUSES)
        .select_related("data_request")
        .order_by("-created_at")
        .first()
    )


def resolve_import(import_id=None) -> ReconciliationImport:
    """The named import, else the latest accepted one; 409 when there is none
    yet (nothing can be tagged before Wade's file is imported)."""
    if import_id:
        # Not a UUID names nothing: the same 404 as an unknown id.
        import_id = parse_uuid(import_id)
        found = (
            ReconciliationImport.objects.filter(pk=import_id, status__in=USABLE_IMPORT_STATUSES)
            .select_related("data_request")
            .first()
            if import_id
            else None
        )
        if found is None:
            raise NotFound("import_not_found", _("找不到這個已驗收的對帳匯入。"))
        return found
    found = latest_accepted_import()
    if found is None:
        raise Conflict(
            "no_accepted_import",
            _("還沒有已驗收的對帳匯入：Wade 的訂單付款檔驗收並匯入後，佐證佇列才會列出訂單。"),
        )
    return found


def _cached(key: str, compute):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, _CACHE_SECONDS)
    return value


def training_program_id(reconciliation_import: ReconciliationImport) -> str | None:
    """The programme Huber verifies: the TRAINING_PROGRAM_ID setting, else the
    programme whose paid rows most often cost TRAINING_PROGRAM_AMOUNT."""
    if settings.TRAINING_PROGRAM_ID:
        return settings.TRAINING_PROGRAM_ID
    amount = settings.TRAINING_PROGRAM_AMOUNT

    def compute():
        top = (
            OrderRow.objects.filter(
                reconciliation_import=reconciliation_import, payment_status="paid", amount=amount
            )
            .values("program_id")
            .annotate(n=Count("id"))
            .order_by("-n", "program_id")
            .first()
        )
        # '' caches "no such programme" (None would mean "not cached").
        return top["program_id"] if top else ""

    return _cached(f"evidence:training:{reconciliation_import.pk}:{amount}", compute) or None


def program_choices(reconciliation_import: ReconciliationImport) -> list[tuple[str, int]]:
    """(program_id, row count) of the import, most rows first."""

    def compute():
        rows = (
            OrderRow.objects.filter(reconciliation_import=reconciliation_import)
            .values("program_id")
            .annotate(n=Count("id"))
            .order_by("-n", "program_id")
        )
        return [(row["program_id"], row["n"]) for row in rows[:200]]

    return _cached(f"evidence:programs:{reconciliation_import.pk}", compute)


def first_row_id(reconciliation_import: ReconciliationImport) -> int | None:
    """Where the import's (consecutive) row ids start; fixed once imported."""

    def compute():
        found = OrderRow.objects.filter(reconciliation_import=reconciliation_import).aggregate(
            first=Min("id")
        )["first"]
        return found if found is not None else 0

    return _cached(f"evidence:first-id:{reconciliation_import.pk}", compute) or None


def scope_total(reconciliation_import: ReconciliationImport, program_id: str | None) -> int:
    """Rows of the import in the programme (all rows when program_id is None)."""

    def compute():
        rows = OrderRow.objects.filter(reconciliation_import=reconciliation_import)
        if program_id is not None:
            rows = rows.filter(program_id=program_id)
        return rows.count()

    return _cached(f"evidence:total:{reconciliation_import.pk}:{program_id}", compute)


# --- Filters -------------------------------------------------------------------


def _one(params, key) -> str:
    value = params.get(key)
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    return "" if value is None else str(value).strip()


def _parse_date(params, key) -> date | None:
    value = _one(params, key)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            "invalid_filter", {"field": key, "message": _("日期格式應為 YYYY-MM-DD。")}
        ) from exc
    if not in_year_range(day):
        raise InvalidInput("invalid_filter", {"field": key, "message": date_range_message()})
    return day


def parse_filter(params, *, reconciliation_import, default_tag: str = "") -> QueueFilter:
    """A QueueFilter from query parameters or a JSON object. A missing
    program_id means the training programme; '*' means every programme."""
    if "program_id" in params:
        program = _one(params, "program_id")
        program_id = None if program in ("", ALL_PROGRAMS) else program
    else:
        program_id = training_program_id(reconciliation_import)
    if "tag" in params:
        tag = _one(params, "tag")
        tag = "" if tag in ("", ALL_TAGS) else tag
    else:
        tag = default_tag
    if str(_one(params, "untagged")).lower() in ("1", "true", "yes", "on"):
        tag = UNTAGGED
    if tag and tag not in TAG_FILTERS:
        raise InvalidInput(
            "invalid_filter",
            {
                "field": "tag",
                "message": _("tag 只能是 untagged、paid、refunded、rebought、unresolved 或 all。"),
            },
        )
    classification = _one(params, "classification")
    if classification and classification not in OrderRow.Classification.values:
        raise InvalidInput(
            "invalid_filter",
            {
                "field": "classification",
                "message": _("classification 只能是 paid、pending、refunded、duplicate。"),
            },
        )
    payment_status = _one(params, "payment_status")
    if payment_status and payment_status not in ("paid", "pending", "refunded"):
        raise InvalidInput(
            "invalid_filter",
            {
                "field": "payment_status",
                "message": _("payment_status 只能是 paid、pending、refunded。"),
            },
        )
    date_from = _parse_date(params, "date_from")
    date_to = _parse_date(params, "date_to")
    if date_from and date_to and date_to < date_from:
        raise InvalidInput(
            "invalid_filter", {"field": "date_to", "message": _("結束日期早於開始日期。")}
        )
    return QueueFilter(
        program_id=program_id,
        tag=tag,
        payment_status=payment_status,
        classification=classification,
        source_event=_one(params, "source_event"),
        discount_code=_one(params, "discount_code"),
        date_from=date_from,
        date_to=date_to,
        q=_one(params, "q")[:200],
    )


def _day_start(day: date) -> datetime:
    # Days are Taipei days, as Huber reads the dates on the page.
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def queue_rows(reconciliation_import: ReconciliationImport, flt: QueueFilter):
    """The rows matching the filter, unordered (pages add the keyset order;
    bulk tagging takes them all)."""
    rows = OrderRow.objects.filter(reconciliation_import=reconciliation_import)
    if flt.program_id is not None:
        rows = rows.filter(program_id=flt.program_id)
    if flt.tag == UNTAGGED:
        rows = rows.filter(current_tag__isnull=True)
    elif flt.tag:
        rows = rows.filter(current_tag__tag=flt.tag)
    if flt.payment_status:
        rows = rows.filter(payment_status=flt.payment_status)
    if flt.classification:
        rows = rows.filter(classification=flt.classification)
    if flt.source_event:
        rows = rows.filter(source_event=flt.source_event)
    if flt.discount_code:
        rows = rows.filter(discount_code=flt.discount_code)
    if flt.date_from:
        rows = rows.filter(created_at__gte=_day_start(flt.date_from))
    if flt.date_to:
        rows = rows.filter(created_at__lt=_day_start(flt.date_to + timedelta(days=1)))
    if flt.q:
        # Exact matches: an order id or payment ref is pasted, not typed in
        # part, and exact lookups stay cheap at a million rows.
        rows = rows.filter(
            Q(order_id=flt.q)
            | Q(payment_ref=flt.q)
            | Q(current_tag__evidence__payment_ref=flt.q)
            | Q(current_tag__evidence__refund_ref=flt.q)
        )
    return rows


# --- Keyset pages --------------------------------------------------------------


def encode_cursor(direction: str, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{direction}{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, row_id = raw[0], int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise InvalidInput("invalid_cursor", _("分頁游標無效，請從第一頁重新開始。")) from exc
    if direction not in ("n", "p") or row_id < 0:
        raise InvalidInput("invalid_cursor", _("分頁游標無效，請從第一頁重新開始。"))
    return direction, row_id


def clamp_page_size(value) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        return DEFAULT_PAGE_SIZE
    return min(max(size, 1), MAX_PAGE_SIZE)


def queue_page(
    reconciliation_import: ReconciliationImport,
    flt: QueueFilter,
    *,
    cursor: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> QueuePage:
    """One page in OrderRow.id order, in one query: 'n<id>' cursors page
    forward from id, 'p<id>' backward; one extra row tells whether more
    follow."""
    rows = queue_rows(reconciliation_import, flt)
    # An import's rows have consecutive ids. Saying where they start lets
    # PostgreSQL's primary-key walk begin there: without it, with millions of
    # rows of older imports stored in front, the planner's "LIMIT 51 on the
    # pkey" plan skipped them one by one (0.6 s a page).
    first_id = first_row_id(reconciliation_import)
    if first_id is not None:
        rows = rows.filter(id__gte=first_id)
    keys = ["id"]
    direction, anchor = decode_cursor(cursor) if cursor else ("n", None)
    if direction == "n":
        if anchor is not None:
            rows = rows.filter(id__gt=anchor)
        fetched = list(as_queue_rows(rows.order_by(*keys)[: page_size + 1]))
        more = len(fetched) > page_size
        fetched = fetched[:page_size]
        next_cursor = encode_cursor("n", fetched[-1].id) if more and fetched else None
        prev_cursor = encode_cursor("p", fetched[0].id) if anchor is not None and fetched else None
    else:
        fetched = list(
            as_queue_rows(
                rows.filter(id__lt=anchor).order_by(*(f"-{k}" for k in keys))[: page_size + 1]
            )
        )
        more = len(fetched) > page_size
        fetched = list(reversed(fetched[:page_size]))
        prev_cursor = encode_cursor("p", fetched[0].id) if more and fetched else None
        next_cursor = encode_cursor("n", fetched[-1].id) if fetched else None
    return QueuePage(
        rows=fetched, next_cursor=next_cursor, prev_cursor=prev_cursor, page_size=page_size
    )


# --- Counts ----------------------------------------------------------------------


def tag_counts(reconciliation_import: ReconciliationImport, program_id: str | None) -> TagCounts:
    """Counts per tag of the programme's rows (or the whole import), with the
    total they progress toward. A programme is counted from its rows (the
    programme index, then the tag by primary key), so the cost follows the
    programme's size, not how many orders of other programmes carry tags."""
    if program_id is None:
        tags = OrderTag.objects.filter(reconciliation_import=reconciliation_import)
        rows = tags.values("tag").annotate(n=Count("pk"))
        by_tag = {row["tag"]: row["n"] for row in rows}
    else:
        rows = (
            OrderRow.objects.filter(
                reconciliation_import=reconciliation_import,
                program_id=program_id,
                current_tag__isnull=False,
            )
            .values("current_tag__tag")
            .annotate(n=Count("id"))
        )
        by_tag = {row["current_tag__tag"]: row["n"] for row in rows}
    return TagCounts(total=scope_total(reconciliation_import, program_id), by_tag=by_tag)


def matching_count(
    reconciliation_import: ReconciliationImport, flt: QueueFilter, counts: TagCounts
) -> int:
    """How many rows the filter matches ("tag every order matching this
    filter" says the number before it acts). Programme and tag alone are read
    off the counts; other filters need a count of their own."""
    if not flt.narrows_beyond_tag:
        if flt.tag == UNTAGGED:
            return counts.untagged
        if flt.tag:
            return counts.by_tag.get(flt.tag, 0)
        return counts.total
    return queue_rows(reconciliation_import, flt).count()


def without_tag(flt: QueueFilter) -> QueueFilter:
    return replace(flt, tag="")
