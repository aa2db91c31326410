"""The live streams' stored figures: every figure equals a hand-computed
truth on a small book (refunds, rebuys, returning buyers, discount codes,
hours), kept with the book through imports and tags; Louis's compliance
history; the viewer figures file."""

import pytest
from django.db import IntegrityError, transaction

from reconciliation.errors import InvalidInput, NotFound
from reconciliation.models import ComplianceRecord, LiveStreamFigures
from reconciliation.selectors.live import dashboard, stream_page
from reconciliation.services.evidence import tag_orders
from reconciliation.services.imports import import_frame
from reconciliation.services.live_records import import_viewers, record_compliance
from tests.imp_frames import accepted_upload, frame, new_request, order

BOOK = (
    order(
        "A1", "paid", 28000, customer="c1", when="2026-05-12 20:05", code="LIVE100", source="LIVE-A"
    ),
    order("A2", "paid", 28000, customer="c2", when="2026-05-12 20:40", source="LIVE-A"),
    order(
        "A3",
        "refunded",
        28000,
        customer="c3",
        when="2026-05-12 21:10",
        code="LIVE100",
        source="LIVE-A",
    ),
    order(
        "A4",
        "paid",
        990,
        customer="c1",
        when="2026-05-12 21:30",
        program="BOOK-990",
        source="LIVE-A",
    ),
    order("B1", "paid", 28000, customer="c1", when="2026-05-15 20:15", source="LIVE-B"),
    order(
        "B2", "pending", 26000, customer="c4", when="2026-05-15 20:20", code="VIP", source="LIVE-B"
    ),
    order("B3", "refunded", 28000, customer="c2", when="2026-05-15 22:05", source="LIVE-B"),
    order("C1", "paid", 28000, customer="c5", when="2026-05-18 19:50", source="LIVE-C"),
    order("N1", "paid", 990, customer="c3", when="2026-05-19 10:00", program="BOOK-990", source=""),
)
ALL_CHECKS = {
    "claims_reviewed": True,
    "sponsorship_disclosed": True,
    "offer_terms_disclosed": True,
    "refund_notice_shown": True,
    "testimonials_genuine": True,
    "regulated_claims_ok": True,
}


@pytest.fixture
def book(louis, wade, project):
    data_request = new_request(louis)
    import_frame(upload=accepted_upload(data_request, wade), frame=frame(*BOOK))
    return project


def _stream(project, name):
    return LiveStreamFigures.objects.get(project=project, source_event=name)


