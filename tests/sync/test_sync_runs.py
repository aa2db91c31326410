"""A sync run end to end against the stub: pages → kept NDJSON upload →
the same validator → an incremental import into the book → the cursor."""

import hashlib

from django.db.models import Count

from reconciliation.models import (
    AuditEvent,
    Notification,
    Order,
    OrderRow,
    SyncRun,
    Upload,
)
from reconciliation.services.frames import kept_path
from reconciliation.services.sync import execute_run, request_sync
from tests.sync.conftest import TOKEN, Sleeps


def _run(source, **kwargs):
    run, created = request_sync(source=source)
    assert created
    return execute_run(run_id=run.pk, **kwargs)


def _digests(run, who):
    return Notification.objects.filter(
        kind=Notification.Kind.SYNC_DIGEST,
        channel=Notification.Channel.INBOX,
        recipient__user__username=who,
        payload__run_id=str(run.pk),
    )


def test_first_run_brings_every_order_into_the_book(stub, make_source, project):
    source = make_source(stub)
    run = _run(source)
    assert (run.status, run.error) == (SyncRun.Status.SUCCEEDED, "")
    assert (run.pages, run.rows, run.new_orders, run.changed_orders) == (3, 300, 300, 0)
    assert Order.objects.filter(project=project).count() == 300
    # The book holds exactly the stub's states.
    paid = Order.objects.filter(project=project, payment_status="paid").count()
    assert paid == int((stub.data.status == 1).sum())
    order = Order.objects.get(project=project, order_id="KA007-0000042")
    assert order.payment_status == stub.data.state_of("KA007-0000042")
    # The pages' bytes are kept as an incremental NDJSON upload, by sha256.
    upload = run.upload
    assert upload.mode == Upload.Mode.INCREMENTAL
    assert upload.detected_kind == "ndjson"
    assert upload.row_count == 300
    data = kept_path(upload).read_bytes()
    assert hashlib.sha256(data).hexdigest() == upload.sha256
    assert data.count(b"\n") == 300
    assert run.reconciliation_import.upload_id == upload.pk
    # The cursor is the highest updated_at received.
    source.refresh_from_db()
    assert int(source.cursor.timestamp()) == int(stub.data.updated.max())
    assert run.cursor_after == source.cursor
    # Huber: 300 new orders need evidence; Louis: the book awaits his decision;
    # Wade: nothing wrong, so nothing.
    (huber,) = _digests(run, "huber")
    assert "300" in huber.subject and "0 筆待補佐證" in huber.subject
    (louis,) = _digests(run, "louis")
    assert louis.params["new_orders_text"] == "300"
    assert not _digests(run, "wade").exists()
    # The import itself sends no import_done messages: the digest replaces them.
    assert not Notification.objects.filter(kind=Notification.Kind.IMPORT_DONE).exists()


def test_a_second_run_repeats_the_overlap_and_changes_nothing(stub, make_source, project):
    source = make_source(stub)
    first = _run(source)
    source.refresh_from_db()
    cursor = source.cursor
    second = _run(source)
    assert second.status == SyncRun.Status.SUCCEEDED
    # updated_since = cursor − 60 minutes: the orders of the last hour again.
    assert second.updated_since == cursor - __import__("datetime").timedelta(minutes=60)
    in_window = int((stub.data.updated >= stub.data.updated.max() - 3600).sum())
    assert second.rows == in_window and in_window > 0
    assert (second.new_orders, second.changed_orders) == (0, 0)
    assert Order.objects.filter(project=project).count() == 300
    # Nothing doubled: the book's orders each have their rows, the repeat
    # recorded as unchanged versions only.
    assert OrderRow.objects.filter(reconciliation_import=first.reconciliation_import).count() == 300
    source.refresh_from_db()
    assert source.cursor == cursor
    # Nothing new for anyone: no digest at all.
    assert not Notification.objects.filter(payload__run_id=str(second.pk)).exists()


def test_status_changes_arrive_as_changed_orders(stub, make_source, project):
    source = make_source(stub)
    _run(source)
    changed = stub.data.advance(5)
    run = _run(source)
    assert (run.new_orders, run.changed_orders) == (0, 5)
    for order_id in changed:
        order = Order.objects.get(project=project, order_id=order_id)
        assert order.payment_status == stub.data.state_of(order_id)
        assert order.changed_import_id == run.reconciliation_import_id
    (huber,) = _digests(run, "huber")
    assert huber.params["changed_orders_text"] == "5"
    assert huber.params["new_orders_text"] == "0"
    assert "changed=1" in huber.params["queue_url"]


