"""`GET /api/kolable/reconciliation/latest`: the scorecard as data. With no
verified import `totals` is None and no paid-revenue figure appears."""

from django.utils import timezone

from reconciliation.selectors.scorecard import Scorecard
from reconciliation.services.revenue import DIMENSIONS


def scorecard_as_api(card: Scorecard) -> dict:
    """`GET /api/kolable/reconciliation/latest`."""
    imported = card.reconciliation_import
    request = card.data_request
    return {
        "project": card.project.name if card.project else None,
        "period_start": card.period[0],
        "period_end": card.period[1],
        "revenue_status": card.revenue_status,
        "data_request": (
            {
                "id": request.pk,
                "status": request.status,
                "due_at": timezone.localtime(request.due_at),
                "data_owner": request.data_owner_profile.username,
            }
            if request
            else None
        ),
        "book": (
            {
                "orders": int(card.summary.totals.get("orders", 0)),
                "version": card.summary.version,
                "as_of": card.summary.updated_at,
                "as_of_import_id": card.summary.as_of_import_id,
                "imports": [
                    {
                        k: imp[k]
                        for k in (
                            "id",
                            "data_request_id",
                            "name",
                            "mode",
                            "status",
                            "row_count",
                            "new_orders",
                            "changed_orders",
                            "unchanged_orders",
                            "missing_from_snapshot",
                            "changes",
                            "created_at",
                        )
                    }
                    for imp in card.imports
                ],
            }
            if card.verified
            else None
        ),
        "import": (
            {
                "id": imported.pk,
                "data_request_id": imported.data_request_id,
                "upload_id": imported.upload_id,
                "status": imported.status,
                "effective_status": card.summary.effective_status,
                "row_count": imported.row_count,
                "paid_count": imported.paid_count,
                "pending_count": imported.pending_count,
                "refunded_count": imported.refunded_count,
                "duplicate_count": imported.duplicate_count,
                "scorecard_ref": imported.scorecard_ref,
                "created_at": imported.created_at,
            }
            if card.verified
            else None
        ),
        "totals": card.totals,
        **{name: card.dimension(name) for name in DIMENSIONS},
        "exceptions": card.exceptions + card.settlement_exceptions,
        "exception_count": card.summary.exception_count if card.verified else 0,
        "decision": (
            {
                "decision": card.decision.decision,
                "note": card.decision.note,
                "decided_by": card.decision.decided_by.username,
                "recognised_amount": card.decision.recognised_amount,
                "settled_amount": card.decision.settled_amount,
                "unsettled_amount": card.decision.unsettled_amount,
                "held_back_rows": card.decision.held_back_rows,
                "verified_amount": card.decision.verified_amount,
                "verified_orders": card.decision.verified_orders,
                "book_version": card.decision.book_version,
                "decided_at": card.decision.created_at,
                "created_at": card.decision.created_at,
                "changed_since_decision": card.changed_since_decision,
                "delta": card.delta,
            }
            if card.decision
            else None
        ),
        "settlement": card.settlement if card.verified else None,
        "next_job": (
            {
                "job_type": card.next_job.job_type,
                "rule": card.next_job.rule,
                "reason": card.next_job.reason,
            }
            if card.next_job
            else None
        ),
    }
