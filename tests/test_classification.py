"""Classification on hand-made frames with known answers: paid /
pending / refunded / duplicate, rebuys counted once, conflicts → partial."""

import pandas as pd

from reconciliation.models import ReconciliationImport
from reconciliation.services.imports import classify_frame
from reconciliation.services.revenue import import_time_summary
from tests.imp_frames import frame, key, order


def classes(result):
    return dict(zip(result.frame["row_number"], result.frame["classification"], strict=True))


def test_paid_pending_refunded_and_totals():
    result = classify_frame(
        frame(
            order("A1", "paid", 28000),
            order("A2", "pending", 28000, customer="c2"),
            order("A3", "refunded", 28000, customer="c3"),
            order("A4", "paid", 1990, customer="c4", program="BOOK-1"),
        )
    )
    assert classes(result) == {2: "paid", 3: "pending", 4: "refunded", 5: "paid"}
    assert result.counts == {
        "row_count": 4,
        "paid_count": 2,
        "pending_count": 1,
        "refunded_count": 1,
        "duplicate_count": 0,
    }
    assert result.status == ReconciliationImport.Status.ACCEPTED
    totals = import_time_summary(result.frame)["totals"]
    # Pending and refunded never count.
    assert totals["paid_amount"] == 29990
    assert totals["paid_orders"] == 2
    assert totals["pending_amount"] == 28000
    assert totals["refunded_amount"] == 28000
    assert totals["gmv"] == 28000 * 3 + 1990
    assert totals["held_orders"] == 0


def test_duplicate_within_file_keeps_first_class_and_counts_once():
    result = classify_frame(
        frame(
            order("A1", "refunded", 28000),
            order("A2", "paid", 28000, customer="c2"),
            order("A1", "paid", 28000),  # a repeat of a refunded order
            order("A2", "paid", 28000, customer="c2"),
        )
    )
    assert classes(result) == {2: "refunded", 3: "paid", 4: "duplicate", 5: "duplicate"}
    assert result.counts["duplicate_count"] == 2
    assert result.counts["paid_count"] == 1
    assert sum(v for k, v in result.counts.items() if k != "row_count") == 4
    totals = import_time_summary(result.frame)["totals"]
    assert totals["paid_amount"] == 28000  # A2 once; A1's repeat never revives it
    assert totals["duplicate_rows"] == 2
    assert totals["orders"] == 2


def test_an_order_of_an_earlier_file_is_not_a_duplicate_and_not_its_own_rebuy():
    """Across files the book decides (a version of the same order); the
    classifier only marks repeats inside the file. A refund in the book is
    re-bought by another order, never by a new version of itself."""
    first = classify_frame(frame(order("A1", "paid"), order("A2", "refunded", customer="c2")))
    refunds = first.frame[first.frame["classification"] == "refunded"]
    second = classify_frame(
        frame(
            order("A1", "paid"),
            order("A2", "paid", customer="c2", when="2026-05-13 20:00"),  # A2 again, now paid
            order(
                "A3", "paid", customer="c2", when="2026-05-14 20:00"
            ),  # re-buys A2? no: A2 is back
        ),
        earlier=refunds[
            ["order_id", "classification", "amount", "customer_key", "program_id", "created_at"]
        ],
    )
    assert classes(second) == {2: "paid", 3: "paid", 4: "paid"}
    assert set(second.frame["rebuy_of"]) == {""}


def test_refunded_then_rebought_counts_once_on_the_new_order():
    result = classify_frame(
        frame(
            order("A1", "refunded", 28000, when="2026-05-12 20:00", customer="c1"),
            order("A9", "paid", 28000, when="2026-05-15 21:00", customer="c1", ref="PAY-77"),
            # Same customer, other programme: not a rebuy.
            order("B1", "paid", 990, when="2026-05-16 10:00", customer="c1", program="BOOK-1"),
        )
    )
    rebuy = dict(zip(result.frame["order_id"], result.frame["rebuy_of"], strict=True))
    assert rebuy == {"A1": "", "A9": "A1", "B1": ""}
    totals = import_time_summary(result.frame)["totals"]
    assert totals["paid_amount"] == 28000 + 990
    assert totals["rebuy_orders"] == 1
    assert totals["rebuy_amount"] == 28000
    assert totals["refunded_amount"] == 28000


