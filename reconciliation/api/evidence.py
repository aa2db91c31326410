"""The order book through the API: list the book's orders
with their tags, one order with its history and evidence, tag orders by id
or by filter. Huber and PLS tag, Louis reads."""

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from django.utils import timezone
from ninja import Field, Query, Router, Schema

from reconciliation import converters  # noqa: F401 - the anytext path converter
from reconciliation.api.common import ErrorOut, require
from reconciliation.errors import NotFound
from reconciliation.inputs import NOTE_MAX_LENGTH, Date, ModelText, Text
from reconciliation.models import OrderEvidence, OrderRow
from reconciliation.permissions import Action
from reconciliation.selectors import evidence as queue
from reconciliation.selectors import orders as order_selectors
from reconciliation.selectors import settlement as settlement_selectors
from reconciliation.services.evidence import tag_orders

router = Router(tags=["evidence"])


class EvidenceOut(Schema):
    tag: str
    payment_ref: str
    refund_ref: str
    evidence_ref: str
    note: str
    tagged_by: str
    tagged_at: datetime


class OrderOut(Schema):
    id: int
    order_id: str
    row_number: int
    created_at: datetime | None
    customer_key: str = Field(description="HMAC-hashed customer key; never a raw identifier")
    program_id: str
    amount: Decimal
    payment_status: str
    payment_ref: str
    discount_code: str
    source_event: str
    classification: str
    rebuy_of: str
    exception_code: str
    versions: int = Field(description="how many versions of the order files have brought")
    changed: bool = Field(description="a later file changed the order after it first arrived")
    tag: str | None = Field(description="current evidence tag, null when untagged")
    stale_tag: bool = Field(description="the order changed after it was tagged")
    evidence: EvidenceOut | None


class CountsOut(Schema):
    total: int
    untagged: int
    tagged: int
    paid: int
    refunded: int
    rebought: int
    unresolved: int
    progress: float = Field(description="tagged / total, 0..1")


class OrdersOut(Schema):
    book_version: int
    import_id: UUID | None = Field(description="the import_id filter, when given")
    program_id: str | None = Field(description="the programme listed; null = every programme")
    filter: dict
    results: list[OrderOut]
    next_cursor: str | None
    prev_cursor: str | None
    matching: int = Field(description="orders matching the filter, across all pages")
    counts: CountsOut


class FilterIn(Schema):
    program_id: ModelText(OrderRow, "program_id") | None = Field(
        None, description="default: the training programme; '*' for every programme"
    )
    tag: Text(20) | None = Field(
        None, description="untagged, paid, refunded, rebought, unresolved, all"
    )
    untagged: bool = False
    payment_status: Text(20) | None = None
    classification: Text(20) | None = None
    source_event: ModelText(OrderRow, "source_event") | None = None
    discount_code: ModelText(OrderRow, "discount_code") | None = None
    date_from: Date | None = None
    date_to: Date | None = None
    q: ModelText(OrderRow, "payment_ref") | None = Field(
        None, description="exact order_id or payment_ref"
    )
    changed: bool = Field(False, description="only orders a later file changed")
    stale_tag: bool = Field(False, description="only orders whose tag predates a change")
    import_id: UUID | None = Field(None, description="only the orders that import's file had")
    settlement_state: Text(20) | None = Field(
        None,
        description="settled, refund_settled, partially_refunded, over_amount, "
        "amount_mismatch, expected or missing",
    )


class OrdersQuery(FilterIn):
    """The queue filter plus which page."""

    cursor: Text(200) | None = None
    limit: int = Field(queue.DEFAULT_PAGE_SIZE, ge=1, le=queue.MAX_PAGE_SIZE)


class EvidenceIn(Schema):
    order_ids: list[ModelText(OrderRow, "order_id")] | None = None
    filter: FilterIn | None = None
    tag: OrderEvidence.Tag
    # The column limits are the tagging service's (422 `too_long` naming the
    # field); the schema only bounds the body and refuses a NUL.
    payment_ref: Text(NOTE_MAX_LENGTH) = ""
    refund_ref: Text(NOTE_MAX_LENGTH) = ""
    evidence_ref: Text(NOTE_MAX_LENGTH) = ""
    note: Text(NOTE_MAX_LENGTH) = ""
    expected_count: int | None = Field(
        None, ge=0, description="refuse (409) when the filter now matches more orders than this"
    )