def test_every_stream_figure_equals_the_hand_count(book):
    a = _stream(book, "LIVE-A")
    assert (a.orders, float(a.gmv), a.paid_orders, float(a.paid_amount)) == (4, 84990, 3, 56990)
    assert (a.refund_count, float(a.refund_amount), a.rebuys) == (1, 28000, 1)
    assert (a.buyers, a.returning_buyers, a.discount_orders) == (3, 0, 2)
    assert a.by_hour[20] == 2 and a.by_hour[21] == 2 and sum(a.by_hour) == 4
    assert a.programs == [
        {"key": "TRAIN-28000", "orders": 3, "gmv": 84000.0, "paid_amount": 56000.0},
        {"key": "BOOK-990", "orders": 1, "gmv": 990.0, "paid_amount": 990.0},
    ]
    assert a.discount_codes == [
        {"key": "LIVE100", "orders": 2, "gmv": 56000.0, "paid_amount": 28000.0}
    ]
    b = _stream(book, "LIVE-B")
    # c1 and c2 first bought in LIVE-A: both rebuys, both returning buyers.
    assert (b.orders, float(b.gmv), b.paid_orders, b.pending_orders) == (3, 82000, 1, 1)
    assert (b.refund_count, b.rebuys, b.buyers, b.returning_buyers, b.discount_orders) == (
        1,
        2,
        3,
        2,
        1,
    )
    assert b.by_hour[20] == 2 and b.by_hour[22] == 1
    c = _stream(book, "LIVE-C")
    assert (c.orders, float(c.gmv), c.rebuys, c.buyers, c.returning_buyers, c.by_hour[19]) == (
        1,
        28000,
        0,
        1,
        0,
        1,
    )
    blank = _stream(book, "")
    assert (blank.orders, blank.rebuys, blank.returning_buyers) == (1, 1, 1)

    board = dashboard(book)
    assert [r.source_event for r in board.rows] == ["LIVE-A", "LIVE-B", "LIVE-C", ""]
    totals = board.totals
    assert (totals["orders"], totals["gmv"], totals["paid_orders"], totals["paid_amount"]) == (
        9,
        195980,
        6,
        113980,
    )
    assert (totals["refund_count"], totals["refund_amount"], totals["rebuys"]) == (2, 56000, 4)
    # c1 (A, B), c2 (A, B) and c3 (A, no stream) bought in more than one.
    assert (totals["buyers"], totals["returning_buyers"], totals["discount_orders"]) == (5, 3, 3)
    assert totals["refund_rate"] == pytest.approx(2 / 9)
    a_row = board.rows[0]
    assert a_row.get("aov") == pytest.approx(21247.5)
    assert a_row.get("refund_rate") == pytest.approx(0.25)
    assert a_row.get("discount_share") == pytest.approx(0.5)
    # No settlement data and no viewer file: those cells are missing, not zero.
    assert board.settlement_missing and a_row.settled_net is None
    assert a_row.get("viewers") is None and a_row.get("conversion") is None
    assert dashboard(book, sort="orders", descending=False).rows[0].source_event in ("LIVE-C", "")


def test_the_stream_page_sets_a_stream_beside_the_median_stream(book):
    page = stream_page(book, "LIVE-B")
    assert page.streams == 3  # orders without a source_event are no stream
    assert page.medians["gmv"] == 82000
    assert page.medians["orders"] == 3
    assert page.medians["refund_rate"] == pytest.approx(0.25)
    assert page.medians["aov"] == pytest.approx(82000 / 3)
    assert stream_page(book, "NO-SUCH") is None


def test_a_later_import_and_a_tag_move_the_stored_figures(book, louis, wade, huber):
    tag_orders(
        actor=huber,
        project=book,
        tag="refunded",
        order_ids=["A3"],
        evidence_ref="EV-9",
        refund_ref="R-1",
    )
    assert _stream(book, "LIVE-A").refund_tags == {"refunded": 1}
    assert _stream(book, "LIVE-B").refund_tags == {"": 1}
    # C1 is refunded in a top-up file; a new order arrives in LIVE-C.
    top_up = new_request(louis, requested_dataset="2026-05-12..2026-05-21 top-up")
    import_frame(
        upload=accepted_upload(top_up, wade, name="top-up.csv", mode="incremental"),
        frame=frame(
            {**BOOK[7], "payment_status": "refunded"},
            order("C2", "paid", 28000, customer="c4", when="2026-05-18 20:10", source="LIVE-C"),
        ),
    )
    c = _stream(book, "LIVE-C")
    assert (c.orders, c.paid_orders, c.refund_count, float(c.refund_amount)) == (2, 1, 1, 28000)
    # c4 first bought in LIVE-B.
    assert (c.rebuys, c.buyers, c.returning_buyers) == (1, 2, 1)
    assert _stream(book, "LIVE-A").refund_tags == {"refunded": 1}  # tags survive the import


