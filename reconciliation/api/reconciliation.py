"""Reconciliation import, the scorecard as data and Louis's revenue decision."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from ninja import Router, Schema
from pydantic import ConfigDict, Field

from reconciliation.api.common import ErrorOut, require
from reconciliation.api.requests import ImportBriefOut
from reconciliation.inputs import ModelText
from reconciliation.models import RevenueDecision, SettlementImport
from reconciliation.permissions import Action
from reconciliation.selectors.memo import memoised
from reconciliation.selectors.scorecard import current_scorecard
from reconciliation.selectors.scorecard_api import scorecard_as_api
from reconciliation.services.imports import import_for_request
from reconciliation.services.revenue import record_revenue_decision, revenue_status

router = Router(tags=["reconciliation"])


class ImportIn(Schema):
    data_request_id: UUID


class ImportOut(ImportBriefOut):
    data_request_id: UUID


class SettlementImportOut(Schema):
    id: UUID
    upload_id: UUID
    data_request_id: UUID
    kind: str = "settlement"
    status: str
    layout: str
    line_count: int
    matched_count: int
    orphan_count: int
    duplicate_line_count: int
    mismatch_count: int
    scorecard_ref: str
    created_at: datetime


class DecisionIn(Schema):
    decision: Literal["approve", "pause"]
    note: ModelText(RevenueDecision, "note") = ""
    expected_book_version: int | None = Field(
        None, description="refuse (409 book_changed) when the book moved past this version"
    )


class DecisionOut(Schema):
    id: UUID
    import_id: UUID
    book_version: int
    verified_amount: Decimal
    verified_orders: int
    revenue_status: str
    decision: str
    note: str
    recognised_amount: Decimal | None
    settled_amount: Decimal | None = Field(
        None, description="the part of the recognised amount the provider settled"
    )
    unsettled_amount: Decimal | None = Field(
        None, description="the rest; both null before any settlement file"
    )
    held_back_rows: int
    decided_by: str
    created_at: datetime


class LatestOut(Schema):
    project: str | None
    period_start: date
    period_end: date
    revenue_status: str
    data_request: dict | None
    book: dict | None
    import_: dict | None = Field(None, alias="import")
    totals: dict | None
    by_day: list[dict] | None
    by_source_event: list[dict] | None
    by_program: list[dict] | None
    by_discount_code: list[dict] | None
    exceptions: list[dict]
    exception_count: int
    decision: dict | None
    settlement: dict | None = Field(
        None,
        description="null before any settlement import; then settled_gross, fees, "
        "settled_net, collected (實收), paid_unsettled_amount, expected_count, "
        "missing_count, orphan_count, mismatch_count, coverage",
    )
    next_job: dict | None

    model_config = ConfigDict(populate_by_name=True)


@router.post(
    "/reconciliation/import",
    response={
        201: ImportOut | SettlementImportOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
    summary="Classify the request's accepted upload (PLS, Louis, Wade); idempotent",
)
def run_import(request, payload: ImportIn):
    """One import per upload: asking again (or concurrently) answers with the
    same import. 409 `no_accepted_upload` when the request has no accepted file.
    A settlement request answers line_count, matched_count, orphan_count,
    duplicate_line_count and mismatch_count instead of the order counts."""
    require(request, Action.RUN_IMPORT)
    made = import_for_request(data_request_id=payload.data_request_id, actor=request.auth)
    if isinstance(made, SettlementImport):
        return 201, SettlementImportOut.from_orm(made)
    return 201, made


@router.get(
    "/reconciliation/latest",
    response={200: LatestOut, 403: ErrorOut},
    by_alias=True,
    summary="The scorecard as data; revenue_status unverified and totals null until an accepted import",
)
def latest(request):
    require(request, Action.VIEW_DASHBOARD)
    return 200, memoised("latest", (), lambda: _jsonable(scorecard_as_api(current_scorecard())))


@router.post(
    "/reconciliation/decision",
    response={201: DecisionOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Louis only: approve (recognised) or pause (paused) the order book as it is now",
)
def decide(request, payload: DecisionIn):
    require(request, Action.DECIDE_REVENUE)
    made = record_revenue_decision(
        decided_by=request.auth,
        decision=payload.decision,
        note=payload.note,
        expected_version=payload.expected_book_version,
    )
    return 201, {
        "id": made.pk,
        "import_id": made.reconciliation_import_id,
        "book_version": made.book_version,
        "verified_amount": made.verified_amount,
        "verified_orders": made.verified_orders,
        "revenue_status": revenue_status(made.project, made),
        "decision": made.decision,
        "note": made.note,
        "recognised_amount": made.recognised_amount,
        "settled_amount": made.settled_amount,
        "unsettled_amount": made.unsettled_amount,
        "held_back_rows": made.held_back_rows,
        "decided_by": made.decided_by.username,
        "created_at": made.created_at,
    }


def _jsonable(value):
    """UUIDs, dates and Decimals as JSON strings/numbers."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
