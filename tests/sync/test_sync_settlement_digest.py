"""Wade's sync digest tells the settlement exceptions he owns that are new
since the last run: orphan lines (no order has their payment reference)
and paid orders newly past the settlement window without a line."""

from reconciliation.message_text import notification_text
from reconciliation.models import DataRequest
from reconciliation.selectors import settlement as figures
from reconciliation.services.requests import create_data_request
from tests.sync.test_sync_owners import _digest, _run
from tests.test_settlement import _send

HEADER = b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"


def test_wade_hears_of_new_orphan_and_missing_settlement_lines(
    stub, make_source, project, louis, wade
):
    source = make_source(stub)
    first = _run(source)
    assert not first.digest["wade"]["new_orphans"]
    settlement = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
    _send(settlement, wade, "orphan-1.csv", HEADER + b"PAY-ZZZ-1,T1,1000,28,2026-05-12,charge\n")
    assert figures.settlement_figures(project)["missing_count"] > 0

    stub.data.advance(2)
    second = _run(source)
    # The first run was before any settlement file: every order past the
    # window without a line is new to Wade.
    missing = figures.settlement_figures(project)["missing_count"]
    (digest,) = _digest(second, "wade")
    assert (digest.params["new_orphans_text"], digest.params["has_orphans"]) == ("1", True)
    assert digest.params["new_settlement_missing_text"] == f"{missing:,}"
    subject, body = notification_text(digest)
    assert f"撥款例外 {missing + 1:,} 筆" in subject
    assert "上次同步後有 1 筆撥款明細找不到訂單" in body
    assert "/settlement/orphans/" in body
    assert f"有 {missing:,} 筆已付款訂單新超過撥款期限" in body

    # Nothing new since: no digest for Wade.
    stub.data.advance(1)
    third = _run(source)
    assert not _digest(third, "wade").exists()

    # One more orphan: only it is new, the first is not told again.
    _send(settlement, wade, "orphan-2.csv", HEADER + b"PAY-ZZZ-2,T2,500,14,2026-05-13,charge\n")
    stub.data.advance(1)
    fourth = _run(source)
    (digest,) = _digest(fourth, "wade")
    assert (digest.params["new_orphans_text"], digest.params["has_settlement_missing"]) == (
        "1",
        False,
    )
    assert figures.settlement_figures(project)["orphan_count"] == 2
    subject, _body = notification_text(digest)
    assert subject.endswith("撥款例外 1 筆")