def test_one_refund_is_rebought_once_and_a_purchase_before_the_refund_is_not_a_rebuy():
    result = classify_frame(
        frame(
            order("A0", "paid", 28000, when="2026-05-12 09:00"),
            order("A1", "refunded", 28000, when="2026-05-12 20:00"),
            order("A2", "paid", 28000, when="2026-05-13 20:00"),
            order("A3", "paid", 28000, when="2026-05-14 20:00"),
        )
    )
    rebuy = dict(zip(result.frame["order_id"], result.frame["rebuy_of"], strict=True))
    assert rebuy == {"A0": "", "A1": "", "A2": "A1", "A3": ""}
    assert import_time_summary(result.frame)["totals"]["rebuy_orders"] == 1


def test_rebuy_of_a_refund_from_an_earlier_import():
    earlier = pd.DataFrame(
        {
            "order_id": ["A1"],
            "classification": ["refunded"],
            "amount": [28000.0],
            "customer_key": [key("c1")],
            "program_id": ["TRAIN-28000"],
            "created_at": pd.to_datetime(["2026-05-12 12:00"], utc=True),
        }
    )
    result = classify_frame(frame(order("A5", "paid", when="2026-05-18 12:00")), earlier=earlier)
    assert list(result.frame["rebuy_of"]) == ["A1"]


def test_conflicting_rows_make_the_import_partial_and_block_only_those_rows():
    result = classify_frame(
        frame(
            order("A1", "paid", 28000),
            order("A2", "paid", 28000, customer="c2", ref="RF-20260514-002"),  # refund ref
            order("A3", "paid", 28000, customer="c3"),
            order("A3", "paid", 26000, customer="c3"),  # paid twice, another amount
            order("A4", "refunded", 28000, customer="c4", ref="RF-1"),  # refunded + RF: fine
        )
    )
    assert result.status == ReconciliationImport.Status.PARTIAL
    codes = dict(zip(result.frame["row_number"], result.frame["exception_code"], strict=True))
    assert codes == {
        2: "",
        3: "paid_with_refund_ref",
        4: "amount_mismatch",
        5: "amount_mismatch",
        6: "",
    }
    summary = import_time_summary(result.frame)
    totals = summary["totals"]
    assert totals["paid_amount"] == 28000  # only A1 is unblocked
    assert totals["held_orders"] == 2 and totals["held_amount"] == 56000
    assert summary["exception_counts"] == {"amount_mismatch": 2, "paid_with_refund_ref": 1}
    owners = {e["row_number"]: e["owner"] for e in summary["exceptions"]}
    assert owners == {3: "huber", 4: "wade", 5: "wade"}


def test_same_amount_repeat_is_only_a_duplicate():
    result = classify_frame(frame(order("A1", "paid", 28000), order("A1", "paid", 28000)))
    assert result.status == ReconciliationImport.Status.ACCEPTED
    assert list(result.frame["exception_code"]) == ["", ""]


def test_empty_frame_fails():
    result = classify_frame(frame())
    assert result.status == ReconciliationImport.Status.FAILED
    assert result.counts["row_count"] == 0


def test_days_are_taipei_days_and_dimensions_add_up():
    result = classify_frame(
        frame(
            # 23:30 in Taipei on 5/12 is still 5/12; 00:30 on 5/13 is 5/13.
            order("A1", "paid", 1000, when="2026-05-12 23:30", source="LIVE-0512", code="VIP"),
            order("A2", "paid", 2000, when="2026-05-13 00:30", customer="c2", source="LIVE-0513"),
            order("A3", "pending", 3000, when="2026-05-13 10:00", customer="c3", code="VIP"),
        )
    )
    summary = import_time_summary(result.frame)
    days = {d["key"]: d["paid_amount"] for d in summary["dims"]["by_day"]}
    assert days == {"2026-05-12": 1000, "2026-05-13": 2000}
    sources = {d["key"]: d["paid_amount"] for d in summary["dims"]["by_source_event"]}
    assert sources == {"LIVE-0512": 1000, "LIVE-0513": 2000}  # A3 is pending
    codes = {d["key"]: (d["orders"], d["paid_orders"]) for d in summary["dims"]["by_discount_code"]}
    assert codes == {"VIP": (2, 1), "": (1, 1)}
    for dim in summary["dims"].values():
        assert sum(d["paid_amount"] for d in dim) == summary["totals"]["paid_amount"]
