"""The settlement result of each order of the book (OrderSettlement),
rebuilt in SQL from its counted lines, and what follows any change of
them: the stored summary, the book's version, the live streams' figures."""

from django.db import connection

from reconciliation.bulk import analyze_table, db_value
from reconciliation.bulk import q as _q
from reconciliation.models import (
    Order,
    OrderSettlement,
    SettlementAcceptance,
    SettlementClaim,
    SettlementImport,
    SettlementLine,
    SettlementMatch,
)
from reconciliation.services import live
from reconciliation.services.settlement import claims
from reconciliation.services.settlement.claims import OrderSubset
from reconciliation.services.settlement.summary import refresh_summary

OrderState = OrderSettlement.State
MISMATCH_STATES = OrderSettlement.MISMATCH_STATES


def rebuild_order_settlements(*, project, only: OrderSubset | None = None) -> int:
    """The settlement result of every order (or of `only` these; the other
    orders' rows are left alone) from its counted lines, in SQL: lines
    matched on arrival, orphans an order that came later claims, and orphans
    a person matched (and not undone; a manual match wins over a claim);
    duplicate lines never count. Only lines the provider reports settled
    move money; an order whose lines are all unsettled or on hold stays
    `expected`. A difference is accepted by a manual match that accepted it,
    or by Louis's live acceptance of the same settled gross. Returns how
    many orders of the project now disagree with their lines."""
    lines = _q(SettlementLine._meta.db_table)
    matches = _q(SettlementMatch._meta.db_table)
    claimed = _q(SettlementClaim._meta.db_table)
    acceptances = _q(SettlementAcceptance._meta.db_table)
    orders = _q(Order._meta.db_table)
    results = _q(OrderSettlement._meta.db_table)
    project_id = db_value(OrderSettlement, "project", project.pk)
    subset_params = only.params if only is not None else []
    # Only the lines that can count for the subset, found through indexes
    # (the line's order, its claim, its manual match), not by a scan.
    some_lines = (
        f"AND l.{_q('id')} IN (SELECT x.{_q('id')} FROM {lines} x "  # noqa: S608 - fixed names
        f"WHERE x.{_q('order_id')} IN ({only.sql}) "
        f"UNION SELECT y.{_q('line_id')} FROM {claimed} y WHERE y.{_q('order_id')} IN ({only.sql}) "
        f"UNION SELECT z.{_q('line_id')} FROM {matches} z WHERE z.{_q('order_id')} IN ({only.sql}))"
        if only is not None
        else ""
    )
    counted = (
        f"SELECT COALESCE(m.{_q('order_id')}, l.{_q('order_id')}, c.{_q('order_id')}) "  # noqa: S608 - fixed names
        f"AS order_pk, l.{_q('gross_amount')} AS gross, l.{_q('fee_amount')} AS fee, "
        f"l.{_q('net_amount')} AS net, l.{_q('settlement_status')} AS status, "
        f"CASE WHEN m.{_q('accept_difference')} THEN 1 ELSE 0 END AS accepted "
        f"FROM {lines} l LEFT JOIN {matches} m ON m.{_q('line_id')} = l.{_q('id')} "
        f"AND m.{_q('undone_at')} IS NULL "
        f"LEFT JOIN {claimed} c ON c.{_q('line_id')} = l.{_q('id')} "
        f"WHERE l.{_q('project_id')} = %s AND l.{_q('line_state')} <> 'duplicate_line' "
        f"{some_lines}"
    )
    settled = "CASE WHEN c.status = 'settled' THEN {} ELSE 0 END"
    in_subset = f"AND c.order_pk IN ({only.sql})" if only is not None else ""
    sums = (
        f"SELECT c.order_pk, SUM({settled.format('c.gross')}) AS gross, "  # noqa: S608 - fixed names
        f"SUM({settled.format('c.fee')}) AS fee, SUM({settled.format('c.net')}) AS net, "
        f"SUM({settled.format('CASE WHEN c.gross < 0 THEN -c.gross ELSE 0 END')}) AS refund, "
        f"SUM(CASE WHEN c.status = 'settled' THEN 0 ELSE c.gross END) AS unsettled, "
        f"SUM(CASE WHEN c.status = 'settled' THEN 1 ELSE 0 END) AS settled_lines, "
        f"COUNT(*) AS line_count, MAX(c.accepted) AS accepted "
        f"FROM ({counted}) c WHERE c.order_pk IS NOT NULL {in_subset} GROUP BY c.order_pk"
    )
    same = "ABS(s.gross - o.{amount}) < 0.005".format(amount=_q("amount"))
    accepted_here = (
        f"(s.accepted = 1 OR (a.{_q('id')} IS NOT NULL "
        f"AND ABS(s.gross - a.{_q('settled_gross')}) < 0.005))"
    )
    state = (
        "CASE WHEN s.settled_lines = 0 THEN 'expected' "
        f"WHEN {same} THEN 'settled' "
        "WHEN ABS(s.gross) < 0.005 AND s.refund > 0 THEN 'refund_settled' "
        f"WHEN {accepted_here} THEN 'settled' "
        f"WHEN s.gross > o.{_q('amount')} THEN 'over_amount' "
        "WHEN s.gross > 0 AND s.refund > 0 THEN 'partially_refunded' "
        "ELSE 'amount_mismatch' END"
    )
    accepted = f"CASE WHEN {accepted_here} AND NOT ({same}) THEN %s ELSE %s END"
    names = ", ".join(
        _q(c)
        for c in (
            "order_id",
            "project_id",
            "state",
            "settled_gross",
            "settled_fee",
            "settled_net",
            "refund_settled",
            "unsettled_gross",
            "line_count",
            "difference_accepted",
        )
    )
    line_project = db_value(SettlementLine, "project", project.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {results} WHERE {_q('project_id')} = %s "  # noqa: S608
            + (f"AND {_q('order_id')} IN ({only.sql})" if only is not None else ""),
            [project_id, *subset_params],
        )
        cursor.execute(
            f"INSERT INTO {results} ({names}) "  # noqa: S608
            f"SELECT s.order_pk, %s, {state}, s.gross, s.fee, s.net, s.refund, s.unsettled, "
            f"s.line_count, {accepted} "
            f"FROM ({sums}) s JOIN {orders} o ON o.{_q('id')} = s.order_pk "
            f"LEFT JOIN {acceptances} a ON a.{_q('order_id')} = s.order_pk "
            f"AND a.{_q('undone_at')} IS NULL",
            [
                project_id,
                True,
                False,
                line_project,
                *(subset_params * 3),
                *subset_params,
            ],
        )
    if only is None:
        analyze_table(OrderSettlement)
    return OrderSettlement.objects.filter(project=project, state__in=MISMATCH_STATES).count()


def after_settlement_change(*, project, cause: dict) -> None:
    """The stored settlement summary refreshed, and the book's version moved
    (Louis's decision shows it changed since he took it)."""
    from reconciliation.services import revenue

    refresh_summary(project=project)
    book_summary = revenue.recompute_summary(project=project, cause=cause)
    if book_summary is not None:
        # The streams' settled money follows (a whole rewrite, after commit).
        live.after_import(project=project, book_version=book_summary.version)


def after_book_change(*, project, reconciliation_import=None) -> None:
    """An order import or a tag changed the book: once the project has a
    settlement file, the summary follows (an amount that changed, an order
    no longer paid, a tag that makes it recognisable). An order import also
    moves the results of the orders it brought or changed, which may claim
    orphan lines; a tag moves no result (states read amounts, not tags)."""
    if not SettlementImport.objects.filter(project=project).exists():
        return
    if reconciliation_import is not None:
        touched = claims.touched_by(project, reconciliation_import)
        claims.claim_orphans(project=project, only=touched)
        rebuild_order_settlements(project=project, only=touched)
    refresh_summary(project=project)
