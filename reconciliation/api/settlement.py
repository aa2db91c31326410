"""Settlement lines, the manual matches of orphan lines (Huber, Louis) and
Louis's accepted differences."""

from datetime import datetime

from ninja import Field, Router, Schema

from reconciliation.api.common import ErrorOut, require
from reconciliation.inputs import Text
from reconciliation.permissions import Action
from reconciliation.selectors import settlement as selectors
from reconciliation.selectors.scorecard import default_project
from reconciliation.services.settlement.acceptance import accept_difference, undo_acceptance
from reconciliation.services.settlement.manual import match_line, undo_match

router = Router(tags=["settlement"])


class MatchIn(Schema):
    line_id: int
    order_id: Text(100)
    note: Text(500) = ""
    accept_difference: bool = Field(
        False, description="required when the line's amount differs from the order's"
    )


class UndoIn(Schema):
    note: Text(500) = ""


class MatchOut(Schema):
    id: int
    line_id: int
    order_id: str
    note: str
    accept_difference: bool
    difference: float
    created_by: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    order_settlement_state: str | None


def match_out(match) -> dict:
    return {
        "id": match.pk,
        "line_id": match.line_id,
        "order_id": match.order.order_id,
        "note": match.note,
        "accept_difference": match.accept_difference,
        "difference": float(match.difference),
        "created_by": match.created_by.username,
        "created_at": match.created_at,
        "undone_at": match.undone_at,
        "undone_by": match.undone_by.username if match.undone_by else None,
        "order_settlement_state": selectors.order_state(match.order),
    }


@router.post(
    "/settlement-matches",
    response={201: MatchOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Huber or Louis: match an orphan settlement line to an order, audited",
)
def create_match(request, payload: MatchIn):
    match = match_line(
        actor=request.auth,
        line_id=payload.line_id,
        order_id=payload.order_id,
        note=payload.note,
        accept_difference=payload.accept_difference,
    )
    return 201, match_out(match)


@router.post(
    "/settlement-matches/{match_id}/undo",
    response={200: MatchOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Huber or Louis: undo a manual match (the line is an orphan again), audited",
)
def undo(request, match_id: int, payload: UndoIn):
    return 200, match_out(undo_match(actor=request.auth, match_id=match_id, note=payload.note))


@router.get(
    "/settlement-lines/orphans",
    response={200: list[dict], 403: ErrorOut},
    summary="Orphan settlement lines (no order carries their payment_ref), with suggestions",
)
def orphans(request):
    require(request, Action.VIEW_DASHBOARD)
    project = default_project()
    if project is None:
        return 200, []
    out = []
    for line in selectors.orphan_lines(project)[:200]:
        out.append(
            {
                **selectors.line_out(line),
                "suggestions": [
                    {"order_id": o.order_id, "amount": float(o.amount)}
                    for o in selectors.suggestions(project, line)
                ],
            }
        )
    return 200, out


class AcceptanceIn(Schema):
    order_id: Text(100)
    note: Text(500) = Field("", description="required: why the difference is accepted")


class AcceptanceOut(Schema):
    id: int
    order_id: str
    expected_amount: float
    settled_gross: float
    note: str
    created_by: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    order_settlement_state: str | None


def acceptance_out(acceptance) -> dict:
    return {
        "id": acceptance.pk,
        "order_id": acceptance.order.order_id,
        "expected_amount": float(acceptance.expected_amount),
        "settled_gross": float(acceptance.settled_gross),
        "note": acceptance.note,
        "created_by": acceptance.created_by.username,
        "created_at": acceptance.created_at,
        "undone_at": acceptance.undone_at,
        "undone_by": acceptance.undone_by.username if acceptance.undone_by else None,
        "order_settlement_state": selectors.order_state(acceptance.order),
    }


@router.post(
    "/settlement-acceptances",
    response={
        201: AcceptanceOut,
        400: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
    },
    summary="Louis: accept the settled amount of an order that differs from it (note required), audited",
)
def create_acceptance(request, payload: AcceptanceIn):
    acceptance = accept_difference(
        actor=request.auth, project=default_project(), order_id=payload.order_id, note=payload.note
    )
    return 201, acceptance_out(acceptance)


@router.post(
    "/settlement-acceptances/{acceptance_id}/undo",
    response={200: AcceptanceOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Louis: undo an accepted difference (the order is a mismatch again), audited",
)
def undo_accepted(request, acceptance_id: int, payload: UndoIn):
    acceptance = undo_acceptance(actor=request.auth, acceptance_id=acceptance_id, note=payload.note)
    return 200, acceptance_out(acceptance)
