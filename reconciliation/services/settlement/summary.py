"""The stored settled rung of the revenue ladder (SettlementSummary): SQL
aggregates over the book's orders and their settlement results, refreshed
inside the transaction of whatever changed them."""

from django.db import connection

from reconciliation.bulk import db_value
from reconciliation.bulk import q as _q
from reconciliation.models import (
    Order,
    OrderSettlement,
    OrderTag,
    SettlementImport,
    SettlementSummary,
)
from reconciliation.services.revenue.rules import EVIDENCE_RESOLVES
from reconciliation.services.settlement.claims import unplaced_orphans

OrderState = OrderSettlement.State


def recognisable_sql(alias: str = "o", tag_alias: str = "t") -> str:
    """The orders whose money may be recognised, as SQL over the book: paid
    in the export, and either untagged without an export exception, or
    tagged paid/rebought by Huber with at most an exception evidence settles."""
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


def orphan_lines(project):
    """Lines no order carries: not claimed by an order that came later, not
    matched by hand (or the match undone)."""
    return unplaced_orphans(project).order_by("id")


def _unsettled_by_hour(project_id) -> list[list]:
    """[[UTC hour, paid orders without a settled line, their amount]], the
    hour cut in SQL (SQLite keeps UTC text, PostgreSQL a timestamptz)."""
    orders, results = _q(Order._meta.db_table), _q(OrderSettlement._meta.db_table)
    if connection.vendor == "postgresql":
        hour = f"to_char(date_trunc('hour', o.{_q('created_at')} AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24')"
    else:
        hour = f"substr(o.{_q('created_at')}, 1, 13)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {hour} AS h, COUNT(*), COALESCE(SUM(o.{_q('amount')}), 0) "  # noqa: S608
            f"FROM {orders} o LEFT JOIN {results} s ON s.{_q('order_id')} = o.{_q('id')} "
            f"WHERE o.{_q('project_id')} = %s AND o.{_q('classification')} = 'paid' "
            f"AND (s.{_q('order_id')} IS NULL OR s.{_q('state')} = 'expected') "
            "GROUP BY h ORDER BY h",
            [project_id],
        )
        rows = cursor.fetchall()
    return [[f"{h}:00:00+00:00" if h else "", int(n), _money(amount)] for h, n, amount in rows]


def refresh_summary(*, project) -> SettlementSummary | None:
    """Recompute the project's settlement summary; nothing before its first
    settlement import."""
    if not SettlementImport.objects.filter(project=project).exists():
        return None
    orders, results, tags = (
        _q(Order._meta.db_table),
        _q(OrderSettlement._meta.db_table),
        _q(OrderTag._meta.db_table),
    )
    project_id = db_value(Order, "project", project.pk)
    gross, fees, net, refunds, collected, mismatches, settled_orders = _one(
        f"SELECT COALESCE(SUM(s.{_q('settled_gross')}), 0), "  # noqa: S608 - fixed names
        f"COALESCE(SUM(s.{_q('settled_fee')}), 0), COALESCE(SUM(s.{_q('settled_net')}), 0), "
        f"COALESCE(SUM(s.{_q('refund_settled')}), 0), "
        f"COALESCE(SUM(CASE WHEN {recognisable_sql()} THEN s.{_q('settled_net')} ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN s.{_q('state')} IN ('over_amount', 'amount_mismatch') "
        "THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN s.{_q('state')} <> 'expected' THEN 1 ELSE 0 END), 0) "
        f"FROM {results} s JOIN {orders} o ON o.{_q('id')} = s.{_q('order_id')} "
        f"LEFT JOIN {tags} t ON t.{_q('order_id')} = o.{_q('id')} "
        f"WHERE s.{_q('project_id')} = %s",
        [project_id],
    )
    (settled_recognisable,) = _one(
        f"SELECT COALESCE(SUM(o.{_q('amount')}), 0) FROM {results} s "  # noqa: S608 - fixed names
        f"JOIN {orders} o ON o.{_q('id')} = s.{_q('order_id')} "
        f"LEFT JOIN {tags} t ON t.{_q('order_id')} = o.{_q('id')} "
        f"WHERE s.{_q('project_id')} = %s AND s.{_q('state')} = 'settled' "
        f"AND {recognisable_sql()}",
        [project_id],
    )
    by_hour = _unsettled_by_hour(project_id)
    paid_orders = Order.objects.filter(project=project, classification="paid").count()
    figures = {
        "settled_gross": _money(gross),
        "fees": _money(fees),
        "settled_net": _money(net),
        "refund_settled": _money(refunds),
        "collected": _money(collected),
        "settled_recognisable_amount": _money(settled_recognisable),
        "orphan_count": orphan_lines(project).count(),
        "mismatch_count": int(mismatches),
        "settled_orders": int(settled_orders),
        "paid_orders": paid_orders,
    }
    summary, _created = SettlementSummary.objects.update_or_create(
        project=project, defaults={"figures": figures, "unsettled_by_hour": by_hour}
    )
    return summary
