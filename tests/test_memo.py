"""Readings reused while the database holds the same state (selectors/memo):
never one the database no longer holds. Outside a transaction, as the
pages and the API read: every test here commits its writes."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from reconciliation.models import DataRequest
from reconciliation.selectors import memo
from reconciliation.selectors.dispatch import Rule
from reconciliation.selectors.scorecard import current_scorecard
from reconciliation.services.evidence import tag_orders
from reconciliation.services.imports import import_frame
from reconciliation.services.requests import create_data_request
from reconciliation.services.revenue import record_revenue_decision
from tests.imp_frames import accepted_upload, frame, order

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 5, 22, 1, 0, tzinfo=UTC)
LATEST = "/api/kolable/reconciliation/latest"


def _request(louis, **extra) -> DataRequest:
    return create_data_request(requested_by=louis, data_owner_username="wade", **extra)


def _import(data_request, wade):
    return import_frame(
        upload=accepted_upload(data_request, wade),
        frame=frame(order("M-1", "paid", 28000), order("M-2", "pending", 28000, customer="c2")),
    )


def test_a_reading_is_reused_while_nothing_changes(project, django_assert_num_queries):
    with time_machine.travel(T0, tick=False):
        first = current_scorecard()
        with django_assert_num_queries(1):  # only the database's state
            again = current_scorecard()
    assert again is first


def test_every_write_is_read_at_once(project, louis, wade):
    with time_machine.travel(T0, tick=False):
        assert current_scorecard().data_request is None
        data_request = _request(louis)
        assert current_scorecard().data_request.pk == data_request.pk
        assert current_scorecard().revenue_status == "unverified"
        _import(data_request, wade)
        card = current_scorecard()
        assert card.revenue_status == "verified"
        assert card.totals["paid_amount"] == 28000
        record_revenue_decision(decided_by=louis, decision="approve", note="")
        assert current_scorecard().revenue_status == "recognised"


def test_a_write_on_another_connection_is_read(project, louis):
    def write():
        try:
            _request(louis)
        finally:
            connection.close()

    with time_machine.travel(T0, tick=False):
        assert current_scorecard().data_request is None
        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
        assert current_scorecard().data_request is not None


def test_the_clock_moves_a_reading_on(project, louis):
    """A request due a second from now: the same database, read two seconds
    later, says it is overdue."""
    with time_machine.travel(T0, tick=False):
        data_request = _request(louis)
        DataRequest.objects.filter(pk=data_request.pk).update(due_at=T0 + timedelta(seconds=1))
        before = current_scorecard().next_job
    with time_machine.travel(T0 + timedelta(seconds=2), tick=False):
        after = current_scorecard().next_job
    assert before.rule == after.rule == Rule.NO_FILE
    assert "逾期" not in before.reason
    assert "逾期" in after.reason


def test_inside_a_transaction_every_reading_is_computed(project, louis):
    with time_machine.travel(T0, tick=False), transaction.atomic():
        assert memo.database_state() is None
        assert current_scorecard().data_request is None
        _request(louis)
        assert current_scorecard().data_request is not None


def test_fresh_computes_every_reading(project):
    with time_machine.travel(T0, tick=False):
        first = current_scorecard()
        with memo.fresh():
            again = current_scorecard()
    assert again is not first
    assert again.revenue_status == first.revenue_status


def test_the_api_and_the_page_show_louis_decision_in_the_same_second(
    project, louis, wade, client, api_as
):
    with time_machine.travel(T0, tick=False):
        _import(_request(louis), wade)
        api = api_as(louis)
        assert api.get(LATEST).json()["revenue_status"] == "verified"
        client.force_login(louis)
        assert 'data-status="verified"' in client.get("/scorecard/").content.decode()
        made = api.post("/api/kolable/reconciliation/decision", {"decision": "pause"})
        assert made.status_code == 201
        assert api.get(LATEST).json()["revenue_status"] == "paused"
        assert 'data-status="paused"' in client.get("/scorecard/").content.decode()


def test_huber_sees_his_tag_in_the_queue_in_the_same_second(project, louis, wade, huber, client):
    with time_machine.travel(T0, tick=False):
        _import(_request(louis), wade)
        client.force_login(huber)
        queue = client.get("/evidence/").content.decode()
        assert 'data-count="untagged">2<' in queue
        tag_orders(actor=huber, project=project, tag="paid", order_ids=["M-1"], payment_ref="P-1")
        queue = client.get("/evidence/").content.decode()
    assert 'data-count="untagged">1<' in queue
    assert 'data-count="paid">1<' in queue


def test_a_role_taken_away_is_refused_at_once(project, huber, client):
    with time_machine.travel(T0, tick=False):
        client.force_login(huber)
        assert client.get("/evidence/").status_code == 200
        huber.groups.clear()
        assert client.get("/evidence/").status_code == 403


def test_the_inbox_count_follows_what_wade_reads(project, louis, wade, client):
    with time_machine.travel(T0, tick=False):
        _request(louis)
        client.force_login(wade)
        assert 'data-testid="unread-count">1<' in client.get("/").content.decode()
        client.post("/inbox/read/")
        assert 'data-testid="unread-count"' not in client.get("/").content.decode()


def test_a_reading_that_never_reads_the_clock_outlives_the_second(project, louis):
    computed = []

    def compute():
        computed.append(len(computed) + 1)
        return computed[-1]

    with time_machine.travel(T0, tick=False):
        assert memo.memoised("clock-free", (), compute, clock=False) == 1
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        assert memo.memoised("clock-free", (), compute, clock=False) == 1
        assert memo.memoised("clock-free", (), compute) == 2  # by the second: a new one
        _request(louis)
        assert memo.memoised("clock-free", (), compute, clock=False) == 3
