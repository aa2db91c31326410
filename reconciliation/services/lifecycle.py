"""The data request's lifecycle: which event moves a request from which
status to which, and the one compare-and-set that moves it.

Every status change of a DataRequest goes through ``move``: a conditional
UPDATE that changes the row only while it is still in one of the event's
source statuses, so of two callers racing for the same change exactly one
sees True — and only that one writes the audit event and the messages.
"""

from datetime import datetime

from django.db.models import Case, Q, Value, When
from django.utils import timezone

from reconciliation.models import DataRequest

S = DataRequest.Status


class Event:
    FILE_RECEIVED = "file_received"
    FILE_ACCEPTED = "file_accepted"
    FILE_FAILED = "file_failed"
    OVERDUE = "overdue"
    REMINDED = "reminded"
    DUE_EXTENDED = "due_extended"
    CLOSED = "closed"


# event → {status before: status after}. A status not listed for an event is
# one the event cannot happen in. An accepted request takes corrected files
# (a new import into the order book) but stays accepted while they are
# checked; an escalated request stays escalated until a file passes.
TRANSITIONS: dict[str, dict[str, str]] = {
    Event.FILE_RECEIVED: {
        S.OPEN: S.UPLOADED,
        S.SCHEMA_FAILED: S.UPLOADED,
        S.ESCALATED: S.UPLOADED,
    },
    Event.FILE_ACCEPTED: {status: S.ACCEPTED for status in DataRequest.TAKES_FILES},
    Event.FILE_FAILED: {S.UPLOADED: S.SCHEMA_FAILED},
    # Overdue and still owed a file; an escalated request is not escalated again.
    Event.OVERDUE: {S.OPEN: S.ESCALATED, S.UPLOADED: S.ESCALATED, S.SCHEMA_FAILED: S.ESCALATED},
    Event.REMINDED: {S.ESCALATED: S.ESCALATED},
    # A new due time sends an escalated request back to open (the escalation
    # stays in the history); the other states owed a file keep theirs.
    Event.DUE_EXTENDED: {
        S.OPEN: S.OPEN,
        S.UPLOADED: S.UPLOADED,
        S.SCHEMA_FAILED: S.SCHEMA_FAILED,
        S.ESCALATED: S.OPEN,
    },
    Event.CLOSED: {status: S.CLOSED for status in S.values if status != S.CLOSED},
}


def sources(event: str) -> tuple[str, ...]:
    """The statuses in which ``event`` can happen."""
    return tuple(TRANSITIONS[event])


def move(
    request_id,
    event: str,
    *,
    where: Q | None = None,
    now: datetime | None = None,
    **fields,
) -> bool:
    """Apply ``event`` to one request if it is (still) in a source status and
    matches ``where``; ``fields`` are written with the new status. True only
    for the caller whose UPDATE changed the row."""
    return bool(
        requests_for(event, where=where)
        .filter(pk=request_id)
        .update(
            status=_status_after(event),
            updated_at=now or timezone.now(),
            **fields,
        )
    )


def requests_for(event: str, *, where: Q | None = None):
    """The requests ``event`` can happen to now (for sweeps)."""
    queryset = DataRequest.objects.filter(status__in=sources(event))
    return queryset.filter(where) if where is not None else queryset


def _status_after(event: str):
    targets = TRANSITIONS[event]
    if len(set(targets.values())) == 1:
        return Value(next(iter(targets.values())))
    return Case(*(When(status=before, then=Value(after)) for before, after in targets.items()))
