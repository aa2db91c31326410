"""Revenue rules — the one place they live.

Every imported row ends in one revenue *state*:

    recognised  a paid row, not a duplicate, nothing blocking it: verified paid revenue
    held        a paid row (or a row Huber's evidence calls paid) with an open exception:
                recognition is blocked for this row only (the import is `partial`)
    pending     never counts
    refunded    never counts (also a refunded-then-rebought original: the money
                counts once, on the new paid order)
    duplicate   a repeat of an order seen earlier; counts only as a duplicate

The state comes from the export (the row's classification and exception code,
fixed at import time) and then from Huber's evidence tag (OrderTag, the newest
OrderEvidence):

    refunded    removes the order from recognisable revenue
    paid        confirms a paid row (and clears an evidence exception on it); on a row
                the export calls refunded or pending it contradicts the export:
                held, exception `tag_conflict` owned by Louis
    unresolved  holds the order back (exception `unresolved`, owner Huber)
    rebought    links a refund to the later paid order so it counts once: with a
                later paid order of the same customer and programme the tagged
                order is the refunded original (refunded, the later one is the
                rebuy); otherwise a paid tagged order with an earlier order of the
                same customer and programme is the rebuy and that earlier order is
                the refunded original; with neither, exception `rebuy_unmatched`

Aggregates are computed in two layers so that re-computing after every tagging
action stays cheap on a 1,000,000-row import: the import-time aggregates (the
export alone) are computed once in pandas and kept in ImportSummary.totals
["import_time"]; `recompute_summary` reads only the tagged rows (and the rows a
rebuy tag links to), computes their change of state and adds the difference.
"""

from reconciliation.services.revenue.decision import (  # noqa: F401
    RevenueStatus,
    book_for,
    decision_delta,
    latest_decision,
    record_revenue_decision,
    revenue_status,
)
from reconciliation.services.revenue.rules import (  # noqa: F401
    AMOUNT_METRICS,
    DIMENSIONS,
    EVIDENCE_RESOLVES,
    EXCEPTION_LIST_LIMIT,
    METRICS,
    VERIFIED_IMPORT_STATUSES,
    Classification,
    ExceptionCode,
    ExceptionRule,
    State,
    Tag,
    exception_owner,
    export_rebuys,
    export_states,
    taipei_days,
)
from reconciliation.services.revenue.summary import (  # noqa: F401
    advance_book,
    rebuild_book_summary,
    recompute_summary,
)
from reconciliation.services.revenue.tally import (  # noqa: F401
    create_summary,
    effective_status,
    import_time_summary,
    open_exceptions,
)
