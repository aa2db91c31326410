"""What the settlement files say, read for pages and answers: the settled
figures of the revenue ladder, 實收, the settlement exceptions with their
owners, the lines of an order and the orphan lines with their suggestions.

Before any settlement import of the project every figure here is None
(`settlement: null`): no page shows 實收 that no provider has confirmed."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reconciliation.errors import InvalidInput
from reconciliation.models import (
    Order,
    OrderSettlement,
    SettlementAcceptance,
    SettlementClaim,
    SettlementLine,
    SettlementMatch,
    SettlementSummary,
)
from reconciliation.permissions import Role
from reconciliation.services.settlement.summary import orphan_lines

__all__ = ["orphan_lines"]

OrderState = OrderSettlement.State
MISMATCH_STATES = OrderSettlement.MISMATCH_STATES
# Who must act on each settlement exception: Wade sends the missing file or
# explains a line no order has; Louis accepts (or not) a different amount.
SETTLEMENT_EXCEPTION_OWNERS = {
    "settlement_missing": Role.WADE,
    "settlement_orphan": Role.WADE,
    "settlement_mismatch": Role.LOUIS,
}

SETTLEMENT_EXCEPTION_LABELS = {
    "settlement_missing": _("已付款訂單逾期未撥款"),
    "settlement_orphan": _("撥款明細找不到訂單"),
    "settlement_mismatch": _("撥款金額與訂單不符，待 Louis 接受或追查"),
}


def window_days() -> int:
    return int(getattr(settings, "SETTLEMENT_WINDOW_DAYS", 7))


def has_settlement(project) -> bool:
    return project is not None and SettlementSummary.objects.filter(project=project).exists()


def settlement_figures(project, *, now=None) -> dict | None:
    """The settled rung of the revenue ladder and the settlement counts from
    the stored summary, or None before the project's first settlement
    import. Paid orders without a settled line are `expected` while younger
    than SETTLEMENT_WINDOW_DAYS, `missing` after."""
    summary = (
        SettlementSummary.objects.filter(project=project).first() if project is not None else None
    )
    if summary is None:
        return None
    now = now or timezone.now()
    cutoff = now - timedelta(days=window_days())
    expected = missing = 0
    unsettled_amount = 0.0
    for hour, count, amount in summary.unsettled_by_hour:
        unsettled_amount += amount
        # An hour that straddles the cutoff counts as expected (in flight).
        if hour and datetime.fromisoformat(hour) + timedelta(hours=1) > cutoff:
            expected += count
        else:
            missing += count
    figures = summary.figures
    paid = figures["paid_orders"]
    return {
        "settled_gross": figures["settled_gross"],
        "fees": figures["fees"],
        "settled_net": figures["settled_net"],
        "refund_settled": figures["refund_settled"],
        "collected": figures["collected"],
        "paid_unsettled_amount": round(unsettled_amount, 2),
        "expected_count": expected,
        "missing_count": missing,
        "orphan_count": figures["orphan_count"],
        "mismatch_count": figures["mismatch_count"],
        "coverage": round((paid - expected - missing) / paid, 4) if paid else 0.0,
        "window_days": window_days(),
    }


def recognised_split(project, recognised_amount) -> tuple[Decimal | None, Decimal | None]:
    """(settled, unsettled) parts of the amount Louis recognises: the order
    amounts of recognisable orders the provider settled in full, and the
    rest. (None, None) before any settlement import."""
    summary = SettlementSummary.objects.filter(project=project).first()
    if recognised_amount is None or summary is None:
        return None, None
    recognised = Decimal(recognised_amount)
    settled = Decimal(str(summary.figures["settled_recognisable_amount"])).quantize(Decimal("0.01"))
    settled = min(settled, recognised)
    return settled, recognised - settled


def settlement_exceptions(figures: dict | None) -> list[dict]:
    """The settlement exceptions as the exceptions list shows them: code,
    owner, count."""
    if not figures:
        return []
    counts = {
        "settlement_missing": figures["missing_count"],
        "settlement_orphan": figures["orphan_count"],
        "settlement_mismatch": figures["mismatch_count"],
    }
    return [
        {"code": code, "owner": SETTLEMENT_EXCEPTION_OWNERS[code].value, "count": count}
        for code, count in counts.items()
        if count
    ]


def suggestions(project, line: SettlementLine, *, limit: int = 5) -> list[Order]:
    """Paid orders that could be the orphan's: the same amount, created the
    same Taipei day, without a settlement result. Never applied by itself."""
    local = timezone.localtime(line.txn_date)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return list(
        Order.objects.filter(
            project=project,
            classification="paid",
            amount=line.gross_amount,
            created_at__gte=start,
            created_at__lt=start + timedelta(days=1),
            settlement__isnull=True,
        ).order_by("id")[:limit]
    )


def checked_settlement_state(value: str) -> str:
    """A settlement_state filter value ('' for none), or 422 invalid_filter."""
    if value and value not in OrderState.values:
        raise InvalidInput(
            "invalid_filter",
            {
                "field": "settlement_state",
                "message": str(
                    _(
                        "settlement_state 只能是 settled、refund_settled、partially_refunded、"
                        "over_amount、amount_mismatch、expected 或 missing。"
                    )
                ),
            },
        )
    return value


def settlement_filter(rows, state: str, *, now=None):
    """Orders (a queryset) in one settlement state. expected and missing are
    paid orders without a settled line, younger or older than the window."""
    if state not in (OrderState.EXPECTED, OrderState.MISSING):
        return rows.filter(settlement__state=state)
    cutoff = (now or timezone.now()) - timedelta(days=window_days())
    unsettled = rows.filter(classification="paid").filter(
        Q(settlement__isnull=True) | Q(settlement__state=OrderState.EXPECTED)
    )
    if state == OrderState.EXPECTED:
        return unsettled.filter(created_at__gte=cutoff)
    return unsettled.filter(created_at__lt=cutoff)


def order_state(order: Order, *, now=None) -> str | None:
    """The settlement state of one order (None before any settlement file
    or for an order that is not expected to settle)."""
    return _state(order, OrderSettlement.objects.filter(order=order).first(), now=now)


def _state(order: Order, result: OrderSettlement | None, *, now=None) -> str | None:
    if not has_settlement(order.project):
        return None
    if result is not None and result.state != OrderState.EXPECTED:
        return result.state
    if order.classification != "paid":
        return None
    now = now or timezone.now()
    if order.created_at and order.created_at >= now - timedelta(days=window_days()):
        return OrderState.EXPECTED
    return OrderState.MISSING if result is None else OrderState.EXPECTED


def order_lines(order: Order) -> list[dict]:
    """The lines counted for an order: matched on arrival, claimed when the
    order came after them (unless a person matched them elsewhere), or
    matched by hand."""
    live = SettlementMatch.objects.filter(undone_at__isnull=True)
    manual = live.filter(order=order).values("line_id")
    claimed = SettlementClaim.objects.filter(order=order).exclude(
        line_id__in=live.values("line_id")
    )
    lines = (
        SettlementLine.objects.filter(order=order)
        | SettlementLine.objects.filter(pk__in=manual)
        | SettlementLine.objects.filter(pk__in=claimed.values("line_id"))
    )
    return [line_out(line) for line in lines.order_by("txn_date", "id")]


def line_out(line: SettlementLine) -> dict:
    return {
        "id": line.pk,
        "settlement_import_id": str(line.settlement_import_id),
        "row_number": line.row_number,
        "payment_ref": line.payment_ref,
        "provider_txn_id": line.provider_txn_id,
        "provider": line.provider,
        "txn_type": line.txn_type,
        "gross_amount": float(line.gross_amount),
        "fee_amount": float(line.fee_amount),
        "net_amount": float(line.net_amount),
        "txn_date": line.txn_date.isoformat(),
        "settlement_date": line.settlement_date.isoformat() if line.settlement_date else None,
        "payout_id": line.payout_id,
        "settlement_status": line.settlement_status,
        "line_state": line.line_state,
    }


def mismatch_reason(order: Order, result: OrderSettlement) -> dict:
    """The field-level reason of a mismatch: expected and settled amount,
    and the fee as a share of the settled gross."""
    gross = float(result.settled_gross)
    return {
        "field": "amount",
        "expected": float(order.amount),
        "settled": gross,
        "difference": round(gross - float(order.amount), 2),
        "fee": float(result.settled_fee),
        "fee_rate": round(float(result.settled_fee) / gross, 4) if gross else None,
    }


@dataclass(frozen=True)
class OrderSettlementOutcome:
    """What an order's page and answer show of its settlement."""

    state: str | None
    # The order's result is `settled` because Louis (or a manual match)
    # accepted the amount the provider settled although it differs.
    difference_accepted: bool
    # The result is over_amount or amount_mismatch: Louis may accept it.
    mismatch: bool
    # mismatch_reason, kept in view for an accepted difference too.
    reason: dict | None
    # Louis's live acceptance; it no longer holds (difference_accepted is
    # False) when a later line moved the settled gross he accepted.
    acceptance: SettlementAcceptance | None
    lines: list[dict]


def order_settlement(order: Order, *, now=None) -> OrderSettlementOutcome:
    """The settlement outcome of one order: its state, whether a different
    amount was accepted, the reason of a mismatch (or of the accepted
    difference), Louis's live acceptance and the lines counted for it."""
    result = OrderSettlement.objects.filter(order=order).first()
    mismatch = result is not None and result.state in MISMATCH_STATES
    accepted = result is not None and result.difference_accepted
    return OrderSettlementOutcome(
        state=_state(order, result, now=now),
        difference_accepted=accepted,
        mismatch=mismatch,
        reason=mismatch_reason(order, result) if mismatch or accepted else None,
        acceptance=SettlementAcceptance.objects.filter(order=order, undone_at__isnull=True)
        .select_related("created_by__user")
        .first(),
        lines=order_lines(order),
    )
