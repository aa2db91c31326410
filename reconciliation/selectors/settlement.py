"""What the settlement files say, read for pages and answers: the settled
figures of the revenue ladder, 實收, the settlement exceptions with their
owners, the lines of an order and the orphan lines with their suggestions.

Before any settlement import of the project every figure here is None
(`settlement: null`): no page shows 實收 that no provider has confirmed."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from reconciliation.bulk import db_value
from reconciliation.models import (
    Order,
    OrderSettlement,
    OrderTag,
    SettlementImport,
    SettlementLine,
    SettlementMatch,
)
from reconciliation.permissions import Role
from reconciliation.services.revenue.rules import EVIDENCE_RESOLVES

OrderState = OrderSettlement.State
MISMATCH_STATES = (OrderState.OVER_AMOUNT, OrderState.AMOUNT_MISMATCH)
# Who must act on each settlement exception: Wade sends the missing file or
# explains a line no order has; Louis accepts (or not) a different amount.
SETTLEMENT_EXCEPTION_OWNERS = {
    "settlement_missing": Role.WADE,
    "settlement_orphan": Role.WADE,
    "settlement_mismatch": Role.LOUIS,
}


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def window_days() -> int:
    return int(getattr(settings, "SETTLEMENT_WINDOW_DAYS", 7))


def has_settlement(project) -> bool:
    return (
        project is not None
        and SettlementImport.objects.filter(
            project=project, status=SettlementImport.Status.ACCEPTED
        ).exists()
    )


def recognisable_sql(alias: str = "o", tag_alias: str = "t") -> str:
    """The orders whose money may be recognised, as SQL over the book: paid
    in the export, and either without a tag and without an export exception,
    or tagged paid/rebought by Huber with at most an exception evidence
    settles."""
    resolves = ", ".join(f"'{code}'" for code in sorted({"", *EVIDENCE_RESOLVES}))
    return (
        f"{alias}.{_q('classification')} = 'paid' AND ("
        f"({tag_alias}.{_q('tag')} IS NULL AND {alias}.{_q('exception_code')} = '') OR "
        f"({tag_alias}.{_q('tag')} IN ('paid', 'rebought') "
        f"AND {alias}.{_q('exception_code')} IN ({resolves})))"
    )


def _one(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _money(value) -> float:
    return round(float(value or 0), 2)


def settlement_figures(project, *, now=None) -> dict | None:
    """The settled rung of the revenue ladder and the settlement counts, or
    None before the project's first settlement import."""
    if not has_settlement(project):
        return None
    now = now or timezone.now()
    cutoff = now - timedelta(days=window_days())
    orders, results, tags = (
        _q(Order._meta.db_table),
        _q(OrderSettlement._meta.db_table),
        _q(OrderTag._meta.db_table),
    )
    project_id = db_value(Order, "project", project.pk)
    counted = "s.{state} NOT IN ('expected')".format(state=_q("state"))
    row = _one(
        f"SELECT COALESCE(SUM(s.{_q('settled_gross')}), 0), COALESCE(SUM(s.{_q('settled_fee')}), 0), "  # noqa: S608
        f"COALESCE(SUM(s.{_q('settled_net')}), 0), COALESCE(SUM(s.{_q('refund_settled')}), 0), "
        f"COALESCE(SUM(CASE WHEN {recognisable_sql()} THEN s.{_q('settled_net')} ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN s.{_q('state')} IN ('over_amount', 'amount_mismatch') "
        f"THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN {counted} THEN 1 ELSE 0 END), 0) "
        f"FROM {results} s JOIN {orders} o ON o.{_q('id')} = s.{_q('order_id')} "
        f"LEFT JOIN {tags} t ON t.{_q('order_id')} = o.{_q('id')} "
        f"WHERE s.{_q('project_id')} = %s",
        [project_id],
    )
    gross, fees, net, refunds, collected, mismatches, settled_orders = row
    unsettled = _one(
        f"SELECT COUNT(*), COALESCE(SUM(o.{_q('amount')}), 0), "  # noqa: S608
        f"COALESCE(SUM(CASE WHEN o.{_q('created_at')} >= %s THEN 1 ELSE 0 END), 0) "
        f"FROM {orders} o LEFT JOIN {results} s ON s.{_q('order_id')} = o.{_q('id')} "
        f"WHERE o.{_q('project_id')} = %s AND o.{_q('classification')} = 'paid' "
        f"AND (s.{_q('order_id')} IS NULL OR s.{_q('state')} = 'expected')",
        [connection.ops.adapt_datetimefield_value(cutoff), project_id],
    )
    unsettled_orders, unsettled_amount, expected = unsettled
    paid_orders = Order.objects.filter(project=project, classification="paid").count()
    orphans = orphan_lines(project).count()
    return {
        "settled_gross": _money(gross),
        "fees": _money(fees),
        "settled_net": _money(net),
        "refund_settled": _money(refunds),
        "collected": _money(collected),
        "paid_unsettled_amount": _money(unsettled_amount),
        "expected_count": int(expected),
        "missing_count": int(unsettled_orders) - int(expected),
        "orphan_count": orphans,
        "mismatch_count": int(mismatches),
        "settled_orders": int(settled_orders),
        "coverage": round(
            (paid_orders - int(unsettled_orders)) / paid_orders if paid_orders else 0.0, 4
        ),
        "window_days": window_days(),
    }


