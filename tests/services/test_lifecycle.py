"""The request lifecycle: the transitions table, and the one
compare-and-set that applies it."""

import threading

import pytest
from django.db import connection
from django.db.models import Q

from reconciliation.models import DataRequest
from reconciliation.services import lifecycle
from reconciliation.services.lifecycle import TRANSITIONS, Event
from reconciliation.services.requests import create_data_request

S = DataRequest.Status

EXPECTED = {
    # event: {status before: status after}; statuses not listed refuse it.
    Event.FILE_RECEIVED: {"open": "uploaded", "schema_failed": "uploaded", "escalated": "uploaded"},
    Event.FILE_ACCEPTED: {
        "open": "accepted",
        "uploaded": "accepted",
        "schema_failed": "accepted",
        "escalated": "accepted",
        "accepted": "accepted",
    },
    Event.FILE_FAILED: {"uploaded": "schema_failed"},
    Event.OVERDUE: {"open": "escalated", "uploaded": "escalated", "schema_failed": "escalated"},
    Event.REMINDED: {"escalated": "escalated"},
    Event.DUE_EXTENDED: {
        "open": "open",
        "uploaded": "uploaded",
        "schema_failed": "schema_failed",
        "escalated": "open",
    },
    Event.CLOSED: {
        "open": "closed",
        "uploaded": "closed",
        "schema_failed": "closed",
        "accepted": "closed",
        "escalated": "closed",
    },
}


def _request(louis, n):
    return create_data_request(requested_by=louis, requested_dataset=f"export {n}")


def test_the_table_is_the_lifecycle():
    assert {event: dict(targets) for event, targets in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("event", list(EXPECTED))
def test_each_event_from_each_status(louis, event):
    for n, before in enumerate(S.values):
        request = _request(louis, f"{event}-{n}")
        # Set directly: this test is about the table, not how a request gets there.
        DataRequest.objects.filter(pk=request.pk).update(status=before)
        moved = lifecycle.move(request.pk, event)
        after = DataRequest.objects.values_list("status", flat=True).get(pk=request.pk)
        if before in EXPECTED[event]:
            assert (moved, after) == (True, EXPECTED[event][before]), before
        else:
            assert (moved, after) == (False, before), before
        lifecycle.move(request.pk, Event.CLOSED)


def test_fields_are_written_with_the_move_and_where_narrows_it(louis):
    request = _request(louis, "fields")
    assert not lifecycle.move(request.pk, Event.CLOSED, where=~Q(pk=request.pk))
    assert lifecycle.move(request.pk, Event.FILE_RECEIVED, missing_fields=["amount"])
    request.refresh_from_db()
    assert (request.status, request.missing_fields) == ("uploaded", ["amount"])


@pytest.mark.django_db(transaction=True)
def test_of_two_racing_callers_one_moves(seeded):
    from django.contrib.auth import get_user_model

    louis = get_user_model().objects.get(username="louis")
    request = _request(louis, "race")
    results, barrier = [], threading.Barrier(2)

    def close():
        barrier.wait()
        try:
            results.append(lifecycle.move(request.pk, Event.CLOSED))
        finally:
            connection.close()

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
