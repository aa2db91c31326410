"""People sync after a settlement import commits (the outbox rows are
written in the import's transaction): Louis gets 實收 and the orders whose
settled amount he must accept or have chased; Wade the orphan lines of the
file and the paid orders newly past the settlement window, which he owns.
A file that brought nothing new (every line seen before) tells no one."""

from django.urls import reverse

from reconciliation.models import Notification, OrderSettlement, SettlementLine
from reconciliation.services.notify import absolute, people, queue_message, request_params
from reconciliation.services.settlement.results import MISMATCH_STATES

# How many mismatched orders and orphan references a message names.
NAMED = 5


def _mismatches(project) -> list[dict]:
    rows = (
        OrderSettlement.objects.filter(project=project, state__in=MISMATCH_STATES)
        .select_related("order")
        .order_by("order__order_id")[:NAMED]
    )
    return [
        {
            "order_id": r.order.order_id,
            "expected": float(r.order.amount),
            "settled": float(r.settled_gross),
        }
        for r in rows
    ]


def settlement_import_done(
    settlement_import, *, before: dict | None, after: dict
) -> list[Notification]:
    """Louis's and Wade's messages for one settlement import; `before` and
    `after` are the settlement figures around it (None before the first)."""
    data_request = settlement_import.data_request
    louis, wade, _huber = people(data_request)
    new_missing = max(0, after["missing_count"] - ((before or {}).get("missing_count") or 0))
    orphan_refs = list(
        settlement_import.lines.filter(line_state=SettlementLine.State.ORPHAN)
        .order_by("row_number")
        .values_list("payment_ref", flat=True)[:NAMED]
    )
    params = request_params(
        data_request,
        file_name=settlement_import.upload.original_name,
        lines=settlement_import.line_count,
        matched=settlement_import.matched_count,
        duplicates=settlement_import.duplicate_line_count,
        orphans=settlement_import.orphan_count,
        orphan_refs=orphan_refs,
        new_missing=new_missing,
        collected=after["collected"],
        settled_gross=after["settled_gross"],
        fees=after["fees"],
        mismatch_count=after["mismatch_count"],
        mismatches=_mismatches(settlement_import.project),
        orphans_url=absolute(reverse("settlement-orphans")),
        scorecard_url=settlement_import.scorecard_ref or absolute(reverse("scorecard")),
    )
    payload = {
        "settlement_import_id": str(settlement_import.pk),
        "upload_id": str(settlement_import.upload_id),
        "matched_count": settlement_import.matched_count,
        "orphan_count": settlement_import.orphan_count,
        "mismatch_count": after["mismatch_count"],
        "new_missing": new_missing,
    }
    written = []
    if louis is not None and settlement_import.matched_count:
        written += _queue(
            settlement_import, louis, "settlement_done_louis", params, payload, "owner"
        )
    if wade is not None and (settlement_import.orphan_count or new_missing):
        written += _queue(
            settlement_import, wade, "settlement_done_wade", params, payload, "data-owner"
        )
    return written


def _queue(settlement_import, person, template, params, payload, key) -> list[Notification]:
    return queue_message(
        recipient=person,
        kind=Notification.Kind.IMPORT_DONE,
        template=template,
        params=params,
        data_request=settlement_import.data_request,
        payload=payload,
        dedupe_key=f"settlement:{settlement_import.pk}:{key}",
    )