class TaggedOut(Schema):
    tagged: int
    tag: str
    book_version: int
    program_id: str | None = Field(description="the programme `counts` are for; null = all")
    audit_event_id: int | None
    counts: CountsOut
    revenue: dict | None = Field(description="the book's recomputed totals")


class VersionOut(Schema):
    import_id: UUID
    upload_name: str
    imported_at: datetime
    row_number: int
    change: str = Field(description="new, changed, unchanged or duplicate")
    changed_fields: list[str]
    payment_status: str
    amount: Decimal
    payment_ref: str
    classification: str
    current: bool


class EvidenceEntryOut(EvidenceOut):
    version_row_number: int
    version_import_id: UUID
    on_current_version: bool


class SettlementReasonOut(Schema):
    field: str = Field(description="the field that differs: amount")
    expected: float = Field(description="the order's amount")
    settled: float = Field(description="the settled gross the provider's lines add up to")
    difference: float = Field(description="settled − expected")
    fee: float
    fee_rate: float | None = Field(description="fee / settled gross; null when nothing settled")


class SettlementAcceptanceOut(Schema):
    id: int = Field(description="undo with POST /settlement-acceptances/{id}/undo")
    expected_amount: float
    settled_gross: float = Field(description="the settled gross Louis accepted")
    note: str
    created_by: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    missing_from_snapshot: bool
    history: list[VersionOut]
    evidence_history: list[EvidenceEntryOut]
    settlement_state: str | None = Field(
        None, description="null before any settlement file or for an order not owed one"
    )
    settlement_lines: list[dict] = Field(description="settlement lines matched to the order")
    difference_accepted: bool = Field(
        False,
        description="settled although the settled amount differs from the order's: "
        "Louis (or a manual match) accepted the difference",
    )
    settlement_reason: SettlementReasonOut | None = Field(
        None,
        description="why the settled amount is not the order's: for over_amount, "
        "amount_mismatch and an accepted difference; null otherwise",
    )
    settlement_acceptance: SettlementAcceptanceOut | None = Field(
        None,
        description="Louis's live acceptance; it no longer holds (difference_accepted "
        "false) once a later line moved the settled gross he accepted",
    )


def _params(model: Schema) -> dict:
    """Only the fields the caller set, so a missing program_id still means
    the training programme."""
    data = model.dict(exclude_unset=True, exclude_none=True)
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in data.items()}


def order_out(row: queue.QueueRow) -> dict:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "row_number": row.row_number,
        "created_at": timezone.localtime(row.created_at) if row.created_at else None,
        "customer_key": row.customer_key,
        "program_id": row.program_id,
        "amount": row.amount,
        "payment_status": row.payment_status,
        "payment_ref": row.payment_ref,
        "discount_code": row.discount_code,
        "source_event": row.source_event,
        "classification": row.classification,
        "rebuy_of": row.rebuy_of,
        "exception_code": row.exception_code,
        "versions": row.versions,
        "changed": row.changed_import_id is not None,
        "tag": row.tag,
        "stale_tag": bool(row.tag_stale),
        "evidence": (
            {
                "tag": row.tag,
                "payment_ref": row.ev_payment_ref,
                "refund_ref": row.ev_refund_ref,
                "evidence_ref": row.ev_evidence_ref,
                "note": row.ev_note,
                "tagged_by": row.tagged_by,
                "tagged_at": timezone.localtime(row.ev_created_at),
            }
            if row.tag
            else None
        ),
    }


