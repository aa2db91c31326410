"""The data migration that claims the orphan settlement lines stored before
claims existed. The world is made by the app's services at the latest
schema (a settlement file, a manual match, an order import that brings the
orders the orphans name), then taken back to the shape it had before claims
(0016: no claims table; the orders the late import brought have no
settlement result and the summary is the one the settlement import left).
Migrated forward, the claims, every order's result and the summary must be
exactly what the services computed."""

import pytest

from reconciliation.management.commands._orders_data import import_from_frame
from reconciliation.models import (
    LiveBookTotals,
    Order,
    SettlementClaim,
    SettlementLine,
    SettlementSummary,
    Upload,
)
from reconciliation.services.settlement.manual import match_line
from tests.imp_frames import frame, order
from tests.migrations.executor import migrate, newest_migrations
from tests.test_settlement import _send, _settlement_request
from tests.test_settlement_late_orders import _results

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_CLAIMS = [("reconciliation", "0016_slim_order_book")]
CLAIMS_TABLE = [("reconciliation", "0017_settlement_claims_and_acceptances")]
AFTER = [("reconciliation", "0018_claim_earlier_orphan_lines")]
LATE = ["J", "J2", "K"]

# A settled, B short, T9 for order J the book lacks yet (its reference in
# another case, with a stray space), T8 for an order K the book lacks too,
# which Huber matches to D by hand first.
SETTLEMENT = (
    b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"
    b"PAY-A,T1,28000,770,2026-05-12 20:01,charge\n"
    b"PAY-B,T2,26000,715,2026-05-12 20:02,charge\n"
    b"pay-j ,T9,5000,138,2026-05-12 20:09,charge\n"
    b"PAY-K,T8,12000,330,2026-05-12 20:08,charge\n"
)


def _summary(project) -> tuple:
    summary = SettlementSummary.objects.get(project=project)
    return summary.figures, summary.unsettled_by_hour


def _claims() -> dict:
    return {
        claim.line.provider_txn_id: claim.order.order_id
        for claim in SettlementClaim.objects.select_related("line", "order")
    }


def test_orphans_stored_before_claims_are_claimed_and_results_rebuilt(louis, wade, huber):
    latest = newest_migrations()
    try:
        import_from_frame(
            frame(
                order("A", amount=28000),
                order("B", amount=28000),
                order("D", amount=12000, program="VIP-12000", customer="c4"),
            ),
            mode=Upload.Mode.INCREMENTAL,
            name="orders.csv",
        )
        data_request = _settlement_request(louis)
        _send(data_request, wade, "settlement.csv", SETTLEMENT)
        project = data_request.project
        match_line(
            actor=huber,
            line_id=SettlementLine.objects.get(provider_txn_id="T8").pk,
            order_id="D",
            note="綠界把 D 的付款編號寫成 PAY-K",
        )
        before_figures, before_by_hour = _summary(project)
        assert before_figures["orphan_count"] == 1

        # J and J2 both carry T9's reference (J2 in another case): the first
        # order claims it. K carries T8's, which Huber's match keeps.
        import_from_frame(
            frame(
                order("J", amount=5000, program="BOOK-5000", customer="c9", ref="PAY-J"),
                order("J2", amount=5000, program="BOOK-5000", customer="c10", ref="Pay-J"),
                order("K", amount=12000, program="VIP-12000", customer="c11", ref="PAY-K"),
            ),
            mode=Upload.Mode.INCREMENTAL,
            name="orders-late.csv",
        )
        first = Order.objects.filter(order_id__in=["J", "J2"]).order_by("created_at", "order_id")[0]
        assert _claims() == {"T9": first.order_id}
        computed_results, computed_summary = _results(), _summary(project)
        assert computed_results[first.order_id][:4] == ("settled", 5000, 138, 4862)
        assert computed_summary[0]["orphan_count"] == 0

        old = migrate(BEFORE_CLAIMS)
        old.get_model("reconciliation", "OrderSettlement").objects.filter(
            order__order_id__in=LATE
        ).delete()
        old.get_model("reconciliation", "SettlementSummary").objects.filter(
            project_id=project.pk
        ).update(figures=before_figures, unsettled_by_hour=before_by_hour)
        old.get_model("reconciliation", "LiveBookTotals").objects.filter(
            project_id=project.pk
        ).update(behind_since=None)

        # The claims table alone claims nothing.
        migrate(CLAIMS_TABLE)
        assert not SettlementClaim.objects.exists()
        assert first.order_id not in _results()

        migrate(AFTER)
        assert _claims() == {"T9": first.order_id}
        assert _results() == computed_results
        assert _summary(project) == computed_summary
        assert LiveBookTotals.objects.get(project=project).behind_since is not None
    finally:
        migrate(latest)
