"""Louis answers a blocker card by extending the due time: the request goes
back to open, Wade is told, and a new miss is a new blocker card."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reconciliation.models import AuditEvent, DataRequest, Notification
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.requests import create_data_request

START = timezone.datetime(2026, 5, 23, 9, 0, tzinfo=timezone.get_fixed_timezone(8 * 60))


def cards(request):
    return Notification.objects.filter(
        data_request=request, kind=Notification.Kind.BLOCKER_CARD, channel="inbox"
    ).count()


def test_extend_an_escalated_request_then_a_new_miss_is_a_new_card(louis, wade, api_as):
    with time_machine.travel(START, tick=False):
        request = create_data_request(requested_by=louis)
    with time_machine.travel(START + timedelta(hours=25), tick=False):
        escalate_overdue_requests()
        request.refresh_from_db()
        assert request.status == DataRequest.Status.ESCALATED and cards(request) == 1

        new_due = START + timedelta(hours=49)
        response = api_as(louis).post(
            f"/api/kolable/data-requests/{request.pk}/extend",
            {"due_at": new_due.isoformat(), "note": "Wade 週末補檔"},
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "open"
        assert timezone.datetime.fromisoformat(response.json()["due_at"]) == new_due
        told = Notification.objects.get(
            recipient__user=wade, channel="inbox", subject__contains="延到"
        )
        assert "2026-05-25 10:00" in told.body
        event = AuditEvent.objects.get(verb=AuditEvent.Verb.REQUEST_EXTENDED)
        assert "Wade 週末補檔" in event.message
        escalate_overdue_requests()
        request.refresh_from_db()
        assert request.status == DataRequest.Status.OPEN  # not overdue any more

    with time_machine.travel(new_due + timedelta(minutes=1), tick=False):
        escalate_overdue_requests()
        request.refresh_from_db()
        assert request.status == DataRequest.Status.ESCALATED
        assert cards(request) == 2  # the second missed due time
        escalate_overdue_requests()
        assert cards(request) == 2


@pytest.mark.parametrize(
    ("who", "status"), [("louis", 200), ("wade", 403), ("huber", 403), ("pls", 403)]
)
def test_only_louis_extends(request, api_as, louis, who, status):
    data_request = create_data_request(requested_by=louis)
    user = request.getfixturevalue(who) if who != "pls" else "pls"
    due = (timezone.now() + timedelta(days=2)).isoformat()
    response = api_as(user).post(
        f"/api/kolable/data-requests/{data_request.pk}/extend", {"due_at": due}
    )
    assert response.status_code == status


def test_extend_refuses_the_past_and_closed_requests(louis, api_as):
    data_request = create_data_request(requested_by=louis)
    past = api_as(louis).post(
        f"/api/kolable/data-requests/{data_request.pk}/extend",
        {"due_at": (timezone.now() - timedelta(hours=1)).isoformat()},
    )
    assert past.status_code == 422 and past.json()["error"] == "due_in_past"
    api_as(louis).post(f"/api/kolable/data-requests/{data_request.pk}/close", {})
    closed = api_as(louis).post(
        f"/api/kolable/data-requests/{data_request.pk}/extend",
        {"due_at": (timezone.now() + timedelta(days=1)).isoformat()},
    )
    assert closed.status_code == 409


def test_extend_from_the_request_page(client, louis):
    data_request = create_data_request(requested_by=louis)
    client.force_login(louis)
    page = client.get(f"/requests/{data_request.pk}/").content.decode()
    assert 'data-testid="extend-form"' in page
    due = timezone.localtime() + timedelta(days=3)
    response = client.post(
        f"/requests/{data_request.pk}/extend/",
        {"due_at": due.strftime("%Y-%m-%dT%H:%M"), "note": ""},
    )
    assert response.status_code == 302
    data_request.refresh_from_db()
    assert timezone.localtime(data_request.due_at).strftime("%Y-%m-%dT%H:%M") == due.strftime(
        "%Y-%m-%dT%H:%M"
    )