def test_compliance_history_is_append_only_and_flags_revenue_until_pass(book, louis):
    board = dashboard(book)
    assert {r.source_event for r in board.flagged_rows} == {"LIVE-A", "LIVE-B", "LIVE-C"}
    record_compliance(
        actor=louis,
        project=book,
        source_event="LIVE-A",
        checks=ALL_CHECKS,
        status="pass",
        evidence_ref="DRIVE-1",
    )
    record_compliance(
        actor=louis,
        project=book,
        source_event="LIVE-B",
        checks={**ALL_CHECKS, "refund_notice_shown": False},
        status="fail",
        evidence_ref="VOD-0515 00:42:10",
        note="沒有事先說明七日鑑賞期",
    )
    board = dashboard(book)
    assert {r.source_event: r.compliance_status for r in board.rows if r.is_stream} == {
        "LIVE-A": "pass",
        "LIVE-B": "fail",
        "LIVE-C": "pending",
    }
    assert board.totals["flagged_gmv"] == 82000 + 28000
    with pytest.raises(InvalidInput):  # pass needs every check
        record_compliance(
            actor=louis, project=book, source_event="LIVE-C", checks={}, status="pass"
        )
    with pytest.raises(NotFound):
        record_compliance(
            actor=louis, project=book, source_event="NO-SUCH", checks={}, status="fail"
        )
    record = ComplianceRecord.objects.get(source_event="LIVE-B")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        ComplianceRecord.objects.filter(pk=record.pk).update(status="pass")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        ComplianceRecord.objects.filter(pk=record.pk).delete()
    record_compliance(
        actor=louis,
        project=book,
        source_event="LIVE-B",
        checks=ALL_CHECKS,
        status="pass",
        evidence_ref="VOD-0515 fixed",
    )
    page = stream_page(book, "LIVE-B")
    assert [h.status for h in page.history] == ["pass", "fail"]
    assert not page.row.flagged


VIEWERS = (
    "source_event,started_at,ended_at,viewers,peak_concurrent,product_clicks\n"
    "LIVE-A,2026-05-12 20:00,2026-05-12 22:00,2000,310,420\n"
    'LIVE-B,2026-05-15 20:00,2026-05-15 22:30,"1,500",,95\n'
    "LIVE-Z,2026-05-20 20:00,,800,,\n"
)


def test_the_viewer_file_adds_conversion_and_gmv_per_thousand_viewers(book, louis):
    answer = import_viewers(
        actor=louis, project=book, data=VIEWERS.encode(), file_name="viewers.csv"
    )
    assert answer == {"rows": 3, "unmatched": ["LIVE-Z"]}
    rows = {r.source_event: r for r in dashboard(book).rows}
    assert rows["LIVE-A"].get("conversion") == pytest.approx(4 / 2000)
    assert rows["LIVE-A"].get("gmv_per_thousand_viewers") == pytest.approx(42495.0)
    assert rows["LIVE-B"].get("conversion") == pytest.approx(3 / 1500)
    assert rows["LIVE-C"].get("conversion") is None  # no figures: missing, never 0


@pytest.mark.parametrize(
    "text, code",
    [
        ("source_event,viewers\nLIVE-A,many\n", "invalid_rows"),
        ("source_event,viewers\nLIVE-A,-3\n", "invalid_rows"),
        ("source_event,viewers\nLIVE-A,10\nLIVE-A,12\n", "invalid_rows"),
        (
            "source_event,started_at,ended_at,viewers\nLIVE-A,2026-05-12 22:00,2026-05-12 20:00,5\n",
            "invalid_rows",
        ),
        ("source_event,peak\nLIVE-A,5\n", "missing_columns"),
        (f"source_event,viewers\n{'x' * 201},5\n", "invalid_rows"),
    ],
)
def test_a_bad_viewer_file_is_refused_whole(book, louis, text, code):
    with pytest.raises(InvalidInput) as refused:
        import_viewers(actor=louis, project=book, data=text.encode(), file_name="v.csv")
    assert refused.value.code == code
    assert not dashboard(book).rows[0].viewers