def test_429_waits_retry_after_bounded_and_recovers(stub, make_source, settings):
    stub.faults.fail_429 = 0.5
    stub.faults.retry_after = 120  # asks for two minutes; the bound is 2 s
    source = make_source(stub)
    sleeps = Sleeps()
    run = _run(source, sleep=sleeps)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.rows == 300
    # Requests 2 and 4 of 5 are refused (pages 2 and 3 at their first try).
    assert stub.stats["429"] == 2
    assert sleeps == [2.0, 2.0]


def test_5xx_backs_off_and_recovers(stub, make_source):
    stub.faults.fail_5xx = 0.5
    source = make_source(stub)
    sleeps = Sleeps()
    run = _run(source, sleep=sleeps)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert stub.stats["5xx"] == 2
    assert sleeps == [0.01, 0.01]


def test_5xx_gives_up_after_five_tries_and_keeps_the_cursor(stub, make_source, project):
    source = make_source(stub)
    _run(source)
    source.refresh_from_db()
    cursor = source.cursor
    stub.data.advance(3)
    stub.faults.fail_5xx = 1.0
    before = stub.stats["5xx"]
    sleeps = Sleeps()
    run = _run(source, sleep=sleeps)
    assert (run.status, run.error_code) == (SyncRun.Status.FAILED, "http")
    assert stub.stats["5xx"] - before == 5
    assert sleeps == [0.01, 0.02, 0.04, 0.08]
    source.refresh_from_db()
    assert source.cursor == cursor
    # The next healthy run brings the three changes.
    stub.faults.fail_5xx = 0.0
    again = _run(source)
    assert (again.status, again.changed_orders) == (SyncRun.Status.SUCCEEDED, 3)


def test_401_fails_as_auth_keeps_the_cursor_and_sends_one_blocker_card(stub, make_source):
    source = make_source(stub)
    first = _run(source)
    source.refresh_from_db()
    cursor = source.cursor
    stub.faults.fail_auth = True
    requests_before = stub.stats["401"]
    sleeps = Sleeps()
    failed = _run(source, sleep=sleeps)
    assert (failed.status, failed.error_code) == (SyncRun.Status.FAILED, "auth")
    assert stub.stats["401"] - requests_before == 1  # no retry of a refused token
    assert sleeps == []
    failed_again = _run(source, sleep=sleeps)
    assert failed_again.error_code == "auth"
    source.refresh_from_db()
    assert source.cursor == cursor
    cards = Notification.objects.filter(
        kind=Notification.Kind.BLOCKER_CARD,
        channel=Notification.Channel.INBOX,
        template="sync_auth_failed",
    )
    assert cards.count() == 1
    (card,) = cards
    assert card.recipient.user.username == "louis"
    assert "••••5678" in card.body
    # The token is nowhere a person or a log could read it.
    for text in [card.subject, card.body, str(card.params), failed.error] + [
        str(e.data) + e.message for e in AuditEvent.objects.all()
    ]:
        assert TOKEN not in text
    # A success ends the failing spell: the next refusal is a new card.
    stub.faults.fail_auth = False
    assert _run(source).status == SyncRun.Status.SUCCEEDED
    stub.faults.fail_auth = True
    _run(source, sleep=sleeps)
    assert cards.all().count() == 2
    assert first.status == SyncRun.Status.SUCCEEDED


def test_identical_pages_are_the_same_upload_and_count_nothing_twice(stub, make_source, project):
    source = make_source(stub, overlap_minutes=1440)
    _run(source)
    first = _run(source)  # the last day again
    second = _run(source)  # the same window, the same bytes
    assert (
        first.rows
        == second.rows
        == int((stub.data.updated >= stub.data.updated.max() - 86400).sum())
    )
    assert second.upload_id == first.upload_id
    assert (second.new_orders, second.changed_orders) == (0, 0)
    assert Upload.objects.filter(data_request=source.data_request).count() == 2
    doubled = (
        Order.objects.filter(project=project)
        .values("order_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()
