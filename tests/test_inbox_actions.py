"""The blocker card in Louis's inbox carries his two answers — extend the due
time, pause recognition — and they do what they say, with the pages' checks.
Links in messages are clickable; each reader gets their language."""

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from reconciliation.models import DataRequest, Notification, RevenueDecision
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request
from reconciliation.services.uploads import receive_upload
from tests.imp_frames import csv_bytes, order


def client_for(user, language=None):
    client = Client()
    client.force_login(user)
    if language:
        client.cookies["django_language"] = language
    return client


def overdue_request(louis, dataset=None):
    request = create_data_request(requested_by=louis, requested_dataset=dataset)
    DataRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() - timedelta(hours=2))
    escalate_overdue_requests()
    return request


def card_of(louis):
    return Notification.objects.get(
        recipient__user=louis, kind=Notification.Kind.BLOCKER_CARD, channel="inbox"
    )


def test_the_card_offers_extend_and_says_there_is_nothing_to_pause(louis):
    overdue_request(louis)
    html = client_for(louis).get("/inbox/").content.decode()
    assert 'data-testid="blocker-extend"' in html
    assert 'data-testid="pause-not-needed"' in html
    assert 'data-testid="blocker-pause"' not in html
    # The links in the body are links.
    assert '<a href="http://testserver/requests/' in html


def test_extend_from_the_card_moves_the_due_time_and_returns_to_the_inbox(louis, wade):
    request = overdue_request(louis)
    new_due = timezone.localtime() + timedelta(hours=5)
    response = client_for(louis).post(
        f"/requests/{request.pk}/extend/",
        {"due_at": new_due.strftime("%Y-%m-%dT%H:%M"), "next": "/inbox/"},
    )
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    request.refresh_from_db()
    assert request.status == DataRequest.Status.OPEN
    assert abs((request.due_at - new_due).total_seconds()) < 60
    assert Notification.objects.filter(
        template="due_extended", recipient__user=wade, channel="inbox"
    ).exists()
    html = client_for(louis).get("/inbox/").content.decode()
    assert 'data-testid="blocker-done"' in html


def test_extend_refuses_a_next_on_another_site(louis):
    request = overdue_request(louis)
    response = client_for(louis).post(
        f"/requests/{request.pk}/extend/",
        {
            "due_at": (timezone.localtime() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"),
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == f"/requests/{request.pk}/"


def test_pause_from_the_card_records_louis_decision(louis, wade):
    # Revenue already verified from another request: the card may pause it.
    other = create_data_request(requested_by=louis, requested_dataset="2026-04 訂單")
    upload = receive_upload(
        data_request=other,
        uploaded_by=wade,
        file=SimpleUploadedFile("o.csv", csv_bytes(order("K-1")), content_type="text/csv"),
        original_name="o.csv",
    ).upload
    import_upload(upload_id=upload.pk, actor=wade)
    overdue_request(louis, dataset="2026-05 退款明細")

    html = client_for(louis).get("/inbox/").content.decode()
    assert 'data-testid="blocker-pause"' in html
    response = client_for(louis).post(f"/inbox/{card_of(louis).pk}/pause/")
    assert response.status_code == 302
    decision = RevenueDecision.objects.get()
    assert decision.decision == RevenueDecision.Decision.PAUSE
    assert decision.decided_by.username == "louis"
    html = client_for(louis).get("/inbox/").content.decode()
    assert "營收已暫停認列" in html


def test_only_louis_may_pause_or_extend(louis, wade, huber):
    request = overdue_request(louis)
    card = card_of(louis)
    assert client_for(wade).post(f"/inbox/{card.pk}/pause/").status_code == 403
    assert (
        client_for(huber)
        .post(f"/requests/{request.pk}/extend/", {"due_at": "2030-01-01T10:00"})
        .status_code
        == 403
    )
    assert not RevenueDecision.objects.exists()


def test_the_inbox_reads_in_english_for_an_english_reader(louis, wade):
    create_data_request(requested_by=louis)
    html = client_for(wade, "en").get("/inbox/").content.decode()
    assert "[P0] Please deliver &quot;2026-05-12..2026-05-21 order/payment export&quot;" in html
    assert "請在" not in html


def test_a_request_page_shows_each_person_their_own_messages(louis, wade, huber):
    request = create_data_request(requested_by=louis)
    page = client_for(wade).get(f"/requests/{request.pk}/").content.decode()
    assert "Wade：請在 24 小時內" in page
    assert "Louis：" not in page and "Huber：" not in page
    page = client_for(louis).get(f"/requests/{request.pk}/").content.decode()
    assert "Wade：請在 24 小時內" in page and "Louis：" in page and "Huber：" in page