def test_the_figures_equal_the_file_uploaded_through_the_real_upload(project):
    """A generated export goes through the upload, the validator and the
    import; every stream's figures equal what plain pandas counts in the
    same file (a different way of counting: groupby and cumcount)."""
    from reconciliation.management.commands._orders_data import import_from_frame, synthetic_frame

    data = synthetic_frame(3000, training=600, seed=7, prefix="EQ")
    data["customer_key"] = [f"{i % 1700:064x}" for i in range(len(data))]
    import_from_frame(data, project=project)

    data = data.sort_values("created_at", kind="stable")
    data["rebuy"] = data.groupby("customer_key").cumcount() > 0
    first_stream = data.groupby("customer_key")["source_event"].first()
    data["hour"] = data["created_at"].dt.tz_convert("Asia/Taipei").dt.hour
    stored = {s.source_event: s for s in LiveStreamFigures.objects.filter(project=project)}
    assert set(stored) == set(data["source_event"])
    for name, part in data.groupby("source_event"):
        s = stored[name]
        paid = part["payment_status"] == "paid"
        refunded = part["payment_status"] == "refunded"
        buyers = part["customer_key"].unique()
        returning = sum(first_stream[b] != name for b in buyers)
        assert (s.orders, float(s.gmv)) == (len(part), round(part["amount"].sum(), 2))
        assert (s.paid_orders, float(s.paid_amount)) == (paid.sum(), part["amount"][paid].sum())
        assert (s.refund_count, float(s.refund_amount)) == (
            refunded.sum(),
            part["amount"][refunded].sum(),
        )
        assert (s.rebuys, s.buyers, s.returning_buyers) == (
            part["rebuy"].sum(),
            len(buyers),
            returning,
        )
        assert s.discount_orders == (part["discount_code"] != "").sum()
        assert s.by_hour == [int((part["hour"] == h).sum()) for h in range(24)]
    totals = dashboard(project).totals
    assert totals["orders"] == 3000 and totals["rebuys"] == 3000 - 1700
    assert totals["buyers"] == 1700
    assert totals["returning_buyers"] == int(
        (data.groupby("customer_key")["source_event"].nunique() > 1).sum()
    )


def test_after_an_import_the_worker_rewrites_the_figures_and_the_page_says_so_meanwhile(
    louis, wade, project, settings, django_capture_on_commit_callbacks, api_as
):
    """Without LIVE_FIGURES_INLINE (production), an import does not wait for
    the figures: they are marked behind and rewritten after commit."""
    from django_q.brokers import get_broker

    from reconciliation import tasks
    from reconciliation.models import LiveBookTotals, LiveStreamFigures
    from reconciliation.services.imports import import_frame
    from tests.imp_frames import accepted_upload, frame, new_request, order

    settings.LIVE_FIGURES_INLINE = False
    data_request = new_request(louis)
    broker = get_broker()
    queued = broker.queue_size()
    with django_capture_on_commit_callbacks(execute=True):
        import_frame(
            upload=accepted_upload(data_request, wade),
            frame=frame(order("L-1", source="LIVE-A"), order("L-2", source="LIVE-B")),
        )
    # Queued for the worker, and the page and the API say the figures are behind.
    assert broker.queue_size() == queued + 1
    assert LiveBookTotals.objects.get(project=project).behind_since is not None
    assert not LiveStreamFigures.objects.filter(project=project).exists()
    answer = api_as(louis).get("/api/kolable/live-streams").json()
    assert answer["updating"] is True
    page = api_as(louis).get("/live/")
    assert "直播數字更新中" in page.content.decode()

    assert tasks.refresh_live_figures(str(project.pk)) is True
    totals = LiveBookTotals.objects.get(project=project)
    assert totals.behind_since is None and totals.totals["orders"] == 2
    assert sorted(LiveStreamFigures.objects.values_list("source_event", flat=True)) == [
        "LIVE-A",
        "LIVE-B",
    ]
    assert api_as(louis).get("/api/kolable/live-streams").json()["updating"] is False