@router.get(
    "/orders",
    response={200: OrdersOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="The order book's orders with their evidence tags (Louis, Huber, PLS)",
)
def list_orders(request, query: Query[OrdersQuery]):
    """Keyset pages in the book's order: pass `next_cursor` back as `cursor`.
    Counts per tag are for the programme (or the whole book with
    program_id=*), whatever the other filters."""
    require(request, Action.VIEW_EVIDENCE)
    book = queue.resolve_book()
    flt = queue.parse_filter(_params(query), book=book)
    page = queue.queue_page(book, flt, cursor=query.cursor, page_size=query.limit)
    counts = queue.tag_counts(book, flt.program_id)
    return {
        "book_version": book.version,
        "import_id": flt.import_id or None,
        "program_id": flt.program_id,
        "filter": flt.as_params(),
        "results": [order_out(row) for row in page.rows],
        "next_cursor": page.next_cursor,
        "prev_cursor": page.prev_cursor,
        "matching": queue.matching_count(book, flt, counts),
        "counts": counts.as_dict(),
    }


@router.get(
    "/orders/{anytext:order_id}",
    response={200: OrderDetailOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="One order of the book: its current state, every version and its evidence",
)
def get_order(request, order_id: str):
    require(request, Action.VIEW_EVIDENCE)
    book = queue.resolve_book()
    detail = order_selectors.order_detail(book.project, order_id)
    if detail is None:
        raise NotFound("order_not_found", "找不到這筆訂單。")
    return {
        **order_out(detail.row),
        "missing_from_snapshot": detail.missing_from_snapshot,
        "history": [v.as_dict() for v in detail.history],
        "evidence_history": [e.as_dict() for e in detail.evidence],
        **_settlement_out(settlement_selectors.order_settlement(detail.order)),
    }


def _settlement_out(outcome: settlement_selectors.OrderSettlementOutcome) -> dict:
    acceptance = outcome.acceptance
    return {
        "settlement_state": outcome.state,
        "settlement_lines": outcome.lines,
        "difference_accepted": outcome.difference_accepted,
        "settlement_reason": outcome.reason,
        "settlement_acceptance": (
            {
                "id": acceptance.pk,
                "expected_amount": float(acceptance.expected_amount),
                "settled_gross": float(acceptance.settled_gross),
                "note": acceptance.note,
                "created_by": acceptance.created_by.username,
                "created_at": timezone.localtime(acceptance.created_at),
            }
            if acceptance is not None
            else None
        ),
    }


@router.post(
    "/evidence",
    response={201: TaggedOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Tag orders by order_ids or by a filter (Huber, PLS)",
)
def post_evidence(request, payload: EvidenceIn):
    """One tag and its references for every order given. paid, refunded and
    rebought need payment_ref, refund_ref or evidence_ref. Writes one
    OrderEvidence per order, one audit event, and recomputes the scorecard."""
    require(request, Action.TAG_EVIDENCE)
    book = queue.resolve_book()
    queue_filter = None
    if payload.filter is not None:
        queue_filter = queue.parse_filter(_params(payload.filter), book=book)
    result = tag_orders(
        actor=request.auth,
        project=book.project,
        tag=payload.tag.value,
        order_ids=payload.order_ids,
        queue_filter=queue_filter,
        payment_ref=payload.payment_ref,
        refund_ref=payload.refund_ref,
        evidence_ref=payload.evidence_ref,
        note=payload.note,
        expected_count=payload.expected_count,
    )
    book.refresh_from_db()
    program_id = queue_filter.program_id if queue_filter else queue.training_program_id(book)
    return 201, {
        "tagged": result.tagged,
        "tag": result.tag,
        "book_version": book.version,
        "program_id": program_id,
        "audit_event_id": result.audit_event.pk if result.audit_event else None,
        "counts": queue.tag_counts(book, program_id).as_dict(),
        "revenue": _revenue(book),
    }


def _revenue(summary) -> dict | None:
    if summary is None:
        return None
    totals = summary.totals or {}
    return {
        "effective_status": summary.effective_status,
        "exception_count": summary.exception_count,
        **{
            key: totals.get(key)
            for key in (
                "paid_amount",
                "paid_orders",
                "held_orders",
                "refunded_orders",
                "rebuy_orders",
            )
            if key in totals
        },
    }
