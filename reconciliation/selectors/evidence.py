"""Huber's evidence queue: which orders, filtered how, one page at a time.

The queue is the project's order book (Order: the current state of every
order, whatever file brought it), by default the orders of the training
programme. Pages are keyset pages on Order.id (an opaque cursor, never
OFFSET), so the 560th page costs what the first does; a page is one query
whatever its size, and the counts per tag are two more.

The book's orders change only when an import moves it, so facts about them —
which programme is the training programme, which programmes exist, how many
orders a programme has — are cached per book import (BookSummary.as_of_import);
only the tag counts (OrderTag, which changes) are counted on every view."""

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.errors import Conflict, InvalidInput, NotFound
from reconciliation.inputs import date_range_message, in_year_range, parse_uuid
from reconciliation.models import (
    BookSummary,
    Order,
    OrderEvidence,
    OrderRow,
    OrderTag,
    Project,
    ReconciliationImport,
)
from reconciliation.selectors.settlement import checked_settlement_state, settlement_filter

UNTAGGED = "untagged"
ALL_TAGS = "all"
ALL_PROGRAMS = "*"
# discount_code=* : every order that carries a discount code.
ANY_DISCOUNT_CODE = "*"
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
    "changed",
    "stale_tag",
    "import_id",
    "settlement_state",
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
    # Orders a later import changed; orders whose tag predates such a change;
    # the orders one import's file had.
    changed: bool = False
    stale_tag: bool = False
    import_id: str = ""
    # One settlement state (settled … missing); see selectors.settlement.
    settlement_state: str = ""

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
            or self.changed
            or self.stale_tag
            or self.import_id
            or self.settlement_state
        )

    def as_params(self) -> dict[str, str]:
        """The filter as query-string/JSON values (blank ones left out)."""
        params = {
            "program_id": ALL_PROGRAMS if self.program_id is None else self.program_id,
            "tag": self.tag or ALL_TAGS,
        }
        for key in (
            "payment_status",
            "classification",
            "source_event",
            "discount_code",
            "q",
            "import_id",
            "settlement_state",
        ):
            if getattr(self, key):
                params[key] = getattr(self, key)
        for key in ("changed", "stale_tag"):
            if getattr(self, key):
                params[key] = "1"
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
    versions: int
    changed_import_id: object
    tag: str | None
    tag_stale: bool | None
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
    "tag_stale": "current_tag__stale",
    "ev_payment_ref": "current_tag__evidence__payment_ref",
    "ev_refund_ref": "current_tag__evidence__refund_ref",
    "ev_evidence_ref": "current_tag__evidence__evidence_ref",
    "ev_note": "current_tag__evidence__note",
    "ev_created_at": "current_tag__evidence__created_at",
    "ev_by_name": "current_tag__evidence__created_by__display_name",
    "ev_by_username": "current_tag__evidence__created_by__user__username",
}