def recognised_split(project, recognised_amount) -> tuple[Decimal | None, Decimal | None]:
    """(settled, unsettled) parts of the amount Louis recognises: the order
    amounts of recognisable orders the provider settled in full, and the
    rest. (None, None) before any settlement import."""
    if recognised_amount is None or not has_settlement(project):
        return None, None
    orders, results, tags = (
        _q(Order._meta.db_table),
        _q(OrderSettlement._meta.db_table),
        _q(OrderTag._meta.db_table),
    )
    (settled,) = _one(
        f"SELECT COALESCE(SUM(o.{_q('amount')}), 0) FROM {results} s "  # noqa: S608
        f"JOIN {orders} o ON o.{_q('id')} = s.{_q('order_id')} "
        f"LEFT JOIN {tags} t ON t.{_q('order_id')} = o.{_q('id')} "
        f"WHERE s.{_q('project_id')} = %s AND s.{_q('state')} = 'settled' "
        f"AND {recognisable_sql()}",
        [db_value(Order, "project", project.pk)],
    )
    settled = min(Decimal(str(settled)).quantize(Decimal("0.01")), Decimal(recognised_amount))
    return settled, Decimal(recognised_amount) - settled


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


def orphan_lines(project):
    """Lines no order carries, not matched by hand (or the match undone)."""
    live = SettlementMatch.objects.filter(undone_at__isnull=True).values("line_id")
    return (
        SettlementLine.objects.filter(project=project, line_state=SettlementLine.State.ORPHAN)
        .exclude(pk__in=live)
        .order_by("id")
    )


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


def order_state(order: Order, *, now=None) -> str | None:
    """The settlement state of one order (None before any settlement file
    or for an order that is not expected to settle)."""
    if not has_settlement(order.project):
        return None
    result = OrderSettlement.objects.filter(order=order).first()
    if result is not None and result.state != OrderState.EXPECTED:
        return result.state
    if order.classification != "paid":
        return None
    now = now or timezone.now()
    if order.created_at and order.created_at >= now - timedelta(days=window_days()):
        return OrderState.EXPECTED
    return OrderState.MISSING if result is None else OrderState.EXPECTED


def order_lines(order: Order) -> list[dict]:
    """The lines counted for an order (matched on arrival or by hand)."""
    manual = SettlementMatch.objects.filter(order=order, undone_at__isnull=True).values("line_id")
    lines = SettlementLine.objects.filter(order=order) | SettlementLine.objects.filter(
        pk__in=manual
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