def test_a_rewrite_that_raced_an_import_leaves_it_to_the_next_one(louis, wade, project, settings):
    """The scan runs without the book's lock; a book that moved meanwhile is
    not overwritten with the older figures (the sweep comes back)."""
    from reconciliation.models import BookSummary, LiveBookTotals
    from reconciliation.services import live
    from reconciliation.services.imports import import_frame
    from tests.imp_frames import accepted_upload, frame, new_request, order

    settings.LIVE_FIGURES_INLINE = False
    import_frame(
        upload=accepted_upload(new_request(louis), wade), frame=frame(order("L-1", source="LIVE-A"))
    )
    real = live.book_figures

    def scan_then_the_book_moves(project_):
        figures = real(project_)
        BookSummary.objects.filter(pk=project_.pk).update(
            version=BookSummary.objects.get(pk=project_.pk).version + 1
        )
        return figures

    live.book_figures = scan_then_the_book_moves
    try:
        assert live.refresh_behind(project_id=project.pk) is False
    finally:
        live.book_figures = real
    assert LiveBookTotals.objects.get(project=project).behind_since is not None
    assert live.refresh_behind(project_id=project.pk) is True


def test_each_streams_settled_money_follows_the_settlement_file(louis, wade, project):
    """No figure before a settlement file; after it, each stream's settled
    net and refunds settled back, as the provider's lines say."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from reconciliation.management.commands._orders_data import import_from_frame
    from reconciliation.models import DataRequest
    from reconciliation.selectors.live import dashboard
    from reconciliation.services.imports import import_upload
    from reconciliation.services.requests import create_data_request
    from reconciliation.services.uploads import receive_upload
    from tests.imp_frames import frame, order

    import_from_frame(
        frame(
            order("S-1", amount=28000, source="LIVE-A"),
            order("S-2", amount=28000, source="LIVE-A", customer="c2"),
            order("S-3", "refunded", amount=12000, source="LIVE-B", customer="c3"),
            order("S-4", amount=990, source="LIVE-B", customer="c4"),
        )
    )
    before = {r.source_event: r.settled_net for r in dashboard(project).rows}
    assert before == {"LIVE-A": None, "LIVE-B": None}
    assert dashboard(project).settlement_missing

    lines = (
        b"payment_ref,provider_txn_id,gross_amount,fee_amount,net_amount,txn_date\r\n"
        b"PAY-S-1,T1,28000,770,27230,2026-05-13\r\n"
        b"PAY-S-3,T3,12000,330,11670,2026-05-13\r\n"
        b"PAY-S-3,R3,-12000,0,-12000,2026-05-14\r\n"
    )
    request = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
    upload = receive_upload(
        data_request=request,
        uploaded_by=wade,
        file=SimpleUploadedFile("settlement.csv", lines, content_type="text/csv"),
        original_name="settlement.csv",
    ).upload
    assert upload.schema_status == "accepted", upload.file_errors
    import_upload(upload_id=upload.pk)

    board = dashboard(project)
    assert not board.settlement_missing
    # LIVE-A: S-1 settled 27,230 net, S-2 not yet. LIVE-B: S-3 charged and
    # refunded (11,670 − 12,000), S-4 not yet.
    assert {r.source_event: r.settled_net for r in board.rows} == {
        "LIVE-A": 27230.0,
        "LIVE-B": -330.0,
    }
    assert board.totals["settled_net"] == 26900.0
    assert board.totals["refund_settled"] == 12000.0


def test_the_sweep_rewrites_figures_whose_task_was_lost(louis, wade, project, settings):
    from datetime import timedelta

    from django.utils import timezone

    from reconciliation.models import LiveBookTotals
    from reconciliation.services import live
    from reconciliation.services.imports import import_frame
    from tests.imp_frames import accepted_upload, frame, new_request, order

    settings.LIVE_FIGURES_INLINE = False
    import_frame(
        upload=accepted_upload(new_request(louis), wade), frame=frame(order("L-1", source="LIVE-A"))
    )
    # Just marked: the queued task has its minute before the sweep steps in.
    assert live.refresh_all_behind() == []
    later = timezone.now() + live.SWEEP_AFTER + timedelta(seconds=1)
    assert live.refresh_all_behind(now=later) == [str(project.pk)]
    totals = LiveBookTotals.objects.get(project=project)
    assert totals.behind_since is None and totals.totals["orders"] == 1