def as_queue_rows(queryset, *, stream: bool = False):
    """QueueRows of an Order queryset (ordering and slicing kept); with
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


# --- Which book, which programme -------------------------------------------


def resolve_book(project: Project | None = None) -> BookSummary:
    """The project's (default: the first project's) order book; 409 when no
    accepted import built it yet (nothing can be tagged before Wade's file
    is imported)."""
    if project is None:
        project = Project.objects.order_by("created_at").first()
    book = (
        BookSummary.objects.filter(project=project).select_related("project").first()
        if project is not None
        else None
    )
    if book is None or book.as_of_import_id is None:
        raise Conflict(
            "no_accepted_import",
            _("還沒有已驗收的對帳匯入：Wade 的訂單付款檔驗收並匯入後，佐證佇列才會列出訂單。"),
        )
    return book


def resolve_import(book: BookSummary, import_id) -> ReconciliationImport:
    """An import of the book's project (the `import_id` filter); 404 for
    anything else, a malformed id included."""
    import_id = parse_uuid(import_id)
    found = (
        ReconciliationImport.objects.filter(
            pk=import_id,
            data_request__project_id=book.project_id,
            status__in=USABLE_IMPORT_STATUSES,
        )
        .select_related("data_request", "upload")
        .first()
        if import_id
        else None
    )
    if found is None:
        raise NotFound("import_not_found", _("找不到這個已驗收的對帳匯入。"))
    return found


def _cached(key: str, compute):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, _CACHE_SECONDS)
    return value


def _book_key(book: BookSummary) -> str:
    # The orders change only with an import: cached facts follow the import.
    return f"{book.project_id}:{book.as_of_import_id}"


def training_program_id(book: BookSummary) -> str | None:
    """The programme Huber verifies: the TRAINING_PROGRAM_ID setting, else the
    programme whose paid orders most often cost TRAINING_PROGRAM_AMOUNT."""
    if settings.TRAINING_PROGRAM_ID:
        return settings.TRAINING_PROGRAM_ID
    amount = settings.TRAINING_PROGRAM_AMOUNT

    def compute():
        top = (
            Order.objects.filter(project_id=book.project_id, payment_status="paid", amount=amount)
            .values("program_id")
            .annotate(n=Count("id"))
            .order_by("-n", "program_id")
            .first()
        )
        # '' caches "no such programme" (None would mean "not cached").
        return top["program_id"] if top else ""

    return _cached(f"evidence:training:{_book_key(book)}:{amount}", compute) or None


def program_choices(book: BookSummary) -> list[tuple[str, int]]:
    """(program_id, order count) of the book, most orders first."""

    def compute():
        rows = (
            Order.objects.filter(project_id=book.project_id)
            .values("program_id")
            .annotate(n=Count("id"))
            .order_by("-n", "program_id")
        )
        return [(row["program_id"], row["n"]) for row in rows[:200]]

    return _cached(f"evidence:programs:{_book_key(book)}", compute)


def scope_total(book: BookSummary, program_id: str | None) -> int:
    """Orders of the book in the programme (all orders when program_id is None)."""

    def compute():
        rows = Order.objects.filter(project_id=book.project_id)
        if program_id is not None:
            rows = rows.filter(program_id=program_id)
        return rows.count()

    return _cached(f"evidence:total:{_book_key(book)}:{program_id}", compute)


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


def _flag(params, key) -> bool:
    return str(_one(params, key)).lower() in ("1", "true", "yes", "on")


def parse_filter(params, *, book: BookSummary, default_tag: str = "") -> QueueFilter:
    """A QueueFilter from query parameters or a JSON object. A missing
    program_id means the training programme; '*' means every programme."""
    if "program_id" in params:
        program = _one(params, "program_id")
        program_id = None if program in ("", ALL_PROGRAMS) else program
    else:
        program_id = training_program_id(book)
    if "tag" in params:
        tag = _one(params, "tag")
        tag = "" if tag in ("", ALL_TAGS) else tag
    else:
        tag = default_tag
    if _flag(params, "untagged"):
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
    settlement_state = checked_settlement_state(_one(params, "settlement_state"))
    import_id = _one(params, "import_id") or _one(params, "import")
    if import_id:
        import_id = str(resolve_import(book, import_id).pk)
    return QueueFilter(
        changed=_flag(params, "changed"),
        stale_tag=_flag(params, "stale_tag"),
        import_id=import_id,
        settlement_state=settlement_state,
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


def queue_rows(project, flt: QueueFilter):
    """The book's orders matching the filter, unordered (pages add the keyset
    order; bulk tagging takes them all). `project`: a Project, a BookSummary
    or their pk."""
    project_id = getattr(project, "project_id", None) or getattr(project, "pk", project)
    rows = Order.objects.filter(project_id=project_id)
    if flt.program_id is not None:
        rows = rows.filter(**_one_programme(flt.program_id))
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
    if flt.discount_code == ANY_DISCOUNT_CODE:
        rows = rows.exclude(discount_code="")
    elif flt.discount_code:
        rows = rows.filter(discount_code=flt.discount_code)
    if flt.date_from:
        rows = rows.filter(created_at__gte=_day_start(flt.date_from))
    if flt.date_to:
        rows = rows.filter(created_at__lt=_day_start(flt.date_to + timedelta(days=1)))
    if flt.changed:
        rows = rows.filter(changed_import__isnull=False)
    if flt.stale_tag:
        rows = rows.filter(current_tag__stale=True)
    if flt.import_id:
        rows = rows.filter(
            Exists(
                OrderRow.objects.filter(
                    reconciliation_import_id=flt.import_id, order_id=OuterRef("order_id")
                )
            )
        )
    if flt.settlement_state:
        rows = settlement_filter(rows, flt.settlement_state)
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


def _one_programme(program_id: str) -> dict:
    """The programme as a range of one value, not an equality. Pages of one
    programme are read in (programme, id) order; with an equality the planner
    treats the programme as a constant, reads id order off the primary key and
    filters, and because the book's ids are grouped by programme that skips
    every order of the programmes before it — on PostgreSQL 45 ms for the
    training queue's first page and 580 ms for the last page of a small
    programme at 1,000,000 orders, against 0.4 ms on the programme index."""
    return {"program_id__gte": program_id, "program_id__lte": program_id}


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
    book: BookSummary,
    flt: QueueFilter,
    *,
    cursor: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> QueuePage:
    """One page in Order.id order, in one query: 'n<id>' cursors page
    forward from id, 'p<id>' backward; one extra row tells whether more
    follow."""
    rows = queue_rows(book, flt)
    # Within one programme (program_id, id) order is id order, on its index.
    keys = ["id"] if flt.program_id is None else ["program_id", "id"]
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


def tag_counts(book: BookSummary, program_id: str | None) -> TagCounts:
    """Counts per tag of the programme's orders (or the whole book), with the
    total they progress toward."""
    tags = OrderTag.objects.filter(project_id=book.project_id)
    if program_id is None:
        by_tag = _per_tag(tags)
    else:
        by_tag = _programme_tags(book, program_id, tags)
    return TagCounts(total=scope_total(book, program_id), by_tag=by_tag)


def _programme_tags(book: BookSummary, program_id: str, tags) -> dict[str, int]:
    """A programme's tags, read from the smaller side: the book's tags (each
    one's order by primary key) when there are fewer of them than orders in
    the programme, else the programme's orders (its index, then each one's
    tag by primary key). Either way the cost follows the smaller number —
    not the 800,000 orders of a big programme when 30 are tagged, nor every
    tag of the book for a programme of 50 orders."""
    tagged = tags.count()
    if not tagged:
        return {}
    if tagged < scope_total(book, program_id):
        programme = Order.objects.filter(pk=OuterRef("order_id")).values("program_id")[:1]
        return _per_tag(tags.annotate(program=Subquery(programme)).filter(program=program_id))
    rows = (
        Order.objects.filter(
            project_id=book.project_id,
            program_id=program_id,
            current_tag__isnull=False,
        )
        .values("current_tag__tag")
        .annotate(n=Count("id"))
    )
    return {row["current_tag__tag"]: row["n"] for row in rows}


def _per_tag(tags) -> dict[str, int]:
    return {row["tag"]: row["n"] for row in tags.values("tag").annotate(n=Count("pk"))}


def stale_count(book: BookSummary) -> int:
    """Tags given before their order changed (Huber looks at them again)."""
    return OrderTag.objects.filter(project_id=book.project_id, stale=True).count()


def matching_count(book: BookSummary, flt: QueueFilter, counts: TagCounts) -> int:
    """How many rows the filter matches ("tag every order matching this
    filter" says the number before it acts). Programme and tag alone are read
    off the counts; other filters need a count of their own."""
    if not flt.narrows_beyond_tag:
        if flt.tag == UNTAGGED:
            return counts.untagged
        if flt.tag:
            return counts.by_tag.get(flt.tag, 0)
        return counts.total
    return queue_rows(book, flt).count()


def without_tag(flt: QueueFilter) -> QueueFilter:
    return replace(flt, tag="")
